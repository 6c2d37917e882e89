"""The synthetic generator: MovieLens-like shape and planted structure a model can recover
(its release folders: test_release_writer.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from movierec.data.synthetic import GENRES, PRESETS, generate


@pytest.fixture(scope="module")
def ml100k_like():
    return generate("ml-100k", seed=11)


# ---------------------------------------------------------------------- shape
@pytest.mark.parametrize(
    "shape", [(943, 1682, 100_000), (50, 120, 1_000), (300, 5_000, 9_000), (400, 40, 8_000)]
)
def test_any_shape_is_met_exactly(shape):
    n_users, n_items, n_ratings = shape
    ds = generate(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=1).to_dataset()
    assert (ds.n_users, ds.n_items, ds.n_ratings) == shape
    assert ds.user_counts.min() >= 20
    assert ds.user_counts.max() <= n_items // 2
    pairs = ds.user_idx.astype(np.int64) * ds.n_items + ds.item_idx
    assert len(np.unique(pairs)) == ds.n_ratings  # sampled without replacement


def test_ids_and_tables_line_up_with_the_factors(ml100k_like):
    d, ds = ml100k_like, ml100k_like.to_dataset()
    shape = PRESETS["ml-100k"]
    assert (ds.n_users, ds.n_items, ds.n_ratings) == (
        shape.n_users, shape.n_items, shape.n_ratings
    )  # fmt: skip
    assert d.user_factors.shape == (ds.n_users, 12) and d.item_factors.shape == (ds.n_items, 12)
    assert np.array_equal(ds.user_ids, np.arange(1, ds.n_users + 1))
    assert np.array_equal(ds.item_ids, d.items["item_id"].to_numpy())
    assert ds.item_ids[-1] > ds.n_items  # ids have gaps, like real movie ids
    assert d.users.height == ds.n_users and ds.users is not None


def test_activity_and_popularity_are_heavy_tailed(ml100k_like):
    ds = ml100k_like.to_dataset()
    users = ds.user_counts
    assert users.min() == 20 and (users == 20).sum() > 10
    assert users.max() > 5 * np.median(users)
    items = np.sort(ds.item_counts)[::-1]
    assert items[: len(items) // 10].sum() > 0.4 * ds.n_ratings  # real ML-100K: 0.43
    assert items[: len(items) // 100].sum() > 0.05 * ds.n_ratings


def test_stars_look_like_movielens(ml100k_like, small_half):
    stars, counts = np.unique(ml100k_like.to_dataset().rating, return_counts=True)
    assert stars.tolist() == [1, 2, 3, 4, 5]
    assert counts.argmax() in (2, 3) and counts.min() > 0.02 * counts.sum()
    half = small_half.to_dataset().rating
    assert set(np.unique(half)) <= set(np.arange(1, 11) / 2)
    share_half = np.mean(half % 1 == 0.5)
    assert 0.1 < share_half < 0.5
    for r in (ml100k_like.to_dataset().rating, half):
        assert 3.2 < r.mean() < 3.8


def test_timestamps_strictly_increase_within_each_user_and_span(ml100k_like):
    r = ml100k_like.ratings
    assert r.equals(r.sort("user_id", "timestamp"))
    same_user = np.diff(r["user_id"].to_numpy()) == 0
    assert np.all(np.diff(r["timestamp"].to_numpy())[same_user] > 0)
    t = r["timestamp"].to_numpy()
    assert 874_700_000 < t.min() and t.max() < 893_400_000  # 1997-09-20 .. 1998-04-22


def test_same_seed_same_data_other_seed_other_data():
    a, b = generate(n_users=200, n_items=300, n_ratings=9_000, seed=5), None
    b = generate(n_users=200, n_items=300, n_ratings=9_000, seed=5)
    c = generate(n_users=200, n_items=300, n_ratings=9_000, seed=6)
    for name in ("ratings", "items", "users", "tags"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert np.array_equal(a.item_factors, b.item_factors)
    assert not a.ratings.equals(c.ratings)


def test_impossible_shapes_are_refused():
    with pytest.raises(ValueError, match="between 20 and"):
        generate(n_users=100, n_items=500, n_ratings=1_999)
    with pytest.raises(ValueError, match="half of 30 movies"):
        generate(n_users=10, n_items=30, n_ratings=300)
    with pytest.raises(ValueError, match="unknown preset"):
        generate("ml-5m")
    with pytest.raises(ValueError, match="n_ratings"):
        generate(n_users=10, n_items=100)


# ---------------------------------------------------------------------- planted structure
def _hit_rate_at_10(ds, scores_of) -> float:
    """Leave-one-out by time, full ranking over the user's unrated movies."""
    last = np.r_[np.flatnonzero(np.diff(ds.user_idx)), ds.n_ratings - 1]
    train = np.ones(ds.n_ratings, bool)
    train[last] = False
    x = sp.csr_matrix(
        (np.ones(train.sum()), (ds.user_idx[train], ds.item_idx[train])),
        shape=(ds.n_users, ds.n_items),
    )
    scores = np.array(scores_of(x), dtype=np.float64)  # a writable copy
    scores[x.nonzero()] = -np.inf
    test = scores[np.arange(ds.n_users), ds.item_idx[last]]
    return float(np.mean((scores > test[:, None]).sum(axis=1) < 10))


