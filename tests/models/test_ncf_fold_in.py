"""The pooled fold-in of NCF models: a learned map from picks to user vectors, shrunk towards the
mean trained user by the number of picks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models.ncf_fold_in import PooledFoldIn


def _planted_vectors(seed: int = 0):
    """Users whose vectors are a linear function of the mean embedding of their items."""
    rng = np.random.default_rng(seed)
    n_users, n_items, e, d = 200, 50, 6, 4
    embeddings = rng.normal(size=(n_items, e))
    rows = np.repeat(np.arange(n_users), 8)
    cols = np.concatenate([rng.choice(n_items, 8, replace=False) for _ in range(n_users)])
    seen = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    truth = rng.normal(size=(e, d))
    pooled = np.asarray(seen @ embeddings) / 8
    return pooled @ truth + 0.5, embeddings, seen, truth


def test_the_map_recovers_a_linear_relation_and_applies_it_to_picks():
    users, embeddings, seen, truth = _planted_vectors()
    fold = PooledFoldIn(users, embeddings, seen)
    picks = np.array([3, 7, 11])
    want = embeddings[picks].mean(axis=0) @ truth + 0.5
    # the ridge penalty bends it by ~1%
    np.testing.assert_allclose(fold.vector(picks, shrinkage=0.0), want, rtol=0.05, atol=0.05)


def test_few_picks_lean_on_the_mean_user_many_on_the_person():
    users, embeddings, seen, _ = _planted_vectors()
    fold = PooledFoldIn(users, embeddings, seen)
    mean = users.mean(axis=0)
    for picks, weight in ((np.array([1]), 0.25), (np.arange(9), 0.75)):
        np.testing.assert_allclose(fold.vector(picks, shrinkage=3.0),
                                   mean + weight * (fold.vector(picks, shrinkage=0.0) - mean),
                                   rtol=1e-5, atol=1e-5)


def test_users_without_interactions_teach_nothing():
    users, embeddings, seen, _ = _planted_vectors()
    seen = seen.tolil()
    seen[:, :] = 0
    with pytest.raises(ValueError, match="no trained user"):
        PooledFoldIn(users, embeddings, seen.tocsr())
