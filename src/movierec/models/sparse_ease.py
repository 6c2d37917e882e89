"""Sparse EASE: EASE's item-item regression restricted to each item's ``k`` strongest
co-occurring neighbours, so it scales to ML-32M's 87,585 movies where dense EASE (a dense items x
items inverse, ~12 n^2 bytes: 86 GiB there) cannot.

For each target item ``j`` with neighbourhood ``N_j`` (its ``k`` largest co-occurrence counts,
:func:`~movierec.models.baselines.top_k_cooccurrence`), the weights solve EASE's column problem
on that support::

    b_j = argmin ||x_j - X_N b||^2 + l2 ||b||^2 = (G_NN + l2 I)^-1 G_Nj,     G = X'X

``j`` is never in ``N_j``, so the diagonal is zero as EASE requires; with ``k`` at least the
number of items it is EASE exactly. This is neighbourhood-restricted SLIM (Ning & Karypis 2011,
"fsSLIM") with EASE's L2 loss. ``G_NN`` is exact: the neighbourhoods of all targets draw on few
items (popular ones; ties in the counts go to the more popular item), whose Gram is built dense
once (targets go in groups when more than :data:`GRAM_ITEMS` items are involved). Reading
``G_NN`` from the pruned Gram instead (0 between two neighbours not in each other's top ``k``)
was tried and ranks far worse (ML-100K P2 HR@10 0.01 against 0.09). Solves go in batches of
``(batch, k, k)`` systems (LAPACK), never one Python step per item.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import SCORE_BLOCK, Cost, Recommender, Shape, register
from movierec.models.baselines import COOCCURRENCE_BYTES, top_k_cooccurrence
from movierec.options import FitOptions
from movierec.progress import Progress

GRAM_ITEMS = 16_384
"""Most neighbour items whose exact Gram is held dense at once (1 GiB of float32); targets
whose neighbourhoods together hold more go in groups."""

SOLVE_BATCH_ENTRIES = 1 << 21
"""Most entries of the stacked ``(batch, k, k)`` neighbourhood systems held at once (16 MiB)."""


@register
class SparseEASE(Recommender):
    """EASE restricted to each item's ``k`` strongest co-occurring items (see the module doc).

    ``item_weights_`` is a ``float32`` CSR ``n_items x n_items`` with at most ``k`` non-zeros per
    column: a user's score for ``j`` is ``x_u . item_weights_[:, j]``. Memory ``O(k n_items)``.
    """

    name: ClassVar[str] = "sparse-ease"
    learned: ClassVar[tuple[str, ...]] = ("item_weights_",)
    param_grid: ClassVar[dict[str, list[Any]]] = {"k": [50, 100, 200],
                                                  "l2": [50.0, 200.0, 500.0]}

    def __init__(self, k: Annotated[int, Field(ge=1)] = 100,
                 l2: Annotated[float, Field(gt=0)] = 200.0):
        self.k = k
        self.l2 = l2

    @classmethod
    def estimate_cost(cls, n_users: int, n_items: int, n_interactions: int,
                      params: dict[str, Any]) -> Cost:
        k = min(int(params.get("k", 100)), max(1, n_items - 1))
        blocks = (COOCCURRENCE_BYTES * min(SCORE_BLOCK, n_items * n_items)  # blocks in flight
                  + 24 * min(SOLVE_BATCH_ENTRIES, n_items * k * k))
        gram = 4 * min(n_items, GRAM_ITEMS) ** 2  # the neighbours' exact Gram
        return Cost(48 * n_interactions + 96 * k * n_items + blocks + gram,
                    f"the top-{k} item-item graph and its neighbours' Gram")

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        n, x = self.n_items_, self.seen_
        counts = self.item_counts_.astype(np.float64)
        tiebreak = counts / (counts.max() + 1.0)  # < 1: among equal counts, popular first

        def count_then_popularity(co: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
            return co + tiebreak[i]

        pruned = top_k_cooccurrence(x, int(self.k), count_then_popularity).tocsc()
        pruned.sort_indices()
        targets = np.flatnonzero(np.diff(pruned.indptr))
        nb, rhs, valid_slot = _neighbourhoods(pruned, targets)
        rhs = np.floor(rhs)  # the co-occurrence counts G_Nj themselves
        diag = counts + float(self.l2)
        rows, cols, vals = [], [], []
        progress = Progress("sparse-ease regressions", len(targets), "items",
                            at_end=False, leave=False)
        for group in _groups(nb, valid_slot, GRAM_ITEMS):
            items = np.unique(nb[group][valid_slot[group]])
            gram = _dense_gram(x, items)  # exact G over the group's neighbours
            local = np.searchsorted(items, nb[group])
            k = nb.shape[1]
            batch = max(1, SOLVE_BATCH_ENTRIES // max(1, k * k))
            for c in range(0, len(group), batch):
                g = group[c : c + batch]
                ok, loc = valid_slot[g], np.where(valid_slot[g], local[c : c + batch], 0)
                a = gram[loc[:, :, None], loc[:, None, :]].astype(np.float64)
                a[~(ok[:, :, None] & ok[:, None, :])] = 0.0  # padding: identity rows
                a[:, np.arange(k), np.arange(k)] = np.where(ok, diag[nb[g]], 1.0)
                b = np.linalg.solve(a, rhs[g][:, :, None])[:, :, 0]
                rows.append(nb[g][ok])
                cols.append(np.broadcast_to(targets[g][:, None], ok.shape)[ok])
                vals.append(b[ok].astype(np.float32))
                progress.update(n=len(g))
        progress.close()
        if not rows:
            self.item_weights_ = sp.csr_matrix((n, n), dtype=np.float32)
            return
        self.item_weights_ = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))

    def expected_shapes(self) -> dict[str, Shape]:
        return {"item_weights_": (self.n_items_, self.n_items_)}

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        return np.asarray((self.seen_[u] @ self.item_weights_).todense(), dtype=np.float32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        x = np.asarray(state, dtype=np.float32)
        if x.shape != (self.n_items_,):
            raise ModelError(f"sparse-ease.score_folded: expected the ({self.n_items_},) "
                             f"interaction vector from fold_in, got shape {x.shape}")
        return np.asarray(self.item_weights_.T @ x, dtype=np.float32).ravel()


def _neighbourhoods(pruned: sp.csc_matrix, targets: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(T, k)`` neighbour indices of each target (padded with 0; ``k`` the longest list),
    their strengths (0 in padding) and which slots are real."""
    start, stop = pruned.indptr[targets], pruned.indptr[targets + 1]
    k = int((stop - start).max()) if len(targets) else 0
    slot = np.arange(k)[None, :]
    valid = slot < (stop - start)[:, None]
    pos = np.where(valid, start[:, None] + slot, 0)
    nb = np.where(valid, pruned.indices[pos], 0).astype(np.int64)
    strength = np.where(valid, pruned.data[pos], 0.0).astype(np.float64)
    return nb, strength, valid


def _groups(nb: np.ndarray, valid: np.ndarray, most: int) -> list[np.ndarray]:
    """Target rows in groups whose neighbourhoods together hold at most ``most`` items (one
    group when the union of all of them does): each group's exact Gram is one dense block."""
    todo, out = [np.arange(len(nb))], []
    while todo:
        rows = todo.pop()
        if len(rows) <= 1 or len(np.unique(nb[rows][valid[rows]])) <= most:
            out.append(rows)
        else:
            half = len(rows) // 2
            todo += [rows[half:], rows[:half]]
    return out


def _dense_gram(x: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """``X[:, items]' X[:, items]`` as a dense ``float32`` array, built in column blocks of
    about :data:`SCORE_BLOCK` entries so the sparse product never holds more."""
    xu = x[:, items].tocsc()
    xt = xu.T.tocsr()
    m = len(items)
    out = np.empty((m, m), dtype=np.float32)
    step = max(1, SCORE_BLOCK // max(1, m))
    for c in range(0, m, step):
        out[:, c : c + step] = (xt @ xu[:, c : c + step]).toarray()
    return out
