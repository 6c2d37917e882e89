"""Quality metrics as pure functions over rank arrays and top-k lists (see docs/evaluation.md).

Conventions shared by every function here:

- ``ranks`` are 0-based: the number of competitors scored at least as high as the target
  (ties count against the model), so a target ranked first has rank 0.
- ``topk_items`` is an ``int`` array ``(n_lists, k)`` of ``item_idx``, best first; ``-1`` marks an
  empty slot (a user with fewer than ``k`` candidates). Empty slots never count as hits, as
  recommended items, or as members of a pair.
- ``genre_matrix`` is the binary ``n_items x n_genres`` matrix of ``Dataset.genre_matrix`` (sparse
  or dense). A movie without genres has an empty row; the Jaccard similarity of two empty genre
  sets is 0.
- A mean over nothing (no users, no pairs) is ``nan``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from movierec.errors import EvaluationError

__all__ = [
    "hit_rate",
    "ndcg",
    "mrr",
    "precision_at_k",
    "recall_at_k",
    "coverage",
    "diversity",
    "novelty",
    "genre_indicator",
    "genre_sets",
    "genre_gains",
    "genre_dcg",
    "genre_ndcg",
    "top_k",
    "top_values",
    "rmse",
    "mae",
]


# ---------------------------------------------------------------------- rank metrics
def _ranks(ranks) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1:
        raise EvaluationError(f"ranks must be a 1-d array, got shape {r.shape}")
    if r.size and (not np.issubdtype(r.dtype, np.integer) or r.min() < 0):
        raise EvaluationError("ranks must be non-negative integers (0 = ranked first)")
    return r


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def hit_rate(ranks, k: int) -> float:
    """HR@k: share of targets whose 0-based rank is below ``k``."""
    return _mean(_ranks(ranks) < k)


def ndcg(ranks, k: int) -> float:
    """NDCG@k for one target per list: mean of ``1 / log2(rank + 2)`` where ``rank < k``, else 0."""
    r = _ranks(ranks)
    return _mean(np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0))


def mrr(ranks, k: int | None = None) -> float:
    """Mean reciprocal rank ``1 / (rank + 1)``; with ``k``, ranks at or past ``k`` count 0."""
    r = _ranks(ranks)
    rr = 1.0 / (r + 1.0)
    if k is not None:
        rr = np.where(r < k, rr, 0.0)
    return _mean(rr)


# ---------------------------------------------------------------------- top-k selection
_CHUNK = 32  # columns per chunk; chunk maxima bound a row's k-th largest value from below


def _floor(x: np.ndarray, k: int) -> np.ndarray | None:
    """Per row, the ``k``-th largest maximum over chunks of ``_CHUNK`` columns, as a column.

    At least ``k`` entries of the row reach it (one per chunk), so the row's top ``k`` all do,
    and fewer than ``k`` chunks hold anything above it: a cheap pre-filter for a top-``k``.
    ``None`` when the rows are too short for ``k`` chunks.
    """
    n_rows, n = x.shape
    n_chunks = n // _CHUNK
    if n_chunks < k:
        return None
    maxes = x[:, : n_chunks * _CHUNK].reshape(n_rows, n_chunks, _CHUNK).max(axis=2)
    return np.partition(maxes, n_chunks - k, axis=1)[:, n_chunks - k, None]


def _position_in_row(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """For sorted row numbers, each entry's position within its row's run."""
    return np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """``int64 (n_rows, k)`` column indices of the ``k`` highest scores per row, best first, ties
    broken by ascending column (= ascending original item id). Entries scoring ``-inf`` (not
    candidates) and slots past the row length are ``-1``. ``scores`` must hold no NaN."""
    n_rows, n = scores.shape
    kk = min(k, n)
    out = np.full((n_rows, k), -1, dtype=np.int64)
    if kk == 0 or n_rows == 0:
        return out
    floor = _floor(scores, kk)
    if floor is None:  # short rows: sort them whole
        cols = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
        vals = np.take_along_axis(scores, cols, axis=1)
        out[:, :kk] = np.where(vals == -np.inf, -1, cols)
        return out
    rows, cols = np.nonzero(scores >= floor)  # every row keeps >= kk entries
    vals = scores[rows, cols]
    order = np.lexsort((cols, -vals, rows))  # by row, then score descending, then column
    rows, cols, vals = rows[order], cols[order], vals[order]
    pos = _position_in_row(rows, n_rows)
    keep = pos < kk
    out[rows[keep], pos[keep]] = np.where(vals[keep] == -np.inf, -1, cols[keep])
    return out


def top_values(x: np.ndarray, k: int) -> np.ndarray:
    """``(n_rows, min(k, n_cols))``: the ``k`` largest values of each row, descending."""
    n_rows, n = x.shape
    kk = min(k, n)
    floor = _floor(x, kk)
    if floor is None:
        return -np.sort(-x, axis=1)[:, :kk]
    # entries above the floor lie in fewer than kk chunks (plus the tail): few to sort; the rest
    # of the top kk equal the floor itself
    rows, cols = np.nonzero(x > floor)
    vals = x[rows, cols]
    order = np.lexsort((-vals, rows))
    rows, vals = rows[order], vals[order]
    pos = _position_in_row(rows, n_rows)
    keep = pos < kk
    out = np.repeat(floor.astype(x.dtype), kk, axis=1)
    out[rows[keep], pos[keep]] = vals[keep]
    return out


# ---------------------------------------------------------------------- top-k list metrics
def _topk(topk_items, k: int | None = None) -> np.ndarray:
    t = np.asarray(topk_items)
    if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer):
        raise EvaluationError(f"top-k lists must be a 2-d integer array, got {t.dtype} {t.shape}")
    return t if k is None else t[:, :k]


def _relevant(relevant) -> sp.csr_matrix:
    """Boolean CSR copy of a relevance matrix without explicit zeros."""
    rel = sp.csr_matrix(relevant != 0 if not sp.issparse(relevant) else relevant, dtype=bool)
    rel.eliminate_zeros()
    return rel


def _hits(topk: np.ndarray, rel: sp.csr_matrix) -> np.ndarray:
    """``bool (n_lists, k)``: whether each listed item is relevant to that list's user."""
    if rel.shape[0] != topk.shape[0]:
        raise EvaluationError(
            f"relevant has {rel.shape[0]} rows but there are {topk.shape[0]} top-k lists; "
            "row u of relevant must hold the relevant items of list u"
        )
    valid = topk >= 0
    rows = np.broadcast_to(np.arange(topk.shape[0])[:, None], topk.shape)
    hits = np.zeros(topk.shape, dtype=bool)
    hits[valid] = np.asarray(rel[rows[valid], topk[valid]]).ravel() != 0
    return hits


