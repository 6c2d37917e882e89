"""Explicit rating models (movierec.models.explicit*) on planted low-rank ratings.

Ratings are ``round(mu + b_u + b_i + p_u . q_i + noise)`` clipped to 1..5, with rank-3 factors:
a factor model must beat the bias model, which must beat the global mean, on held-out ratings.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.evaluation.protocols import evaluate_p3
from movierec.models.base import Recommender, create
from movierec.models.explicit import SVDSGD, holdout, solve_rows
from movierec.models.explicit_neural import side_features
from movierec.options import FitOptions
from movierec.training.curves import read_curve, save_curve
from movierec.training.history import TrainingHistory

N_USERS, N_ITEMS, RANK, DENSITY = 300, 200, 3, 0.25
FAST = {
    "global-mean": {},
    "biases": {"epochs": 8},
    "svd-sgd": {"factors": 10, "lr": 0.02, "reg": 0.05, "epochs": 40, "batch_size": 256},
    "mf-als": {"factors": 5, "reg": 0.05, "epochs": 10},
    # fixed epochs (no selection slice) keep the torch models quick
    "neural-mf": {"factors": 8, "lr": 0.02, "reg": 0.02, "epochs": 12, "valid_fraction": 0.0},
    "neural-side": {"factors": 8, "hidden": (16,), "lr": 0.02, "reg": 0.02, "epochs": 12,
                    "dropout": 0.0, "weight_decay": 0.0, "valid_fraction": 0.0},
    "autorec": {"hidden": 32, "reg": 1.0, "lr": 0.03, "batch_size": 32, "epochs": 20,
                "valid_fraction": 0.0},
}
RATING_MODELS = list(FAST)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # speed and reproducibility on a shared 2-core machine
    yield
    torch.set_num_threads(before)


def make_ratings(seed: int = 3, cold_items: int = 4) -> tuple[Dataset, Dataset, Dataset]:
    """(full, train, test): planted low-rank ratings; the last ``cold_items`` catalogue items and
    the last user's ratings appear in test only (unseen in train)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.8, (N_USERS, RANK))
    q = rng.normal(0, 0.8, (N_ITEMS, RANK))
    bu, bi = rng.normal(0, 0.4, N_USERS), rng.normal(0, 0.5, N_ITEMS)
    mask = rng.random((N_USERS, N_ITEMS)) < DENSITY
    u, i = np.nonzero(mask)
    raw = 3.4 + bu[u] + bi[i] + np.einsum("nk,nk->n", p[u], q[i]) + rng.normal(0, 0.3, len(u))
    ratings = pl.DataFrame({"user_id": u + 1, "item_id": i + 1,
                            "rating": np.clip(np.round(raw), 1, 5),
                            "timestamp": rng.integers(1e9, 1.1e9, len(u))})
    items = pl.DataFrame({"item_id": np.arange(1, N_ITEMS + 1),
                          "title": [f"m{j}" for j in range(N_ITEMS)],
                          "year": (1930 + np.arange(N_ITEMS) % 70).astype(np.int32),
                          "genres": [[f"G{j % 4}", f"G{j % 7}"] for j in range(N_ITEMS)]})
    users = pl.DataFrame({"user_id": np.arange(1, N_USERS + 1),
                          "age": rng.integers(12, 70, N_USERS),
                          "gender": rng.choice(["M", "F"], N_USERS),
                          "occupation": rng.choice(["artist", "doctor", "none"], N_USERS),
                          "zip": ["0"] * N_USERS})
    full = Dataset.from_frames("planted-ratings", ratings, items, users)
    test = rng.random(full.n_ratings) < 0.2
    test |= full.item_idx >= full.n_items - cold_items
    test |= full.user_idx == full.n_users - 1
    return full, full.subset(~test, "planted/train"), full.subset(test, "planted/test")


@pytest.fixture(scope="module")
def data():
    return make_ratings()


@pytest.fixture(scope="module")
def fitted(data):
    _, train, _ = data
    cache: dict[str, Recommender] = {}

    def get(name: str) -> Recommender:
        if name not in cache:
            cache[name] = create(name, **FAST[name]).fit(train)
        return cache[name]

    return get


