"""The numbers behind the EDA figures, checked against independent computations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.eda import readings, stats


def random_dataset(seed: int = 0, n_users: int = 50, n_items: int = 60, n: int = 900,
                   span_days: float = 1000.0, users: bool = False) -> Dataset:
    rng = np.random.default_rng(seed)
    code = rng.choice(n_users * n_items, size=n, replace=False)
    genres = ["Action", "Comedy", "Drama", "War"]
    items = pl.DataFrame({
        "item_id": np.arange(1, n_items + 1),
        "genres": [[g for g in genres if rng.random() < 0.4] for _ in range(n_items)],
    })
    user_table = None
    if users:
        user_table = pl.DataFrame({
            "user_id": np.arange(1, n_users + 1),
            "age": rng.choice([1, 18, 25, 35, 45, 50, 56], n_users),
            "gender": rng.choice(["F", "M"], n_users),
            "occupation": rng.choice(["artist", "doctor", "writer"], n_users),
        })
    ratings = pl.DataFrame({
        "user_id": code // n_items + 1, "item_id": code % n_items + 1,
        "rating": rng.integers(1, 11, n) / 2,
        "timestamp": (9e8 + rng.random(n) * span_days * 86_400).astype(np.int64),
    })
    return Dataset.from_frames("random", ratings, items, user_table)


def test_vif_matches_the_inverse_correlation_and_flags_collinearity():
    rng = np.random.default_rng(1)
    x = (rng.random((400, 5)) < 0.3).astype(float)
    vif = stats.variance_inflation(x)
    # textbook identity: VIF_j is the j-th diagonal entry of the inverse correlation matrix
    np.testing.assert_allclose(vif, np.diag(np.linalg.inv(np.corrcoef(x, rowvar=False))))
    assert np.all(vif >= 1)

    dup = np.column_stack([x, x[:, 0], np.zeros(400)])  # a copy of column 0, a constant
    vif = stats.variance_inflation(dup)
    assert np.isinf(vif[0]) and np.isinf(vif[5]) and np.isnan(vif[6])
    assert np.all(np.isfinite(vif[1:5]))


def test_vif_reading_names_the_collinear_genres():
    ds = random_dataset()
    g = stats.genre_stats(ds)
    vif = g.vif.copy()
    vif[g.names.index("War")] = np.inf
    vif[g.names.index("Comedy")] = 7.0
    text = readings.genre_vif(stats.GenreStats(**{**g.__dict__, "vif": vif}))
    assert "Severe" in text and "War" in text and "Comedy" in text
    assert "below 5" in readings.genre_vif(g)


def test_genre_stats_agree_with_a_direct_count():
    ds = random_dataset()
    g = stats.genre_stats(ds)
    genres = ds.items.get_column("genres").to_list()
    for j, name in enumerate(g.names):
        has = np.array([name in gs for gs in genres])
        rated = has[ds.item_idx]
        assert g.n_movies[j] == has.sum()
        assert g.n_ratings[j] == rated.sum()
        assert g.mean_rating[j] == pytest.approx(ds.rating[rated].mean())
        for k, other in enumerate(g.names):
            both = sum(name in gs and other in gs for gs in genres)
            assert g.cooccurrence[j, k] == both
    np.testing.assert_allclose(g.correlation, np.corrcoef(ds.genre_matrix.toarray(),
                                                          rowvar=False))
    assert g.star_counts.sum(axis=1).tolist() == g.n_ratings.tolist()


def test_box_stats_match_numpy_quantiles_of_the_expanded_ratings():
    rng = np.random.default_rng(2)
    stars = np.arange(1, 11) / 2
    counts = rng.integers(0, 50, 10)
    counts[3] = 0
    values = np.repeat(stars, counts)
    b = stats.box_stats(stars, counts, "x")
    q1, med, q3 = np.percentile(values, [25, 50, 75], method="inverted_cdf")
    assert (b["q1"], b["med"], b["q3"]) == (q1, med, q3)
    assert b["mean"] == pytest.approx(values.mean())
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    assert (b["whislo"], b["whishi"]) == (inside.min(), inside.max())
    assert set(b["fliers"]) == set(np.unique(values[(values < inside.min())
                                                    | (values > inside.max())]))


def test_matrix_density_accounts_for_every_rating():
    ds = random_dataset()
    d = stats.matrix_density(ds, bins=7)
    n_rated = int(ds.rated_items.sum())
    u_size = np.bincount(np.arange(ds.n_users) * 7 // ds.n_users)
    i_size = np.bincount(np.arange(n_rated) * 7 // n_rated)
    assert d.shape == (7, 7) and np.all((d >= 0) & (d <= 1))
    assert (d * np.outer(u_size, i_size)).sum() == pytest.approx(ds.n_ratings)
    # most active users x most rated movies are the densest corner
    assert d[0, 0] >= d[-1, -1]


@pytest.mark.parametrize(("span", "unit"), [(1000.0, "month"), (200.0, "week")])
def test_ratings_over_time_counts_every_rating_once(span, unit):
    ds = random_dataset(span_days=span)
    ts = stats.ratings_over_time(ds)
    assert ts.unit == unit and ts.count.sum() == ds.n_ratings
    days = ds.timestamp // 86_400
    first = days.min().astype("datetime64[D]")
    assert ts.start[0] <= first < ts.start[1]
    if unit == "week":
        assert all(d.astype(object).weekday() == 0 for d in ts.start)  # Mondays
    total = np.nansum(ts.mean_rating * ts.count)
    assert total == pytest.approx(ds.rating.astype(float).sum())
    assert np.all(np.isfinite(ts.rolling_mean[ts.count > 0]))


def test_demographics_sum_to_users_and_ratings_and_use_the_ml1m_age_bands():
    ds = random_dataset(users=True)
    groups = {d.attribute: d for d in stats.demographics(ds)}
    assert set(groups) == {"age", "gender", "occupation"}
    for d in groups.values():
        assert d.n_users.sum() == ds.n_users and d.n_ratings.sum() == ds.n_ratings
    assert set(groups["age"].labels) <= set(stats.AGE_LABELS)
    occ = groups["occupation"]
    assert list(occ.n_users) == sorted(occ.n_users, reverse=True)
    assert stats.demographics(random_dataset(users=False)) == []