def precision_at_k(topk_items, relevant, k: int | None = None) -> float:
    """Precision@k: mean over lists of (relevant items among the first ``k``) / ``k``.

    ``relevant`` is a boolean ``(n_lists, n_items)`` matrix (sparse or dense); row ``u`` holds the
    relevant items of list ``u``. Empty slots count as misses; ``k`` defaults to the list length.
    """
    t = _topk(topk_items, k)
    if not t.shape[1]:
        return float("nan")
    return _mean(_hits(t, _relevant(relevant)).sum(axis=1) / t.shape[1])


def recall_at_k(topk_items, relevant, k: int | None = None) -> float:
    """Recall@k: mean over lists of (relevant items among the first ``k``) / (relevant items).

    Lists whose user has no relevant item are left out.
    """
    t = _topk(topk_items, k)
    rel = _relevant(relevant)
    n_rel = np.diff(rel.indptr)
    keep = n_rel > 0
    return _mean(_hits(t, rel).sum(axis=1)[keep] / n_rel[keep])


def coverage(topk_items, catalogue_size: int) -> float:
    """Distinct items recommended over all lists, divided by ``catalogue_size``."""
    if catalogue_size <= 0:
        raise EvaluationError(f"catalogue_size must be positive, got {catalogue_size}")
    t = _topk(topk_items)
    return len(np.unique(t[t >= 0])) / catalogue_size