def test_models_rank_by_how_much_structure_they_use(data, fitted):
    _, train, test = data
    rmse = {n: evaluate_p3(fitted(n), train, test)["RMSE"] for n in RATING_MODELS}
    assert rmse["biases"] < rmse["global-mean"] - 0.1, rmse
    for n in ("svd-sgd", "mf-als", "neural-mf", "neural-side", "autorec"):
        assert rmse[n] < rmse["biases"] - 0.05, (n, rmse)


@pytest.mark.parametrize("name", RATING_MODELS)
def test_predictions_are_clipped_float32(name, data, fitted):
    full, train, _ = data
    model = fitted(name)
    u, i = np.meshgrid(np.arange(full.n_users), np.arange(full.n_items), indexing="ij")
    pred = model.predict(u, i)
    assert pred.dtype == np.float32 and pred.shape == u.shape
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    np.testing.assert_array_equal(model.score(u, i), pred)  # ranking uses the rating
    np.testing.assert_allclose(model.score_all(np.arange(5)), pred[:5], rtol=1e-5, atol=1e-5)
    if name not in ("global-mean", "biases"):
        assert pred.max() == 5.0  # planted extremes: the raw prediction overshoots, clip holds


def test_clipping_uses_the_train_scale():
    ratings = pl.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 2, 3],
                            "rating": [4.5, 4.5, 4.5, 4.0, 0.5], "timestamp": [1, 2, 3, 4, 5]})
    ds = Dataset.from_frames("tiny", ratings)
    model = create("biases", reg_user=0.0, reg_item=0.0, valid_fraction=0.0).fit(ds)
    np.testing.assert_array_equal(model.rating_range_, [0.5, 4.5])
    assert model.predict(np.array([0]), np.array([0]))[0] <= 4.5


@pytest.mark.parametrize("name", RATING_MODELS)
def test_unseen_users_and_items_fall_back(name, data, fitted):
    full, train, _ = data
    model = fitted(name)
    new_user = full.n_users - 1
    new_items = np.arange(full.n_items - 4, full.n_items)
    assert train.user_counts[new_user] == 0 and (train.item_counts[new_items] == 0).all()
    known = np.flatnonzero(train.item_counts > 0)[:20]
    for u, i in ((new_user, known), (0, new_items), (new_user, new_items)):
        pred = model.predict(np.full(len(i), u), i)
        assert np.isfinite(pred).all() and (pred >= 1).all() and (pred <= 5).all()
    if name in ("biases", "svd-sgd", "mf-als"):
        mu = model.global_mean_
        np.testing.assert_allclose(model.predict(np.full(20, new_user), known),
                                   np.clip(mu + model.item_bias_[known], 1, 5), rtol=1e-6)
        np.testing.assert_allclose(model.predict(np.full(4, 0), new_items),
                                   np.clip(mu + model.user_bias_[0], 1, 5), rtol=1e-6)
        assert model.predict(np.array([new_user]), new_items[:1])[0] == pytest.approx(mu)


@pytest.mark.parametrize("name", ["svd-sgd", "mf-als", "neural-side", "autorec"])
def test_save_load_round_trip_predicts_the_same(name, data, fitted, tmp_path):
    full, _, test = data
    model = fitted(name)
    loaded = Recommender.load(model.save(tmp_path / name))
    np.testing.assert_array_equal(loaded.predict(test.user_idx, test.item_idx),
                                  model.predict(test.user_idx, test.item_idx))


