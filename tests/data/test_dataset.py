"""The canonical Dataset: id maps, canonical order, derived matrices, persistence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset, canonical_order, index_of


def small() -> Dataset:
    ratings = pl.DataFrame({
        "user_id": [10, 10, 10, 3, 3, 7],
        "item_id": [200, 100, 300, 300, 100, 200],
        "rating": [4.0, 5.0, 3.5, 1.0, 2.0, 4.5],
        "timestamp": [50, 50, 10, 99, 98, 1],
    })
    items = pl.DataFrame({
        "item_id": [100, 200, 300, 400],
        "title": ["A (1990)", "B (1991)", "C (1992)", "D (1993)"],
        "year": [1990, 1991, 1992, 1993],
        "genres": [["Drama"], ["Comedy", "Drama"], [], ["Action"]],
    })
    return Dataset.from_frames("toy", ratings, items)


def test_id_maps_are_sorted_and_cover_metadata_movies():
    ds = small()
    assert ds.user_ids.tolist() == [3, 7, 10]
    assert ds.item_ids.tolist() == [100, 200, 300, 400]  # 400 has no rating but is a movie
    assert ds.rated_items.tolist() == [True, True, True, False]
    assert ds.user_idx.dtype == np.int32 and ds.item_idx.dtype == np.int32


def test_ratings_sorted_by_user_time_then_item():
    ds = small()
    frame = ds.ratings_frame()
    # user 10: t=10 (item 300), then t=50 twice: item 100 before item 200
    assert frame.filter(pl.col("user_id") == 10)["item_id"].to_list() == [300, 100, 200]
    assert frame.filter(pl.col("user_id") == 3)["item_id"].to_list() == [100, 300]


def test_csr_holds_every_rating():
    ds = small()
    m = ds.csr
    assert m.shape == (3, 4) and m.nnz == 6
    u, i = ds.user_index([10])[0], ds.item_index([100])[0]
    assert m[u, i] == 5.0


def test_unknown_ids_are_named():
    ds = small()
    with pytest.raises(KeyError, match="unknown movie id 999"):
        ds.item_index([100, 999])
    with pytest.raises(KeyError, match="unknown user id 4"):
        ds.user_index([4])


@pytest.mark.parametrize("n", [10, 5000])  # both the search and the look-up-table paths
def test_index_of_matches_searchsorted(n):
    rng = np.random.default_rng(1)
    ids = np.unique(rng.integers(0, 10_000, 300))
    query = rng.choice(ids, n)
    assert np.array_equal(index_of(ids, query), np.searchsorted(ids, query))


@pytest.mark.parametrize("t_range", [10**6, 2**62])  # packed key, then rank-compressed times
def test_canonical_order_equals_lexsort(t_range):
    rng = np.random.default_rng(2)
    n = 20_000
    u = rng.integers(0, 300, n).astype(np.int32)
    i = rng.integers(0, 500, n).astype(np.int32)
    t = rng.integers(0, t_range, n, dtype=np.int64)
    t[::7] = t[0]  # many ties in time
    order = canonical_order(u, t, i, 500)
    expected = np.lexsort((i, t, u))
    key = np.stack([u[order], t[order], i[order]])
    assert np.array_equal(key, np.stack([u[expected], t[expected], i[expected]]))


def test_genres_and_summary():
    ds = small()
    assert ds.genre_names == ["Action", "Comedy", "Drama"]
    assert ds.genre_matrix.toarray().tolist() == [[0, 0, 1], [0, 1, 1], [0, 0, 0], [1, 0, 0]]
    s = ds.summary()
    assert (s["n_users"], s["n_items"], s["n_rated_items"], s["n_ratings"]) == (3, 4, 3, 6)
    assert s["rating_histogram"]["4.5"] == 1
    assert s["genres"] == {"Action": 1, "Comedy": 1, "Drama": 2}


def test_subset_keeps_id_maps():
    ds = small()
    part = ds.subset(ds.rating >= 4.0, name="toy/high")
    assert part.n_ratings == 3 and part.n_items == ds.n_items and part.n_users == ds.n_users
    assert part.fingerprint != ds.fingerprint


def test_save_load_round_trip(tmp_path):
    ds = small()
    ds.save(tmp_path / "ds")
    back = Dataset.load(tmp_path / "ds")
    assert back.fingerprint == ds.fingerprint
    assert back.items.equals(ds.items)


def test_load_of_a_broken_cache_names_the_folder(tmp_path):
    small().save(tmp_path / "ds")
    (tmp_path / "ds" / "ratings.parquet").write_bytes(b"not parquet")
    with pytest.raises(Exception, match="not a readable movierec dataset cache"):
        Dataset.load(tmp_path / "ds")
