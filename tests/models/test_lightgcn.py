"""LightGCN on planted data: the normalised graph, the layer mean, MF-BPR at zero layers and
fold-in against known users."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models.base import create
from movierec.models.lightgcn import layer_embeddings, normalized_adjacency

from .conftest import SMOKE_OPTIONS

torch = pytest.importorskip("torch")


def test_adjacency_is_the_symmetric_normalised_bipartite_graph():
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]], np.float32))
    adj = normalized_adjacency(seen).toarray()
    assert adj.shape == (7, 7)
    assert np.allclose(adj, adj.T)
    du, di = seen.sum(axis=1).A1, seen.sum(axis=0).A1
    expected = seen.toarray() / np.sqrt(np.outer(du, np.maximum(di, 1)))
    assert np.allclose(adj[:3, 3:], expected)
    assert np.allclose(adj[:3, :3], 0) and np.allclose(adj[3:, 3:], 0)
    assert not adj[6].any()  # an item nobody rated has no edge


def test_final_embeddings_are_the_mean_of_the_propagated_layers(fitted):
    model = fitted("lightgcn")
    layers = layer_embeddings(normalized_adjacency(model.seen_),
                              np.vstack([model.user_ego_, model.item_ego_]), 2)
    assert len(layers) == 3
    mean = np.mean(layers, axis=0)
    assert np.allclose(model.user_factors_, mean[: model.n_users_], atol=1e-5)
    assert np.allclose(model.item_factors_, mean[model.n_users_:], atol=1e-5)
    # the torch network propagates the same way
    from movierec.models.lightgcn import _network_class

    net = _network_class()(model.n_users_, model.n_items_, 16, 2,
                           normalized_adjacency(model.seen_), 0.1)
    with torch.no_grad():
        net.user.weight.copy_(torch.from_numpy(model.user_ego_))
        net.item.weight.copy_(torch.from_numpy(model.item_ego_))
        users, items = net.propagate()
    assert np.allclose(users.numpy(), model.user_factors_, atol=1e-5)
    assert np.allclose(items.numpy(), model.item_factors_, atol=1e-5)


def test_zero_layers_is_matrix_factorisation_with_bpr(planted, hit_rate_of):
    model = create("lightgcn", factors=16, layers=0, epochs=40, batch_size=512, lr=0.01,
                   patience=None, holdout=False).fit(planted.train, options=SMOKE_OPTIONS)
    assert np.array_equal(model.user_factors_, model.user_ego_)
    assert np.array_equal(model.item_factors_, model.item_ego_)
    users = np.arange(0, model.n_users_, 7)
    assert np.allclose(model.score_all(users), model.user_ego_[users] @ model.item_ego_.T,
                       atol=1e-5)
    assert hit_rate_of(model, planted) > 0.5  # BPR-MF learns the planted groups too
    # with nothing to propagate, a new person is the normalised sum of their picks' embeddings
    picks = np.array([0, 6, 12])
    weights = 1.0 / np.sqrt(3 * model.item_counts_[picks])
    assert np.allclose(model.fold_in(picks), weights @ model.item_ego_[picks], atol=1e-6)


def test_fold_in_of_known_users_ranks_like_their_learned_embeddings(fitted):
    model = fitted("lightgcn")
    overlaps = []
    for u in range(0, model.n_users_, 3):
        items = model.seen_.indices[model.seen_.indptr[u]: model.seen_.indptr[u + 1]]
        folded = model.recommend_folded(model.fold_in(items), 10, exclude=items)[0]
        known = model.recommend(u, 10)[0]
        overlaps.append(len(np.intersect1d(folded, known)) / 10)
    assert np.mean(overlaps) >= 0.75


def test_early_stopping_keeps_the_best_validation_epoch(planted):
    model = create("lightgcn", factors=8, layers=1, epochs=12, batch_size=1024, lr=0.05,
                   patience=2, eval_every=2, holdout=True).fit(planted.train,
                                                               options=SMOKE_OPTIONS)
    history = model.training_history()[0]
    scores = {row["epoch"]: row["valid HR@10"] for row in history.epochs if "valid HR@10" in row}
    assert sorted(scores)[:3] == [2, 4, 6]  # validated every second epoch
    assert history.best_epoch == max(scores, key=lambda e: (scores[e], -e))
    assert history.stopped_early or len(history) == 12
