"""Files movierec writes get the modes the user's umask asks for, like any program's.

Temporary files and folders are private (0600 / 0700); renamed into place as they were, an
artifact could be read by its owner only, so the Docker image's non-root server (another uid)
could not read a mounted artifact.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.files import write_atomically
from movierec.models.base import create


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomically_gives_the_umask_mode(tmp_path, umask_022):
    path = write_atomically(tmp_path / "table.parquet", pl.DataFrame({"a": [1]}).write_parquet)
    assert _mode(path) == 0o644
    os.umask(0o077)
    private = write_atomically(tmp_path / "private.txt", lambda p: Path(p).write_text("x"))
    assert _mode(private) == 0o600


def test_a_saved_artifact_is_readable_by_other_users(tmp_path, umask_022):
    rng = np.random.default_rng(0)
    ratings = pl.DataFrame({
        "user_id": rng.integers(1, 30, 300), "item_id": rng.integers(1, 40, 300),
        "rating": rng.integers(1, 6, 300).astype(float), "timestamp": np.arange(300),
    }).unique(["user_id", "item_id"])
    dataset = Dataset.from_frames("tiny", ratings)
    folder = create("popularity").fit(dataset).save(tmp_path / "artifact")
    assert _mode(folder) == 0o755
    files = list(folder.iterdir())
    assert files and all(_mode(f) == 0o644 for f in files), {f.name: oct(_mode(f)) for f in files}
