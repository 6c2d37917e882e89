"""Negative sampling: items a user has not rated, drawn uniformly.

Two entry points:

* :func:`sample_negatives` is the evaluation recipe of EVALUATION.md (P1): one
  ``numpy.random.default_rng(seed)``, test rows in order (users ascending), each row's candidates
  in ascending id order, ``rng.choice(candidates, n, replace=False)``. It reproduces the project's
  fixed ``loo_negatives.tsv`` files draw for draw.
* :class:`UnratedSampler` / :func:`sample_unrated` draw training-time negatives in bulk (with
  replacement, millions of rows per call) without any rejection loop.

Both rest on one idea: the ``k``-th unrated item of a user can be found by a binary search over the
user's rated items, so no per-user candidate array is ever built.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError
from movierec.progress import Progress

EVAL_SEED = 20261125
"""The seed of the project's fixed evaluation files (EVALUATION.md, P1)."""
PROGRESS_ROWS = 8192
"""Test rows drawn between two looks at the clock for the progress line."""


class UnratedSampler:
    """Uniform draws among the items each user has NOT rated, restricted to a pool of items.

    ``rated`` is a ``n_users x n_items`` sparse matrix whose stored entries (whatever their value,
    explicit zeros included) are the rated pairs. ``items`` is the pool of ``item_idx`` to draw
    from (default: every column); rated items outside the pool are irrelevant. Building costs
    O(nnz); each draw costs one binary search.
    """

    def __init__(self, rated: sp.spmatrix, items: np.ndarray | None = None):
        rated = sp.csr_matrix(rated)
        if not rated.has_sorted_indices:
            rated = rated.copy()
            rated.sort_indices()
        n_users, n_items = rated.shape
        self.pool = (
            np.arange(n_items, dtype=np.int32) if items is None
            else np.unique(np.asarray(items, dtype=np.int32))
        )
        if len(self.pool) and (self.pool[0] < 0 or self.pool[-1] >= n_items):
            raise ValueError(f"item pool holds indices outside 0..{n_items - 1}")
        size = len(self.pool)
        rank = np.full(n_items, -1, dtype=np.int64)
        rank[self.pool] = np.arange(size)
        row = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rated.indptr))
        r = rank[rated.indices]
        keep = r >= 0
        row, r = row[keep], r[keep]
        counts = np.bincount(row, minlength=n_users)
        self._start = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=self._start[1:])
        # rank - (position among the user's rated items) counts the unrated pool items before
        # it; offsetting by user * size makes one array sorted across all users.
        self._keys = row * size + (r - (np.arange(len(r)) - self._start[row]))
        self._size = size
        self.n_unrated: np.ndarray = size - counts
        """``int64[n_users]``: pool items each user has not rated."""

    def nth_unrated(self, user_idx: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The ``k``-th (0-based, ascending id order) unrated pool item of each ``user_idx``.

        ``user_idx`` and ``k`` broadcast together; requires ``0 <= k < n_unrated[user_idx]``.
        Returns ``int32`` item indices of the broadcast shape.
        """
        user_idx, k = np.broadcast_arrays(np.asarray(user_idx, np.int64), np.asarray(k, np.int64))
        q = (user_idx * self._size + k).ravel()
        before = np.searchsorted(self._keys, q, side="right") - self._start[user_idx.ravel()]
        return self.pool[k.ravel() + before].reshape(k.shape)

    def sample(
        self, user_idx: np.ndarray, n_per_row: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``int32 (len(user_idx), n_per_row)``: independent uniform draws (with replacement)
        among each user's unrated pool items. Raises if a user has rated the whole pool."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        m = self.n_unrated[user_idx]
        if len(m) and m.min() <= 0:
            bad = int(user_idx[np.argmin(m)])
            raise MovierecError(
                f"user_idx {bad} has rated every item of the pool ({self._size} items): no "
                "negative to draw; drop such users or widen the item pool"
            )
        k = rng.integers(0, m[:, None], size=(len(user_idx), n_per_row))
        if len(user_idx) < 2 or np.all(user_idx[1:] >= user_idx[:-1]):
            return self.nth_unrated(user_idx[:, None], k)
        # Searches grouped by user stay in cache: 5-10x faster than random order for millions
        # of rows. Same draws either way (k was drawn in the caller's row order).
        order = np.argsort(user_idx, kind="stable")
        out = np.empty(k.shape, dtype=self.pool.dtype)
        out[order] = self.nth_unrated(user_idx[order, None], k[order])
        return out


def rated_matrix(*parts: Dataset) -> sp.csr_matrix:
    """Boolean ``n_users x n_items`` structure of the pairs rated in any of ``parts`` (which
    share one id map)."""
    first = parts[0]
    u = np.concatenate([p.user_idx for p in parts])
    i = np.concatenate([p.item_idx for p in parts])
    m = sp.csr_matrix(
        (np.ones(len(u), dtype=bool), (u, i)), shape=(first.n_users, first.n_items)
    )
    m.sum_duplicates()
    return m


def sample_unrated(
    csr: sp.spmatrix,
    user_idx: np.ndarray,
    n_per_row: int,
    rng: np.random.Generator,
    items: np.ndarray | None = None,
) -> np.ndarray:
    """``int32 (len(user_idx), n_per_row)`` training negatives: for row ``r``, independent uniform
    draws (with replacement) among the items of ``items`` (default: all columns) that user
    ``user_idx[r]`` has no stored entry for in ``csr``. Fully vectorised and exact (no rejection
    loop), so users who rated most of the catalogue cost no more than others. To draw every epoch,
    build one :class:`UnratedSampler` and call its ``sample``."""
    return UnratedSampler(csr, items).sample(user_idx, n_per_row, rng)


def sample_negatives(
    full: Dataset, test: Dataset, n: int = 99, seed: int = EVAL_SEED
) -> np.ndarray:
    """Evaluation negatives, EVALUATION.md recipe: ``int32 (test.n_ratings, n)`` item indices.

    Row ``r`` holds ``n`` distinct items that test user ``test.user_idx[r]`` never rated (in
    ``full`` or in ``test``), drawn uniformly without replacement from the catalogue: the items
    rated anywhere in ``full`` (or in ``test``). Draws use one ``numpy.random.default_rng(seed)``,
    one ``rng.choice(candidates, n, replace=False)`` per test row in row order (users ascending),
    candidates in ascending id order: the same seed gives the same negatives, and seed 20261125 on
    a leave-one-out split reproduces the fixed ``loo_negatives.tsv`` files.
    """
    if not (np.array_equal(full.user_ids, test.user_ids)
            and np.array_equal(full.item_ids, test.item_ids)):
        raise MovierecError(
            f"{test.name} and {full.name} do not share id maps; pass the dataset the split was "
            "made from as `full`"
        )
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rated = rated_matrix(full, test)
    catalogue = np.flatnonzero(np.bincount(np.concatenate([full.item_idx, test.item_idx]),
                                           minlength=full.n_items)).astype(np.int32)
    sampler = UnratedSampler(rated, items=catalogue)
    users = test.user_idx.astype(np.int64)
    m = sampler.n_unrated[users]
    if len(m) and m.min() < n:
        r = int(np.argmin(m))
        raise MovierecError(
            f"user id {int(full.user_ids[users[r]])} has only {int(m[r])} unrated items in the "
            f"catalogue of {len(catalogue)}: cannot draw {n} distinct negatives; use a smaller n"
        )
    rng = np.random.default_rng(seed)
    k = np.empty((len(users), n), dtype=np.int64)
    # One generator call per test row is the recipe itself (the fixed files depend on it);
    # choice over range(m) consumes the stream exactly as choice over an m-long candidate array.
    # ML-20M: 138K rows, ~10 s, so it says how far it is.
    progress = Progress(f"{n} negatives per test rating", len(users), "users",
                        at_end=False, leave=False)
    for r0 in range(0, len(users), PROGRESS_ROWS):
        rows = m[r0 : r0 + PROGRESS_ROWS].tolist()
        for r, m_r in enumerate(rows, start=r0):
            k[r] = rng.choice(m_r, n, replace=False)
        progress.update(n=len(rows))
    progress.close()
    return sampler.nth_unrated(users[:, None], k).astype(np.int32)