def genre_indicator(genre_matrix) -> np.ndarray:
    """Dense ``float32`` 0/1 copy of a (sparse or dense) ``n_items x n_genres`` genre matrix."""
    g = genre_matrix.toarray() if sp.issparse(genre_matrix) else np.asarray(genre_matrix)
    return (g != 0).astype(np.float32)


def _jaccard(inter: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
    """Jaccard from intersection and set sizes; two empty sets give 0 (not 0/0)."""
    union = size_a + size_b - inter
    return np.divide(inter, union, out=np.zeros(np.broadcast(inter, union).shape), where=union > 0)


def diversity(topk_items, genre_matrix) -> float:
    """Intra-list diversity: mean over lists of the mean, over pairs of listed items, of
    ``1 - Jaccard(genres a, genres b)``.

    A full list of 10 has 45 pairs. Two genre-less movies have Jaccard 0, so a pair of them counts
    1 (fully diverse). Lists with fewer than two items are left out.
    """
    t = _topk(topk_items)
    g = genre_indicator(genre_matrix)
    valid = t >= 0
    onehot = g[np.where(valid, t, 0)] * valid[:, :, None]  # (n_lists, k, n_genres)
    inter = np.einsum("ukg,ulg->ukl", onehot, onehot)
    size = onehot.sum(axis=2)
    dist = 1.0 - _jaccard(inter, size[:, :, None], size[:, None, :])
    k = t.shape[1]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    pair_ok = valid[:, :, None] & valid[:, None, :] & upper
    n_pairs = pair_ok.sum(axis=(1, 2))
    keep = n_pairs > 0
    per_list = (dist * pair_ok).sum(axis=(1, 2))[keep] / n_pairs[keep]
    return _mean(per_list)


def novelty(topk_items, item_user_counts, n_users: int) -> float:
    """Mean over all recommended items (every slot of every list) of ``-log2(pop / n_users)``.

    ``item_user_counts[i]`` is the number of training users with item ``i``; it is clipped to at
    least 1 so that an item nobody trained on has finite (maximal) novelty.
    """
    if n_users <= 0:
        raise EvaluationError(f"n_users must be positive, got {n_users}")
    t = _topk(topk_items)
    pop = np.maximum(np.asarray(item_user_counts, dtype=np.float64)[t[t >= 0]], 1.0)
    return _mean(-np.log2(pop / n_users))


# ---------------------------------------------------------------------- genre-NDCG
def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k) + 2.0)


