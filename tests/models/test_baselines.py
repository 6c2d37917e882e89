"""What each baseline computes, checked against direct dense computations on small data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import movierec.models.baselines as baselines
import movierec.progress as progress_module
from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import create


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    """12 users x 9 rated items (+1 item nobody rated), random binary pattern with repeats."""
    rng = np.random.default_rng(3)
    dense = rng.random((12, 9)) < 0.4
    dense[:, 0] = True  # one item everybody has: ties in co-occurrence
    u, i = np.nonzero(dense)
    ratings = pl.DataFrame(
        {
            "user_id": u + 1,
            "item_id": i + 1,
            "rating": rng.integers(1, 6, len(u)).astype(np.float32),
            "timestamp": np.arange(len(u), dtype=np.int64),
        }
    )
    items = pl.DataFrame({"item_id": np.arange(1, 11)})
    return Dataset.from_frames("tiny", ratings, items)


def binary(ds: Dataset) -> np.ndarray:
    return (ds.csr.toarray() > 0).astype(np.float64)


def test_popularity_counts_train_users(tiny):
    model = create("popularity").fit(tiny)
    np.testing.assert_array_equal(model.score_all(np.array([0]))[0], binary(tiny).sum(axis=0))
    np.testing.assert_array_equal(
        model.score_folded(model.fold_in(np.array([1]))), binary(tiny).sum(axis=0)
    )


def test_random_is_seeded_uniform_and_per_pair(planted):
    a = create("random", seed=1).fit(planted.train).score_all(np.arange(50))
    b = create("random", seed=1).fit(planted.train).score_all(np.arange(50))
    c = create("random", seed=2).fit(planted.train).score_all(np.arange(50))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 1 and abs(a.mean() - 0.5) < 0.02
    assert len(np.unique(a)) > 0.99 * a.size  # no pattern repeating across users or items


@pytest.mark.parametrize(("k", "shrink"), [(3, 0.0), (3, 2.5), (20, 1.0)])
def test_itemknn_is_shrunk_cosine_top_k(tiny, k, shrink):
    x = binary(tiny)
    co = x.T @ x
    n = x.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.nan_to_num(co / (np.sqrt(np.outer(n, n)) + shrink))
    np.fill_diagonal(sim, 0.0)
    model = create("itemknn", k=k, shrink=shrink).fit(tiny)
    got = model.similarity_.toarray()
    for j in range(tiny.n_items):  # column j keeps the k largest similarities to item j
        kept = np.flatnonzero(got[:, j])
        assert len(kept) <= k
        np.testing.assert_allclose(got[kept, j], sim[kept, j], rtol=1e-6)
        dropped = np.setdiff1d(np.arange(tiny.n_items), kept)
        if len(kept) == k and len(dropped):
            assert sim[dropped, j].max() <= got[kept, j].min() + 1e-7
        else:
            assert np.all(sim[dropped, j] == 0)
    np.testing.assert_allclose(model.score_all(np.arange(tiny.n_users)), x @ got, rtol=1e-5)


def _dense_ease(x: np.ndarray, l2: float) -> np.ndarray:
    g = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_matches_the_closed_form(tiny):
    x = binary(tiny)
    model = create("ease", l2=3.0).fit(tiny)
    full = _dense_ease(x, 3.0)  # over all items, the unrated one included
    np.testing.assert_allclose(model.score_all(np.arange(tiny.n_users)), x @ full, atol=1e-5)
    assert tiny.n_items == 10 and len(model.active_items_) == 9
    assert np.all(model.score_all(np.arange(tiny.n_users))[:, 9] == 0)  # the unrated item
    np.testing.assert_array_equal(np.diag(model.item_weights_), 0)
    picks = np.array([0, 4])
    np.testing.assert_allclose(
        model.score_folded(model.fold_in(picks)), full[picks].sum(axis=0), atol=1e-5
    )


def test_ease_warns_on_large_catalogues(tiny, monkeypatch):
    monkeypatch.setattr(baselines, "EASE_WARN_ITEMS", 5)
    with pytest.warns(ResourceWarning, match="EASE on 9 items"):
        create("ease").fit(tiny)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("ease", {"l2": 0.0}, "l2: 0.0 is not allowed .*greater than 0"),
        ("itemknn", {"k": 0}, "k: 0 is not allowed .*greater than or equal to 1"),
        ("ials", {"factors": 0}, "factors: 0 is not allowed"),
        ("bpr", {"learning_rate": -1.0}, "learning_rate: -1.0 is not allowed"),
    ],
)
def test_bad_hyper_parameters_are_refused_before_any_work(tiny, name, params, message):
    with pytest.raises(ModelError, match=message):
        create(name, **params)
    model = create(name)
    for key, value in params.items():  # set behind the constructor's back: fit still refuses
        setattr(model, key, value)
    with pytest.raises(ModelError, match=message):
        model.fit(tiny)


def test_ials_fold_in_is_implicits_recalculate_user(fitted, planted):
    from implicit.cpu.als import AlternatingLeastSquares

    model = fitted("ials")
    als = AlternatingLeastSquares(
        factors=model.factors, regularization=model.regularization, alpha=model.alpha
    )
    als.item_factors = model.item_factors_.copy()
    als.user_factors = model.user_factors_.copy()
    for u in (0, 11, 200):
        row = planted.train.csr[u].copy()
        row.data[:] = 1.0
        expected = als.recalculate_user(0, row)
        np.testing.assert_allclose(model.fold_in(row.indices), expected, rtol=1e-3, atol=1e-4)
    # a train user folded in again scores items like the trained user vector
    folded = model.score_folded(model.fold_in(planted.train.csr[11].indices))
    assert np.corrcoef(folded, model.score_all(np.array([11]))[0])[0, 1] > 0.95


def test_bpr_fold_in_minimises_the_pairwise_loss(fitted, planted):
    model = fitted("bpr")
    picks = planted.train.csr[5].indices
    x = model.fold_in(picks).astype(np.float64)
    assert x.shape == (model.factors + 1,) and x[-1] == 1.0
    y = model.item_factors_.astype(np.float64)
    negatives = np.setdiff1d(np.flatnonzero(planted.train.item_counts > 0), picks)

    def loss(v):
        diff = (y[picks] @ v)[:, None] - (y[negatives] @ v)[None, :]
        return np.logaddexp(0, -diff).mean() + 0.5 * model.regularization * (v[:-1] @ v[:-1])

    rng = np.random.default_rng(0)
    best = loss(x)
    for _ in range(20):  # any small move of the free components increases the loss
        step = np.append(rng.normal(0, 0.05, len(x) - 1), 0.0)
        assert loss(x + step) > best
    assert best < loss(np.append(np.zeros(len(x) - 1), 1.0))


@pytest.mark.parametrize("name", ["ials", "bpr"])
def test_factor_models_are_deterministic_per_seed(name, planted):
    params = {"factors": 8, "iterations": 3}
    a = create(name, seed=4, **params).fit(planted.train)
    b = create(name, seed=4, **params).fit(planted.train)
    c = create(name, seed=5, **params).fit(planted.train)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)
    assert a.item_factors_.dtype == np.float32 and type(a.item_factors_) is np.ndarray


def test_ease_folded_in_train_user_scores_exactly_like_the_known_user(tiny):
    model = create("ease", l2=5.0).fit(tiny)
    for u in range(12):
        picks = tiny.csr[u].indices
        np.testing.assert_allclose(
            model.score_folded(model.fold_in(picks)), model.score_all(np.array([u]))[0],
            rtol=1e-5, atol=1e-6,
        )


def test_itemknn_never_holds_a_dense_items_by_items_block():
    """87,585 items (ML-32M's catalogue): a dense float32 similarity would need 30 GB and even
    one dense column block of it tens of MB per hundred targets; the sparse fit stays small."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n_users, n_items = 2_000, 87_585
    users = np.repeat(np.arange(n_users), 15)
    items = rng.choice(n_items, len(users))
    ratings = pl.DataFrame({"user_id": users + 1, "item_id": items + 1,
                            "rating": np.ones(len(users), np.float32),
                            "timestamp": np.arange(len(users), dtype=np.int64)}
                           ).unique(["user_id", "item_id"])
    ds = Dataset.from_frames("wide", ratings, pl.DataFrame({"item_id": np.arange(1, n_items + 1)}))
    tracemalloc.start()
    model = create("itemknn", k=20).fit(ds)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert model.similarity_.shape == (n_items, n_items)
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    x = binary_sparse(ds)
    co = (x.T @ x).tocsc()  # brute force on the few columns that have neighbours
    j = int(np.argmax(np.diff(co.indptr)))
    got = model.similarity_[:, j].toarray().ravel()
    expected = co[:, j].toarray().ravel() / (np.sqrt(ds.item_counts * ds.item_counts[j]) + 10.0)
    expected[j] = 0
    kept = np.flatnonzero(got)
    np.testing.assert_allclose(got[kept], expected[kept], rtol=1e-6)
    assert len(kept) == min(20, np.count_nonzero(expected))


def binary_sparse(ds: Dataset):
    x = ds.csr.copy()
    x.data[:] = 1.0
    return x


def test_item_item_neighbours_say_how_far_they_are(planted, monkeypatch, capsys):
    """ML-32M's neighbour computation runs for many minutes: off a terminal it prints lines of
    target items done (and of how many), and the graph is the same as without them."""

    quiet = create("itemknn", k=5).fit(planted.train).similarity_
    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.0)
    loud = create("itemknn", k=5).fit(planted.train).similarity_
    assert (quiet != loud).nnz == 0
    lines = [x for x in capsys.readouterr().err.splitlines()
             if x.startswith("item-item neighbours: items ")]
    assert lines and lines[-1].split()[3] == f"{planted.train.n_items}/{planted.train.n_items}"


def test_sparse_ease_regressions_say_how_far_they_are(planted, monkeypatch, capsys):
    """After the neighbours, sparse-EASE solves one small regression per item (ML-32M: 87K of
    them, minutes): off a terminal that stage prints its own lines too."""

    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.0)
    create("sparse-ease", k=5).fit(planted.train)
    lines = [x for x in capsys.readouterr().err.splitlines()
             if x.startswith("sparse-ease regressions: items ")]
    assert lines
