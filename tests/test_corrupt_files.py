"""The corrupt-file suite's seeded sample (``benchmarks/bench_corrupt_files.py`` runs 100 offsets
per file kind): flipped bytes in any file movierec reads back are never used silently and never
a traceback."""

from __future__ import annotations

import corrupt_suite
import pytest

from movierec.data.release_writer import write_release
from movierec.data.synthetic import generate

OFFSETS = 6


@pytest.fixture(scope="module")
def results(tmp_path_factory, monkeypatch_module):
    work = tmp_path_factory.mktemp("corrupt")
    source = write_release(generate(n_users=80, n_items=120, n_ratings=3000, seed=3,
                                    half_stars=False), work / "data" / "ml-100k", "ml-100k")
    monkeypatch_module.setenv("MOVIEREC_CACHE", str(work / "cache"))
    kinds = corrupt_suite.build_kinds(source, work)
    return corrupt_suite.run(kinds, OFFSETS, work / "trials", seed=14)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_every_file_kind_is_covered(results):
    kinds = {name.split("/")[0] for name in results}
    assert kinds == {"dataset cache", "artifact", "artifact catalogue", "split files",
                     "embedding cache"}
    assert {"dataset cache/users.parquet", "dataset cache/items.parquet",
            "dataset cache/ratings.parquet", "artifact/model.npz"} <= set(results)


def test_no_flip_is_used_silently_or_is_a_traceback(results):
    bad = {name: {k: v for k, v in c.items() if k not in corrupt_suite.OK}
           for name, c in results.items()}
    assert {n: c for n, c in bad.items() if c} == {}, corrupt_suite.table(results)
    assert all(sum(c[k] for k in corrupt_suite.OK) == OFFSETS for c in results.values())