def genre_sets(genre_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(jaccard, set_of)``: the distinct genre sets of the items and their pairwise Jaccard.

    ``set_of[i]`` is the position of item ``i``'s genre set; ``jaccard[a, b]`` (``float64``) the
    Jaccard similarity of sets ``a`` and ``b`` (0 when both are empty). MovieLens has a few
    hundred distinct sets, so item-to-item similarities become look-ups in a small table.
    """
    sets, set_of = np.unique(genre_indicator(genre_matrix), axis=0, return_inverse=True)
    sets = sets.astype(np.float64)
    size = sets.sum(axis=1)
    return _jaccard(sets @ sets.T, size[:, None], size[None, :]), set_of.ravel()


def genre_gains(test_items, genre_matrix) -> np.ndarray:
    """``float64 (len(test_items), n_items)``: Jaccard(genres(i), genres(test item)) for every i."""
    jac, set_of = genre_sets(genre_matrix)
    return jac[set_of[np.asarray(test_items)]][:, set_of]


def genre_dcg(
    topk_items, test_items, candidates, genre_matrix, *, sets=None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-list ``(dcg, idcg)`` of genre-NDCG (see :func:`genre_ndcg`); both ``float64 (n,)``.

    ``sets`` may pass ``genre_sets(genre_matrix)`` computed once for many calls.
    """
    t = _topk(topk_items)
    k = t.shape[1]
    cand = candidates.toarray() if sp.issparse(candidates) else np.asarray(candidates)
    if cand.shape[0] != t.shape[0] or cand.dtype != bool:
        raise EvaluationError(
            f"candidates must be a boolean (n_lists, n_items) mask; got {cand.dtype} {cand.shape} "
            f"for {t.shape[0]} lists"
        )
    jac, set_of = genre_sets(genre_matrix) if sets is None else sets
    test_set = set_of[np.asarray(test_items)]
    disc = _discounts(k)
    valid = t >= 0
    listed = jac[test_set[:, None], set_of[np.where(valid, t, 0)]] * valid
    dcg = listed @ disc
    gains = jac[test_set[:, None], set_of[None, :]]
    gains[~cand] = 0.0
    return dcg, top_values(gains, k) @ disc


def genre_dcg_from_counts(
    topk_items, test_items, set_counts: np.ndarray, sets: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`genre_dcg` (the same floats) from ``set_counts`` ``(n_lists, n_sets)``, how many
    candidates of each genre set (``sets = genre_sets(...)``) list ``u`` could hold, instead of
    a ``(n_lists, n_items)`` mask: the ideal list takes the sets by falling gain, as many items
    of each as there are. A few hundred sets instead of ML-20M's 26,744 items per list."""
    t = _topk(topk_items)
    k = t.shape[1]
    jac, set_of = sets
    test_set = set_of[np.asarray(test_items)]
    disc = _discounts(k)
    valid = t >= 0
    listed = jac[test_set[:, None], set_of[np.where(valid, t, 0)]] * valid
    gains = jac[test_set]  # (n_lists, n_sets)
    order = np.argsort(-gains, axis=1, kind="stable")
    gains = np.take_along_axis(gains, order, axis=1)
    filled = np.cumsum(np.take_along_axis(np.asarray(set_counts), order, axis=1), axis=1)
    ideal = np.zeros((len(t), k))
    rows = np.arange(len(t))
    for p in range(k):  # position p holds the first set whose items reach past p
        at = (filled <= p).sum(axis=1)
        ideal[:, p] = np.where(at < gains.shape[1], gains[rows, np.minimum(at, gains.shape[1]
                                                                           - 1)], 0.0)
    return listed @ disc, ideal @ disc


def genre_ndcg(topk_items, test_items, candidates, genre_matrix) -> float:
    """Genre-NDCG@k (k = list length): DCG / IDCG with gain(i) = Jaccard(genres(i), genres(test
    item)) and discount ``1 / log2(pos + 2)`` at positions 0..k-1.

    ``test_items[u]`` is list ``u``'s held-out item; ``candidates`` is the boolean
    ``(n_lists, n_items)`` mask of the items list ``u`` could hold (IDCG is built from the ``k``
    largest gains among them). Lists whose IDCG is 0 (e.g. a genre-less test item) are left out.
    """
    dcg, idcg = genre_dcg(topk_items, test_items, candidates, genre_matrix)
    keep = idcg > 0
    return _mean(dcg[keep] / idcg[keep])


# ---------------------------------------------------------------------- rating regression
def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise EvaluationError(f"{a.shape} true ratings but {b.shape} predictions")
    if np.isnan(b).any():
        raise EvaluationError(f"{int(np.isnan(b).sum())} predictions are NaN")
    return a, b


def rmse(y_true, y_pred) -> float:
    """Root mean squared error of rating predictions."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else float("nan")


def mae(y_true, y_pred) -> float:
    """Mean absolute error of rating predictions."""
    a, b = _pair(y_true, y_pred)
    return _mean(np.abs(a - b))
