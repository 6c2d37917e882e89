"""Top-k list metrics with several relevant (held-out) items per list: P4 and P5.

Conventions as in :mod:`movierec.evaluation.metrics`: ``topk_items`` is an ``int (n_lists, k)``
array of ``item_idx``, best first, ``-1`` for an empty slot (never a hit); ``relevant`` is a boolean
``(n_lists, n_items)`` matrix (sparse or dense) whose row ``u`` holds list ``u``'s held-out items.
Lists whose user has no relevant item are left out of every mean; a mean over nothing is ``nan``.

Normalisations (docs/evaluation.md, P4 / P5; as Liang et al. 2018 and Microsoft Recommenders
use them):

- ``ndcg``: binary gains, ``DCG = sum of 1/log2(pos + 2)`` over hit positions, ``IDCG`` the same
  sum over the first ``min(k, |relevant|)`` positions;
- ``recall_capped``: hits / ``min(k, |relevant|)`` (P4, the Mult-VAE paper's recall);
- ``recall``: hits / ``|relevant|`` (P5);
- ``precision``: hits / ``k``;
- ``average_precision``: (sum over hit positions ``i`` of precision@i) / ``min(k, |relevant|)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from movierec.errors import EvaluationError
from movierec.evaluation.metrics import _hits, _relevant, _topk

__all__ = [
    "ListHits",
    "list_hits",
    "hit_rate",
    "precision",
    "recall",
    "recall_capped",
    "ndcg",
    "average_precision",
    "popularity_percentiles",
    "popularity_percentile",
    "relevance_matrix",
]


class ListHits:
    """Which slots of each list hold a relevant item, and how many relevant items each list has.

    Attributes:
        hits: ``bool (n_lists, k)`` of the lists that have at least one relevant item.
        n_relevant: ``int64 (n_lists,)`` of those lists (all ``>= 1``).
    """

    def __init__(self, hits: np.ndarray, n_relevant: np.ndarray):
        self.hits = hits
        self.n_relevant = n_relevant

    def cut(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(hits[:, :k], min(k, n_relevant))`` for a cut-off ``k`` within the list length."""
        if not 1 <= k <= self.hits.shape[1]:
            raise EvaluationError(f"cut-off {k} outside 1..{self.hits.shape[1]} (list length)")
        return self.hits[:, :k], np.minimum(k, self.n_relevant)


def list_hits(topk_items, relevant) -> ListHits:
    """The hit matrix of every list with at least one relevant item (see the module docstring)."""
    t = _topk(topk_items)
    rel = _relevant(relevant)
    n_rel = np.diff(rel.indptr).astype(np.int64)
    keep = n_rel > 0
    return ListHits(_hits(t, rel)[keep], n_rel[keep])


def _mean(values: np.ndarray | np.generic) -> float:
    values = np.asarray(values)
    return float(values.mean()) if values.size else float("nan")


def hit_rate(h: ListHits, k: int) -> float:
    """HR@k: share of lists with at least one relevant item among their first ``k``."""
    hits, _ = h.cut(k)
    return _mean(hits.any(axis=1))


def precision(h: ListHits, k: int) -> float:
    """Precision@k: mean of hits among the first ``k`` / ``k`` (empty slots are misses)."""
    hits, _ = h.cut(k)
    return _mean(hits.sum(axis=1) / k)


def recall(h: ListHits, k: int) -> float:
    """Recall@k: mean of hits among the first ``k`` / number of relevant items."""
    hits, _ = h.cut(k)
    return _mean(hits.sum(axis=1) / h.n_relevant)


def recall_capped(h: ListHits, k: int) -> float:
    """Recall@k as Liang et al. (2018) normalise it: hits / ``min(k, relevant items)``."""
    hits, cap = h.cut(k)
    return _mean(hits.sum(axis=1) / cap)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k) + 2.0)


def ndcg(h: ListHits, k: int) -> float:
    """NDCG@k with binary gains; IDCG from ``min(k, relevant items)`` hits at the top."""
    hits, cap = h.cut(k)
    disc = _discounts(k)
    idcg = np.cumsum(disc)[cap - 1]
    return _mean((hits @ disc) / idcg)


def average_precision(h: ListHits, k: int, *, by: str = "capped") -> float:
    """MAP@k: mean over lists of (sum over hit positions ``i`` of precision@i) divided by
    ``min(k, relevant items)`` (``by="capped"``, docs/evaluation.md) or by the number of relevant
    items (``by="relevant"``: Microsoft Recommenders' ``map``, the MAP of their published
    tables)."""
    hits, cap = h.cut(k)
    if by not in ("capped", "relevant"):
        raise EvaluationError(f"by must be 'capped' or 'relevant', got {by!r}")
    prec_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return _mean((prec_at * hits).sum(axis=1) / (cap if by == "capped" else h.n_relevant))


def popularity_percentiles(item_user_counts, catalogue) -> np.ndarray:
    """``float64 (n_items,)``: each item's percentile in the popularity ranking of the catalogue:
    100 x (catalogue items whose popularity is at most the item's) / catalogue size, so the most
    popular item is at 100 (``scipy.stats.percentileofscore(..., kind="weak")``).

    ``item_user_counts[i]`` is the number of train users with item ``i``; ``catalogue`` is a
    boolean mask of the items that count.
    """
    pop = np.asarray(item_user_counts, dtype=np.float64)
    cat = np.asarray(catalogue, dtype=bool)
    if cat.shape != pop.shape or not cat.any():
        raise EvaluationError(f"catalogue mask {cat.shape} must match popularity {pop.shape} "
                              "and hold at least one item")
    ranked = np.sort(pop[cat])
    return 100.0 * np.searchsorted(ranked, pop, side="right") / len(ranked)


def popularity_percentile(topk_items, item_user_counts, catalogue) -> float:
    """Mean, over every recommended item (every filled slot of every list), of its popularity
    percentile (:func:`popularity_percentiles`); 100 = the most popular item."""
    t = _topk(topk_items)
    pct = popularity_percentiles(item_user_counts, catalogue)
    return _mean(pct[t[t >= 0]])


def relevance_matrix(list_of: np.ndarray, items: np.ndarray, n_lists: int,
                     n_items: int) -> sp.csr_matrix:
    """Boolean ``(n_lists, n_items)`` CSR: ``items[j]`` is relevant to list ``list_of[j]``."""
    ones = np.ones(len(items), dtype=bool)
    return sp.csr_matrix((ones, (list_of, items)), shape=(n_lists, n_items), dtype=bool)
