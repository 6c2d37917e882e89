"""eALS on planted data: the paper's loss, its element-wise updates, popularity weighting and
exact fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models.base import create
from movierec.models.eals import EALSState, missing_weights

from .conftest import SMOKE_OPTIONS


def small_problem(seed: int = 0, users: int = 9, items: int = 7, k: int = 3):
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < 0.35).astype(np.float32)
    dense[np.arange(users), rng.integers(0, items - 1, users)] = 1.0  # every user has one
    dense[:, -1] = 0.0  # a cold item
    seen = sp.csr_matrix(dense)
    c = missing_weights(dense.sum(axis=0), 5.0, 0.5)
    p, q = rng.normal(0, 0.3, (users, k)), rng.normal(0, 0.3, (items, k))
    return dense, seen, c, p, q


def dense_loss(dense, c, w, reg, p, q) -> float:
    pred = p @ q.T
    weight = np.where(dense > 0, w, c[None, :])
    return float(np.sum(weight * (dense - pred) ** 2) + reg * (np.sum(p**2) + np.sum(q**2)))


def java_update_user(u, dense, c, w, reg, p, q):
    """The authors' MF_fastALS.update_user, loop for loop, for one user (reference)."""
    sv = q.T @ (c[:, None] * q)
    items = np.flatnonzero(dense[u])
    pred = {i: p[u] @ q[i] for i in items}
    for f in range(p.shape[1]):
        numer = -sum(p[u, k] * sv[f, k] for k in range(p.shape[1]) if k != f)
        denom = 0.0
        for i in items:
            pred[i] -= p[u, f] * q[i, f]
            numer += (w * 1.0 - (w - c[i]) * pred[i]) * q[i, f]
            denom += (w - c[i]) * q[i, f] ** 2
        p[u, f] = numer / (denom + sv[f, f] + reg)
        for i in items:
            pred[i] += p[u, f] * q[i, f]


def test_missing_weights_follow_the_paper():
    counts = np.array([10, 0, 5, 1, 4])
    c = missing_weights(counts, 8.0, 0.5)
    assert c.sum() == pytest.approx(8.0)
    assert c[1] == 0.0  # nobody rated it: no missing-data weight
    rated = counts > 0
    assert np.allclose(c[rated] / c[rated].sum(), np.sqrt(counts[rated]) / np.sqrt(
        counts[rated]).sum())
    uniform = missing_weights(counts, 8.0, 0.0)
    assert np.allclose(uniform[rated], 2.0)


def test_vectorised_user_sweep_matches_the_authors_loops():
    dense, seen, c, p, q = small_problem()
    state = EALSState(seen, c, 2.0, 0.1, p.copy(), q.copy())
    state.user_sweep()
    ref = p.copy()
    for u in range(len(dense)):
        java_update_user(u, dense, c, 2.0, 0.1, ref, q)
    assert np.allclose(state.p, ref)
    # the prediction cache follows the new factors
    rows, cols = seen.nonzero()
    assert np.allclose(np.sort(state.pred), np.sort(np.einsum("ij,ij->i", ref[rows], q[cols])))


def test_cached_loss_equals_the_full_loss_and_never_increases():
    dense, seen, c, p, q = small_problem(seed=3)
    state = EALSState(seen, c, 1.5, 0.05, p, q)
    losses = [state.loss()]
    assert losses[0] == pytest.approx(dense_loss(dense, c, 1.5, 0.05, state.p, state.q))
    for _ in range(6):
        state.user_sweep()
        losses.append(state.loss())
        state.item_sweep()
        losses.append(state.loss())
    assert losses[-1] == pytest.approx(dense_loss(dense, c, 1.5, 0.05, state.p, state.q))
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])
    assert losses[-1] < 0.8 * losses[0]


def test_training_loss_is_non_increasing_on_planted_data(fitted):
    losses = [row["train loss"] for row in fitted("eals").training_history()[0].epochs]
    assert len(losses) >= 5
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])


def top_popularity(model, planted) -> float:
    """Mean train popularity of the users' top-10 recommendations."""
    counts = planted.train.item_counts
    tops = [model.recommend(u, 10)[0] for u in range(0, planted.train.n_users, 4)]
    return float(np.mean(counts[np.concatenate(tops)]))


def test_popularity_weighting_pushes_popular_items_down(planted):
    """The paper's point: weighting the missing data by popularity treats a popular item the
    user skipped as a stronger negative, so recommendations lean less on popularity than with
    uniform weights (alpha = 0) of the same total."""
    common = {"factors": 16, "iterations": 10, "missing_weight": 64.0, "regularization": 1.0}
    uniform = create("eals", popularity_exponent=0.0, **common).fit(planted.train,
                                                                    options=SMOKE_OPTIONS)
    skewed = create("eals", popularity_exponent=1.0, **common).fit(planted.train,
                                                                   options=SMOKE_OPTIONS)
    assert not np.allclose(uniform.item_factors_, skewed.item_factors_)
    assert top_popularity(skewed, planted) < 0.9 * top_popularity(uniform, planted)


def test_fold_in_of_a_known_user_is_their_vector_after_one_more_sweep(planted):
    model = create("eals", factors=8, iterations=40, regularization=1.0).fit(
        planted.train, options=SMOKE_OPTIONS)
    p = model.typed_params()
    state = EALSState(model.seen_, model.missing_weights(), p.positive_weight, p.regularization,
                      model.user_factors_.astype(np.float64),
                      model.item_factors_.astype(np.float64))
    state.user_sweep()
    for u in (0, 17, 101):
        items = model.seen_.indices[model.seen_.indptr[u]: model.seen_.indptr[u + 1]]
        folded = model.fold_in(items)
        assert np.abs(folded - state.p[u]).max() < 1e-3
    # and exactly the fixed point of the element-wise updates (many sweeps, items fixed)
    for _ in range(200):
        state.user_sweep()
    items = model.seen_.indices[model.seen_.indptr[17]: model.seen_.indptr[18]]
    assert np.allclose(model.fold_in(items), state.p[17], rtol=1e-5, atol=1e-6)
