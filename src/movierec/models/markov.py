"""``markov``: the next-item transition baseline the sequential networks are measured against.

From each user's train items in time order (:mod:`movierec.data.sequences`) it counts how often
item ``j`` directly follows item ``i`` (a sparse ``n_items x n_items`` matrix, each row divided by
its total: ``P(next = j | last = i)``). A person's score of item ``j`` is

    sum_k decay^k * P(j | k-th latest item)  (k = 0 .. window - 1)  +  pop_weight * pop(j)

where ``pop(j)`` is ``j``'s train users over the most popular item's (a tie-break for items no
transition reaches). ``fold_in`` keeps the picks in the order given (the last is the latest).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.data.sequences import History, history_of, pick_window
from movierec.errors import ModelError
from movierec.models.base import Recommender, register
from movierec.options import FitOptions

__all__ = ["MarkovRecommender"]

SCORE_USERS = 1024


@register
class MarkovRecommender(Recommender):
    """Item-to-next-item transitions of the last ``window`` items, blended with popularity."""

    name = "markov"
    learned: ClassVar[tuple[str, ...]] = ("transitions_", "sequence_items_", "sequence_indptr_")
    param_grid: ClassVar[dict[str, list[Any]]] = {"window": [1, 3, 10],
                                                  "pop_weight": [0.01, 0.1]}

    def __init__(self, window: Annotated[int, Field(ge=1)] = 3,
                 decay: Annotated[float, Field(gt=0, le=1)] = 0.5,
                 pop_weight: Annotated[float, Field(ge=0)] = 0.01):
        self.window = window
        self.decay = decay
        self.pop_weight = pop_weight

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        history = history_of(train)
        self.sequence_items_, self.sequence_indptr_ = history.items, history.indptr
        self.transitions_ = transitions(history, train.n_items)

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"transitions_": (self.n_items_, self.n_items_), "sequence_items_": (None,),
                "sequence_indptr_": (self.n_users_ + 1,)}

    def _popularity(self) -> np.ndarray:
        counts = self.item_counts_.astype(np.float32)
        return counts / max(1.0, float(counts.max()))

    def _score_windows(self, windows: np.ndarray) -> np.ndarray:
        """``float32 (len(windows), n_items)`` for windows of ``item_idx + 1`` (0: padding)."""
        rows, cols = np.nonzero(windows)
        age = windows.shape[1] - 1 - cols  # 0: the latest item
        weights = sp.csr_matrix(
            ((self.decay ** age).astype(np.float32), (rows, windows[rows, cols] - 1)),
            shape=(len(windows), self.n_items_))
        out = np.asarray((weights @ self.transitions_).todense(), dtype=np.float32)
        out += np.float32(self.pop_weight) * self._popularity()[None, :]
        return out

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel()).astype(np.int64)
        history = History(self.sequence_items_, self.sequence_indptr_)
        out = np.empty((len(u), self.n_items_), dtype=np.float32)
        for lo in range(0, len(u), SCORE_USERS):
            out[lo : lo + SCORE_USERS] = self._score_windows(
                history.windows(u[lo : lo + SCORE_USERS], self.window))
        return out

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """The ordered picks (``int32``; the last given is the latest; a repeated pick counts
        at its last place). ``ratings`` are ignored."""
        self._check_fitted()
        items = self._check_items(np.asarray(item_idx).ravel())
        if len(items) == 0:
            raise ModelError("fold_in: give at least one item")
        window = pick_window(items, len(items))[0]
        return (window[window > 0] - 1).astype(np.int32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state)
        if state.ndim != 1 or len(state) == 0 or not np.issubdtype(state.dtype, np.integer):
            raise ModelError("markov.score_folded: expected the ordered item sequence that "
                             f"fold_in returns, got {state.dtype} {state.shape}")
        return self._score_windows(pick_window(self._check_items(state), self.window))[0]


def transitions(history: History, n_items: int) -> sp.csr_matrix:
    """``float32`` CSR ``n_items x n_items``: row ``i`` is the share of ``i``'s next items that
    were ``j`` (consecutive items of one user's history; rows of items never followed are 0)."""
    items = history.items.astype(np.int64)
    follows = np.ones(max(0, len(items) - 1), dtype=bool)
    ends = history.indptr[1:-1]  # a user's first item never follows the previous user's last
    follows[ends[(ends > 0) & (ends < len(items))] - 1] = False
    prev, nxt = items[:-1][follows], items[1:][follows]
    counts = sp.csr_matrix((np.ones(len(prev), np.float32), (prev, nxt)),
                           shape=(n_items, n_items))
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ counts, dtype=np.float32)
