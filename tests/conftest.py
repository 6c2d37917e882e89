"""Shared fixtures. Real MovieLens files are found through one setting: MOVIEREC_TEST_DATA
(default ../shared/data beside the repository). Without them, tests that need them skip with a
message saying how to get them, except in CI (MOVIEREC_REQUIRE_TEST_DATA=1), where they fail."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the fault and corrupt-file suites are plain modules beside the tests (pytest imports test
# files by path, "importlib" mode, so their folder is not on sys.path by itself)
sys.path.insert(0, str(Path(__file__).resolve().parent))
TEST_DATA = Path(os.environ.get("MOVIEREC_TEST_DATA", REPO.parent / "shared" / "data"))


def _need(sub: str) -> Path:
    path = TEST_DATA / sub
    if not path.exists():
        msg = (
            f"real MovieLens files not found at {path}; set MOVIEREC_TEST_DATA to a folder "
            "holding ml-100k/, ml-latest-small/ and eval/ (or run `movierec datasets download "
            "ml-100k --data-dir DIR`)"
        )
        if os.environ.get("MOVIEREC_REQUIRE_TEST_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder holding the real release folders (ml-100k/, ml-latest-small/, eval/)."""
    _need("")
    return TEST_DATA


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    return _need("ml-100k")


@pytest.fixture(scope="session")
def ml_latest_small_dir() -> Path:
    return _need("ml-latest-small")


@pytest.fixture(scope="session")
def ml1m_metadata_dir() -> Path:
    return _need("ml-1m-metadata")


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    return _need("eval")


def pytest_configure(config):
    """The suite never touches the user's cache: parsed files go to a fresh temporary folder."""
    import tempfile

    os.environ["MOVIEREC_CACHE"] = tempfile.mkdtemp(prefix="movierec-test-cache-")
    os.environ.setdefault("MOVIEREC_LOCKS", tempfile.mkdtemp(prefix="movierec-test-locks-"))