@pytest.mark.parametrize("name", ["svd-sgd", "mf-als", "neural-mf", "autorec"])
def test_same_seed_same_model_other_seed_other_model(name, data):
    _, train, test = data
    params = {**FAST[name], "epochs": 3}
    a, b, c = (create(name, **params, seed=s).fit(train) for s in (5, 5, 6))
    pa, pb, pc = (m.predict(test.user_idx, test.item_idx) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(pa, pc)


def test_selection_uses_a_train_slice_then_refits(data, tmp_path):
    _, train, _ = data
    model = create("svd-sgd", **{**FAST["svd-sgd"], "epochs": 60, "patience": 3},
                   valid_fraction=0.1).fit(train, options=FitOptions(curves_dir=str(tmp_path)))
    select, refit = model.training_history()
    valid_rmse = select.series()["valid RMSE"]
    assert 1 <= select.best_epoch < len(select) <= 60 and select.stopped_early
    assert np.nanargmin(valid_rmse) + 1 == select.best_epoch
    assert len(refit) == select.best_epoch == model.best_epoch_
    assert "valid RMSE" not in refit.series()  # the refit on all of train has nothing held out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4 and {p.rsplit(".", 1)[1] for p in files} == {"csv", "png"}
    back = read_curve(next(tmp_path.glob("*select.csv")))
    np.testing.assert_allclose(back.series()["valid RMSE"], valid_rmse, atol=1e-6)
    assert back.best_epoch == select.best_epoch
    rest, valid = holdout(train, 0.1, 0)
    assert rest.n_ratings + valid.n_ratings == train.n_ratings
    assert valid.n_ratings == round(0.1 * train.n_ratings)


def test_given_validation_set_early_stops_without_refit(data):
    _, train, _ = data
    rest, valid = holdout(train, 0.1, 1)
    model = create("neural-mf", **{**FAST["neural-mf"], "epochs": 30, "patience": 2}
                   ).fit(rest, valid)
    (curve,) = model.training_history()
    best = model._rmse_on(valid)
    # parameters of the best epoch
    assert best == pytest.approx(min(curve.series()["valid RMSE"]), abs=1e-5)


def test_minibatch_of_one_is_funk_svd():
    """batch_size=1 reproduces the textbook per-rating Funk-SVD update."""
    ratings = pl.DataFrame({"user_id": [1, 1, 2, 3, 3, 3], "item_id": [1, 2, 2, 1, 3, 2],
                            "rating": [5.0, 3, 4, 1, 2, 5], "timestamp": [1, 2, 3, 4, 5, 6]})
    ds = Dataset.from_frames("tiny", ratings)
    model = SVDSGD(factors=2, lr=0.05, reg=0.1, reg_bias=0.02, epochs=2, batch_size=1,
                   valid_fraction=0.0, seed=4).fit(ds)
    rng = np.random.default_rng(4)
    p = rng.normal(0, 0.1, (ds.n_users, 2)).astype(np.float32)
    q = rng.normal(0, 0.1, (ds.n_items, 2)).astype(np.float32)
    bu, bi = np.zeros(ds.n_users), np.zeros(ds.n_items)
    mu = ds.rating.mean()
    for _ in range(2):
        for r in rng.permutation(ds.n_ratings):  # reference implementation: one rating at a time
            u, i = ds.user_idx[r], ds.item_idx[r]
            e = ds.rating[r] - mu - bu[u] - bi[i] - p[u] @ q[i]
            bu[u] += 0.05 * (e - 0.02 * bu[u])
            bi[i] += 0.05 * (e - 0.02 * bi[i])
            pu = p[u].copy()
            p[u] += 0.05 * (e * q[i] - 0.1 * p[u])
            q[i] += 0.05 * (e * pu - 0.1 * q[i])
    np.testing.assert_allclose(model.user_factors_, p, atol=1e-5)
    np.testing.assert_allclose(model.item_bias_, bi, atol=1e-5)


def test_batched_ridge_solves_match_one_by_one():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    m = sp.random(50, 30, density=0.2, format="csr", random_state=1, dtype=np.float64)
    f = rng.normal(size=(30, 4))
    x = solve_rows(m.indptr, m.indices, m.data, f, 0.3, 0.01, budget=64)  # many small batches
    for r in range(50):
        cols = m.indices[m.indptr[r] : m.indptr[r + 1]]
        if len(cols) == 0:
            assert not x[r].any()
            continue
        d = np.hstack([f[cols], np.ones((len(cols), 1))])
        a = d.T @ d + len(cols) * np.diag([0.3] * 4 + [0.01])
        want = np.linalg.solve(a, d.T @ m.data[m.indptr[r] : m.indptr[r + 1]])
        np.testing.assert_allclose(x[r], want, rtol=1e-4, atol=1e-5)


def test_side_features_are_coded_and_switchable(data):
    full, train, _ = data
    f = side_features(full)
    ages = full.users.get_column("age").to_numpy()
    assert (f["user_features"][ages < 18, 0] == 1).all()
    assert (f["user_features"][ages >= 56, 0] == 7).all()
    assert set(np.unique(f["user_features"][:, 1])) == {1, 2}
    assert f["sizes"].tolist()[:3] == [8, 3, 4]
    assert (np.sort(f["item_genres"], axis=1)[:, 0] < f["sizes"][3]).all()  # every item has one
    one_epoch = {**FAST["neural-side"], "epochs": 1}
    on = create("neural-side", **one_epoch).fit(train)
    off = create("neural-side", **one_epoch, use_age=False, use_genres=False).fit(train)
    assert set(on._enabled()) == {"age", "gender", "occupation", "genres", "year"}
    assert set(off._enabled()) == {"gender", "occupation", "year"}
    assert len(off.weights_) < len(on.weights_)
    no_users = Dataset.from_frames("anon", train.ratings_frame(), train.items)
    bare = create("neural-side", **one_epoch).fit(no_users)
    assert set(bare._enabled()) == {"genres", "year"}  # the data has no user table


def test_blend_weights_members_on_validation(data):
    _, train, test = data
    members = [{"name": "biases", "params": FAST["biases"]},
               {"name": "svd-sgd", "params": FAST["svd-sgd"]},
               {"name": "mf-als", "params": FAST["mf-als"]}]
    blend = create("explicit-blend", members=members).fit(train)
    got = evaluate_p3(blend, train, test)["RMSE"]
    each = [evaluate_p3(m, train, test)["RMSE"] for m in blend._member_models()]
    assert got <= min(each) + 0.01, (got, each)
    assert len(blend.blend_weights_) == 4 and blend.member_epochs_[1] >= 1


def test_blend_of_torch_members_round_trips(data, tmp_path):
    _, train, test = data
    members = [{"name": n, "params": {**FAST[n], "epochs": 3}} for n in ("neural-side", "autorec")]
    blend = create("explicit-blend", members=members, seed=2).fit(train)
    loaded = Recommender.load(blend.save(tmp_path / "blend"))
    np.testing.assert_array_equal(loaded.predict(test.user_idx, test.item_idx),
                                  blend.predict(test.user_idx, test.item_idx))
    picks = train.csr[3].indices
    np.testing.assert_allclose(loaded.score_folded(loaded.fold_in(picks, train.csr[3].data)),
                               blend.score_folded(blend.fold_in(picks, train.csr[3].data)),
                               rtol=1e-5, atol=1e-5)


def test_blend_with_a_blend_member_scores_a_folded_in_person(data):
    # a blend splits its fold-in state by each member's fold_in_size; a member blend had none
    _, train, _ = data
    inner = {"name": "explicit-blend",
             "params": {"members": [{"name": "global-mean"},
                                    {"name": "biases", "params": FAST["biases"]}]}}
    blend = create("explicit-blend",
                   members=[inner, {"name": "biases", "params": FAST["biases"]}]).fit(train)
    picks, ratings = train.csr[3].indices, train.csr[3].data
    state = blend.fold_in(picks, ratings)
    scores = blend.score_folded(state)
    assert scores.shape == (train.n_items,) and np.isfinite(scores).all()
    assert len(state) == blend.fold_in_size()
    lo, hi = blend.rating_range_
    assert (scores >= lo).all() and (scores <= hi).all()


def test_curve_files(tmp_path):
    curve = TrainingHistory("a/b c", monitor="valid RMSE", mode="min")
    for t, v in [(1.0, 1.1), (0.8, 0.9), (0.7, 0.95)]:
        curve.add(**{"train RMSE": t, "valid RMSE": v})
    curve.best_epoch = 2
    csv, png = save_curve(curve, tmp_path)
    assert csv.name == "a_b_c.csv" and png is not None and png.stat().st_size > 1000
    lines = csv.read_text().splitlines()
    assert lines[0] == "epoch,train RMSE,valid RMSE,best" and lines[2].endswith(",1")
