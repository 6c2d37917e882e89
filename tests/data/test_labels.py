"""Implicit labels and training negatives (movierec.data.labels)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from movierec.data import labels
from movierec.data.dataset import Dataset
from movierec.data.labels import NegativeSampler, Thresholds, observed_targets, rating_classes
from movierec.errors import MovierecError


def _dataset(rng: np.random.Generator, n_users: int = 50, n_items: int = 40) -> Dataset:
    rows = rng.random((n_users, n_items)) < 0.3
    rows[0, :] = True  # a user who rated everything but one item
    rows[0, 7] = False
    u, i = np.nonzero(rows)
    ratings = pl.DataFrame({
        "user_id": u * 2 + 5, "item_id": i * 3 + 1,
        "rating": rng.choice([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0], len(u)),
        "timestamp": rng.integers(0, 10_000, len(u)),
    })
    return Dataset.from_frames("tiny", ratings)


def test_rating_classes_follow_the_thresholds():
    r = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0])
    np.testing.assert_array_equal(rating_classes(r), [0, 0, 0, 1, 1, 2, 2, 3, 3])
    custom = Thresholds(hard_positive=5.0, soft_positive=4.0, soft_negative=3.0)
    np.testing.assert_array_equal(rating_classes(r, custom), [0, 0, 0, 0, 0, 1, 1, 2, 3])
    with pytest.raises(MovierecError, match="soft_negative <= soft_positive"):
        Thresholds(hard_positive=3.0, soft_positive=4.0)


def test_targets_per_mode():
    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    np.testing.assert_array_equal(observed_targets(r, "binary"), np.ones(5))
    np.testing.assert_array_equal(observed_targets(r, "hard"), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(observed_targets(r, "soft"), [0.0, 0.25, 0.75, 1.0, 1.0])
    soft = observed_targets(r, "soft")
    assert ((soft >= 0) & (soft <= 1)).all() and soft.dtype == np.float32
    with pytest.raises(MovierecError, match="label_mode"):
        observed_targets(r, "fuzzy")


@pytest.mark.parametrize("packed", [False, True])
def test_negatives_exclude_every_rated_item(packed, monkeypatch):
    if packed:
        monkeypatch.setattr(labels, "_DENSE_CELLS", 10)  # force the bit-table layout
    rng = np.random.default_rng(0)
    ds = _dataset(rng)
    sampler = NegativeSampler.from_dataset(ds)
    assert sampler._packed is packed
    users = np.repeat(np.arange(ds.n_users), 30)
    neg = sampler.sample(users, 4, np.random.default_rng(1))
    assert neg.shape == (len(users), 4) and neg.dtype == np.int32
    rated = ds.csr.toarray() > 0
    assert not rated[users[:, None], neg].any()
    assert (neg[users == 0] == 7).all()  # user 0 has one unrated item left
    np.testing.assert_array_equal(sampler.n_rated, rated.sum(axis=1))


def test_negatives_are_uniform_over_unrated_items():
    n_items = 20
    sampler = NegativeSampler(np.zeros(5, np.int64), np.arange(5), 1, n_items)
    draws = sampler.sample(np.zeros(60_000, np.int64), 1, np.random.default_rng(3)).ravel()
    counts = np.bincount(draws, minlength=n_items)
    assert counts[:5].sum() == 0
    expected = len(draws) / 15
    assert np.abs(counts[5:] - expected).max() < 5 * np.sqrt(expected)


def test_user_who_rated_everything_is_an_error():
    sampler = NegativeSampler(np.zeros(3, np.int64), np.arange(3), 1, 3)
    with pytest.raises(MovierecError, match="rated all 3 items"):
        sampler.sample(np.array([0]), 2, np.random.default_rng(0))


def test_same_seed_same_negatives():
    ds = _dataset(np.random.default_rng(2))
    a = labels.labelled_interactions(ds, n_negatives=4, seed=5)
    b = labels.labelled_interactions(ds, n_negatives=4, seed=5)
    c = labels.labelled_interactions(ds, n_negatives=4, seed=6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_labelled_table_export(tmp_path):
    ds = _dataset(np.random.default_rng(4))
    table = labels.labelled_table(ds, mode="soft", n_negatives=3, seed=0)
    assert table.columns == ["index", "userid", "movieid", "interaction", "rating"]
    assert table.height == ds.n_ratings * 4
    np.testing.assert_array_equal(table["index"].to_numpy(), np.arange(table.height))
    observed = table.filter(pl.col("rating").is_not_null())
    sampled = table.filter(pl.col("rating").is_null())
    assert observed.height == ds.n_ratings and sampled.height == 3 * ds.n_ratings
    assert (sampled["interaction"] == 0).all()
    # original ids, and the observed rows are exactly the ratings with their soft targets
    truth = ds.ratings_frame().select(
        pl.col("user_id").alias("userid"), pl.col("item_id").alias("movieid"), "rating")
    got = observed.select("userid", "movieid", "rating", "interaction").sort("userid", "movieid")
    want = truth.sort("userid", "movieid")
    assert got.select("userid", "movieid", "rating").equals(want)
    np.testing.assert_allclose(got["interaction"].to_numpy(),
                               observed_targets(want["rating"].to_numpy(), "soft"))
    # sampled negatives are never rated by their user
    rated = set(zip(truth["userid"].to_list(), truth["movieid"].to_list(), strict=True))
    pairs = zip(sampled["userid"].to_list(), sampled["movieid"].to_list(), strict=True)
    assert not any(p in rated for p in pairs)
    path = labels.write_labelled_table(table, tmp_path / "labels.csv")
    back = pl.read_csv(path)
    assert back.columns == table.columns and back.height == table.height


def test_popularity_weighted_negatives_follow_the_weights_and_exclude_rated():
    ds = _dataset(np.random.default_rng(5))
    popular = NegativeSampler.from_dataset(ds, popularity_exponent=1.0)
    users = np.repeat(np.arange(ds.n_users), 50)
    b = popular.sample(users, 2, np.random.default_rng(0))
    assert not popular.is_rated(np.repeat(users, 2), b.ravel()).any()
    # one user who rated item 0; weights 1, 1, 2, 4: items 1..3 drawn 1 : 2 : 4
    sampler = NegativeSampler(np.zeros(1, np.int64), np.zeros(1, np.int64), 1, 4,
                              np.array([1.0, 1.0, 2.0, 4.0]))
    draws = sampler.sample(np.zeros(70_000, np.int64), 1, np.random.default_rng(1)).ravel()
    share = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(share, [0, 1 / 7, 2 / 7, 4 / 7], atol=0.01)
    with pytest.raises(MovierecError, match="positive"):
        NegativeSampler(np.zeros(1, np.int64), np.zeros(1, np.int64), 1, 3, np.array([1, 0, 1]))
