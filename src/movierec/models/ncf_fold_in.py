"""Folding a new person into a trained NCF model without optimisation: a learned map from the
items someone picked to the user vector the network expects.

Every trained user ``u`` has a user vector ``v_u`` (GMF and MLP parts side by side) and a history
of items. :class:`PooledFoldIn` fits, once per trained network, the ridge regression
``v_u ~ A [mean of u's item embeddings; 1]`` over the trained users (the item embeddings are the
network's own tables, GMF and MLP side by side). A new person's vector is the same map applied to
their picks, shrunk towards the mean trained user by the number of picks ``n``::

    v = mu + n / (n + shrinkage) * (A [mean of the picks' embeddings; 1] - mu)

so one pick says little (the answer leans on what everyone likes) and twenty say a lot. It costs
one small matrix product, a few microseconds, where 100 Adam steps through the network cost
100-250 ms; P4 figures for both are in the closing note of issue 13 and ``docs/evaluation.md``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["PooledFoldIn"]

RIDGE = 1.0
"""L2 penalty of the map (the pooled embeddings are ~0.1-1 in scale; one unit barely bends it)."""


class PooledFoldIn:
    """The fitted map of one network (see the module docstring).

    Args:
        user_vectors: ``float (n_users, d)``, the trained users' vectors.
        item_embeddings: ``float (n_items, e)``, each item's embedding(s).
        seen: binary CSR ``n_users x n_items`` of the train interactions.
    """

    def __init__(self, user_vectors: np.ndarray, item_embeddings: np.ndarray,
                 seen: sp.csr_matrix):
        counts = np.diff(seen.indptr)
        trained = counts > 0
        if not trained.any():
            raise ValueError("no trained user has interactions to learn the fold-in map from")
        self.embeddings = np.asarray(item_embeddings, dtype=np.float64)
        inverse = sp.diags(1.0 / np.maximum(counts, 1))
        pooled = np.asarray(inverse @ (seen @ self.embeddings))[trained]  # (users, e)
        x = np.hstack([pooled, np.ones((len(pooled), 1))])
        y = np.asarray(user_vectors, dtype=np.float64)[trained]
        gram = x.T @ x
        gram[np.diag_indices_from(gram)] += RIDGE
        self.map = np.linalg.solve(gram, x.T @ y)  # (e + 1, d)
        self.mean_user = y.mean(axis=0)

    def vector(self, items: np.ndarray, shrinkage: float) -> np.ndarray:
        """``float32 (d,)`` user vector of someone who picked ``items`` (item_idx, at least one);
        ``shrinkage``: the number of picks at which their own signal and the mean user weigh
        the same (0: their own signal alone)."""
        n = len(items)
        pooled = self.embeddings[items].mean(axis=0)
        own = pooled @ self.map[:-1] + self.map[-1]
        weight = n / (n + shrinkage) if shrinkage > 0 else 1.0
        return (self.mean_user + weight * (own - self.mean_user)).astype(np.float32)