def test_a_low_rank_model_beats_popularity(ml100k_like):
    ds = ml100k_like.to_dataset()

    def pure_svd(x):
        _, _, vt = svds(x, k=16, random_state=0)
        return (x @ vt.T) @ vt

    def popularity(x):
        return np.broadcast_to(np.asarray(x.sum(axis=0)), x.shape)

    svd, pop = _hit_rate_at_10(ds, pure_svd), _hit_rate_at_10(ds, popularity)
    assert pop > 0.1  # popularity carries signal too ...
    assert svd > pop + 0.05 and svd > 1.25 * pop  # ... but the planted tastes carry more


def test_choices_and_stars_follow_the_planted_affinity(ml100k_like):
    d, ds = ml100k_like, ml100k_like.to_dataset()
    affinity = np.einsum("ij,ij->i", d.user_factors[ds.user_idx], d.item_factors[ds.item_idx])
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, ds.n_users, 50_000), rng.integers(0, ds.n_items, 50_000)
    chance = np.einsum("ij,ij->i", d.user_factors[u], d.item_factors[i])
    assert affinity.mean() > chance.mean() + 0.3  # users pick movies they like
    assert np.corrcoef(affinity, ds.rating)[0, 1] > 0.3  # and rate them higher


def test_genres_follow_the_item_factors(ml100k_like):
    d = ml100k_like
    ds = d.to_dataset()
    assert ds.genre_names == sorted(GENRES)
    flags = ds.genre_matrix.toarray()
    projection = d.item_factors @ d.genre_directions[[GENRES.index(g) for g in ds.genre_names]].T
    corr = [np.corrcoef(flags[:, g], projection[:, g])[0, 1] for g in range(len(GENRES))]
    assert min(corr) > 0.05 and np.mean(corr) > 0.3
    per_item = flags.sum(axis=1)
    assert 1.5 < per_item.mean() < 3.0 and (per_item == 0).sum() >= 1  # some have no genre
    assert flags[:, ds.genre_names.index("Drama")].mean() > flags.mean(axis=0).mean()


def test_ml32m_preset_matches_the_release_and_its_span():
    from movierec.data.registry import RELEASES

    shape, real = PRESETS["ml-32m"], RELEASES["ml-32m"]
    assert (shape.n_users, shape.n_items, shape.n_ratings) == (
        real.n_users, real.n_movies, real.n_ratings)
    d = generate("ml-32m", n_users=2_000, n_ratings=320_000, seed=2)  # 1% of the users
    ds = d.to_dataset()
    assert ds.n_items == 87_585 and ds.user_counts.min() >= 20
    assert set(np.unique(ds.rating * 2) % 2) == {0.0, 1.0}  # half stars
    first, last = ds.timestamp.min(), ds.timestamp.max()
    assert 789_609_600 <= first and last < 1_697_155_200  # 1995-01-09 .. 2023-10-12 (UTC)
    counts = np.sort(ds.item_counts)[::-1]
    assert counts[0] > 30 * np.median(counts[counts > 0])  # a long popularity tail
