"""Negative sampling: the EVALUATION.md recipe and the bulk training-time sampler."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

import movierec.progress as progress_module
from movierec.data.dataset import Dataset
from movierec.data.sampling import UnratedSampler, sample_negatives, sample_unrated
from movierec.data.splits import leave_one_out
from movierec.errors import MovierecError


def synthetic(n_users: int = 30, n_items: int = 80, seed: int = 0) -> Dataset:
    """Random ratings; the item table also lists 10 movies nobody rated (not in the catalogue)."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, 1000), n_items + 10, replace=False))
    rated_ids = ids[:n_items]
    rows = [rng.choice(rated_ids, rng.integers(5, 40), replace=False) for _ in range(n_users)]
    rows[0] = rated_ids  # user 0 rated every item: none of them is ever unrated for it
    lens = [len(r) for r in rows]
    ratings = pl.DataFrame({
        "user_id": np.repeat(np.arange(n_users) + 1, lens),
        "item_id": np.concatenate(rows),
        "rating": np.full(sum(lens), 4.0),
        "timestamp": rng.integers(0, 10**6, sum(lens)),
    })
    return Dataset.from_frames("synthetic", ratings, pl.DataFrame({"item_id": ids}))


def rated_sets(ds: Dataset) -> list[set[int]]:
    return [set(ds.item_idx[ds.user_idx == u].tolist()) for u in range(ds.n_users)]


# ---------------------------------------------------------------------- evaluation recipe
def test_negatives_follow_the_recipe_draw_for_draw():
    ds = synthetic()
    test = leave_one_out(ds).test.subset(np.arange(1, ds.n_users))  # user 0 can't have any
    negs = sample_negatives(ds, test, n=20, seed=11)
    # the recipe, written naively: explicit candidate arrays of catalogue items never rated
    rng = np.random.default_rng(11)
    catalogue = np.flatnonzero(ds.rated_items)
    seen = rated_sets(ds)
    for r, u in enumerate(test.user_idx.tolist()):
        candidates = np.array([i for i in catalogue if i not in seen[u]])
        assert negs[r].tolist() == rng.choice(candidates, 20, replace=False).tolist()


def test_negatives_are_distinct_unrated_catalogue_items_and_seeded():
    ds = synthetic(seed=3)
    test = leave_one_out(ds).test.subset(np.arange(1, ds.n_users))
    negs = sample_negatives(ds, test, n=25, seed=1)
    assert negs.dtype == np.int32 and negs.shape == (test.n_ratings, 25)
    seen = rated_sets(ds)
    for r, u in enumerate(test.user_idx.tolist()):
        row = negs[r].tolist()
        assert len(set(row)) == 25
        assert not set(row) & seen[u]  # includes the test item
    assert ds.rated_items[negs].all()  # never a movie nobody rated
    assert np.array_equal(negs, sample_negatives(ds, test, n=25, seed=1))
    assert not np.array_equal(negs, sample_negatives(ds, test, n=25, seed=2))


def test_negatives_exclude_test_items_missing_from_full():
    ds = synthetic(seed=4)
    split = leave_one_out(ds)
    test = split.test.subset(np.arange(1, ds.n_users))
    negs = sample_negatives(split.train, test, n=30, seed=0)  # full lacks the test ratings
    assert not (negs == test.item_idx[:, None]).any()


def test_too_few_candidates_is_an_error_naming_the_user():
    ds = synthetic()
    with pytest.raises(MovierecError, match="user id 1 has only 0 unrated items"):
        sample_negatives(ds, leave_one_out(ds).test, n=5)


# ---------------------------------------------------------------------- bulk sampler
def random_csr(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    return sp.random(n_users, n_items, density=density, format="csr", random_state=seed)


def test_nth_unrated_enumerates_each_users_complement_in_order():
    m = random_csr(50, 40, 0.4, seed=5)
    pool = np.arange(3, 37, 2)
    sampler = UnratedSampler(m, items=pool)
    dense = m.toarray() != 0
    for u in range(50):
        expected = [i for i in pool if not dense[u, i]]
        assert sampler.n_unrated[u] == len(expected)
        got = sampler.nth_unrated(np.full(len(expected), u), np.arange(len(expected)))
        assert got.tolist() == expected


def test_sample_unrated_never_returns_a_rated_item_and_is_uniform():
    # user 0 rated items 0 and 2 of 6; user 1 rated all but item 4; explicit zeros count as rated
    m = sp.csr_matrix(
        (np.array([1.0, 1.0, 1, 1, 0, 1, 1]), np.array([0, 2, 0, 1, 2, 3, 5]),
         np.array([0, 2, 7])), shape=(2, 6))
    rng = np.random.default_rng(0)
    draws = sample_unrated(m, np.array([0, 1, 0]), 40_000, rng)
    assert draws.shape == (3, 40_000) and draws.dtype == np.int32
    assert set(np.unique(draws[[0, 2]]).tolist()) == {1, 3, 4, 5}
    assert np.all(draws[1] == 4)
    freq = np.bincount(draws[[0, 2]].ravel(), minlength=6)[[1, 3, 4, 5]] / 80_000
    assert np.allclose(freq, 0.25, atol=0.01)


def test_sample_unrated_in_bulk_and_seeded():
    m = random_csr(2_000, 500, 0.1, seed=1)
    users = np.random.default_rng(0).integers(0, 2_000, 200_000)
    a = sample_unrated(m, users, 4, np.random.default_rng(9))
    b = sample_unrated(m, users, 4, np.random.default_rng(9))
    assert np.array_equal(a, b)
    keys = np.sort(np.repeat(np.arange(2_000), np.diff(m.indptr)) * 500 + m.indices)
    assert not np.isin(users[:, None] * 500 + a, keys).any()


def test_a_user_with_nothing_unrated_is_an_error():
    m = sp.csr_matrix(np.ones((2, 3)))
    with pytest.raises(MovierecError, match="user_idx 1 has rated every item"):
        sample_unrated(m, np.array([1]), 2, np.random.default_rng(0))


def test_negatives_say_how_far_they_are_off_a_terminal(monkeypatch, capsys):
    """Drawing ML-20M's 138K rows of negatives takes ~10 s: off a terminal it prints lines of
    users drawn so far (and of how many), and the draws are the recipe's whatever the chunks."""
    import movierec.data.sampling as sampling

    ds = synthetic(seed=5)
    test = leave_one_out(ds).test.subset(np.arange(1, ds.n_users))
    whole = sample_negatives(ds, test, n=10, seed=3)
    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.0)
    monkeypatch.setattr(sampling, "PROGRESS_ROWS", 7)
    chunked = sample_negatives(ds, test, n=10, seed=3)
    np.testing.assert_array_equal(chunked, whole)
    lines = [x for x in capsys.readouterr().err.splitlines() if "negatives per test rating" in x]
    assert lines and lines[0].startswith(f"10 negatives per test rating: users 7/{test.n_ratings} ")
