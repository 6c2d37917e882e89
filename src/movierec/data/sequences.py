"""Users' interactions as ordered sequences: what the sequential models (SASRec, GRU4Rec,
BERT4Rec, the Markov baseline) read.

A *history* is every user's items in time order, stored flat like a CSR row structure:
``items[indptr[u]:indptr[u + 1]]`` are user ``u``'s ``item_idx`` sorted by ``(timestamp,
item_idx)`` (the stable tie-break of :class:`~movierec.data.dataset.Dataset`'s canonical order,
since ``item_idx`` order is original-id order). A *window* is the last ``max_len`` items of a
history as a fixed-width row, left-padded: ``window[u, -1]`` is the most recent item. Windows
hold ``item_idx + 1`` so that ``0`` is the padding token (the networks' ``padding_idx``).

Everything is built with sorts and gathers over whole arrays, never a loop over users.
"""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError

__all__ = ["PAD", "History", "TrainingRows", "cropped", "history_of", "padded_windows",
           "pick_window", "shifted_pairs", "training_rows"]

PAD = 0
"""The padding token of a window (items are stored as ``item_idx + 1``)."""


class History:
    """Every user's items in time order: ``items[indptr[u]:indptr[u + 1]]`` (see the module
    docstring). ``items``: ``int32[n]``; ``indptr``: ``int64[n_users + 1]``."""

    def __init__(self, items: np.ndarray, indptr: np.ndarray):
        self.items = np.asarray(items, dtype=np.int32)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        if self.indptr.ndim != 1 or len(self.indptr) < 1 or self.indptr[-1] != len(self.items):
            raise MovierecError(f"a history's indptr must end at len(items) = {len(self.items)}")

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        """``int64[n_users]``: items per user."""
        return np.diff(self.indptr)

    def windows(self, users: np.ndarray, max_len: int) -> np.ndarray:
        """``int64 (len(users), max_len)``: :func:`padded_windows` of these users."""
        return padded_windows(self.items, self.indptr, users, max_len)


def history_of(ds: Dataset) -> History:
    """The :class:`History` of a Dataset: each user's ratings sorted by ``(timestamp, item_idx)``
    (stable; one sort of the whole array, no per-user loop)."""
    order = np.lexsort((ds.item_idx, ds.timestamp, ds.user_idx))
    indptr = np.zeros(ds.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(ds.user_idx, minlength=ds.n_users), out=indptr[1:])
    return History(ds.item_idx[order], indptr)


def padded_windows(items: np.ndarray, indptr: np.ndarray, users: np.ndarray,
                   max_len: int) -> np.ndarray:
    """``int64 (len(users), max_len)``: for each user, their last ``max_len`` items (the most
    recent kept) as ``item_idx + 1``, left-padded with :data:`PAD`; row ``r``'s last column is
    user ``users[r]``'s latest item. Gathered in one step for all users."""
    if max_len < 1:
        raise MovierecError(f"max_len must be >= 1, got {max_len}")
    users = np.asarray(users, dtype=np.int64).ravel()
    return stretch_windows(items, indptr[users], indptr[users + 1], max_len)


def stretch_windows(items: np.ndarray, start: np.ndarray, end: np.ndarray,
                    max_len: int) -> np.ndarray:
    """``int64 (len(start), max_len)``: row ``r`` holds ``items[start[r]:end[r]]``'s last
    ``max_len`` items as ``item_idx + 1``, left-padded with :data:`PAD` (one gather)."""
    start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    pos = end[:, None] - max_len + np.arange(max_len)[None, :]
    real = pos >= start[:, None]
    out = np.zeros((len(start), max_len), dtype=np.int64)
    out[real] = np.asarray(items, dtype=np.int64)[pos[real]] + 1
    return out


class TrainingRows:
    """A network's training rows: row ``r`` is the stretch ``items[start[r]:end[r]]`` of one
    user's history (``int64`` offsets into :attr:`History.items`)."""

    def __init__(self, history: History, start: np.ndarray, end: np.ndarray):
        self.history, self.start, self.end = history, start, end

    def __len__(self) -> int:
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        return self.end - self.start

    def windows(self, rows: np.ndarray, width: int) -> np.ndarray:
        """``int64 (len(rows), width)``: these rows' stretches, left-padded (their last
        ``width`` items)."""
        return stretch_windows(self.history.items, self.start[rows], self.end[rows], width)


def training_rows(history: History, width: int, step: int, min_items: int,
                  every_window: bool) -> TrainingRows:
    """The rows a network trains on: each user with at least ``min_items`` items gives the
    stretch of their latest ``width`` items; with ``every_window``, a long history also gives
    the stretches ending ``step``, ``2 * step``, ... items earlier (while one still holds
    ``min_items``), so with ``step = width - 1`` every next-item pair (and with ``step =
    width`` every item) is in exactly one row instead of only the latest ``width``."""
    lengths = history.lengths
    users = np.flatnonzero(lengths >= min_items)
    if every_window:  # windows per user: ends at L, L - step, ... while >= min_items remain
        counts = (lengths[users] - min_items) // step + 1
    else:
        counts = np.ones(len(users), dtype=np.int64)
    owner = np.repeat(users, counts)
    back = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    end = history.indptr[owner + 1] - back * step
    start = np.maximum(history.indptr[owner], end - width)
    return TrainingRows(history, start, end)


def pick_window(items: np.ndarray, max_len: int) -> np.ndarray:
    """``int64 (1, max_len)``: the window of one person's picks given in their order (the last
    pick is the most recent); a repeated pick counts at its last place."""
    items = np.asarray(items, dtype=np.int64).ravel()
    rev = items[::-1]
    _, first_in_rev = np.unique(rev, return_index=True)
    keep = np.sort(len(items) - 1 - first_in_rev)  # last occurrence of each item, in order
    ordered = items[keep]
    return padded_windows(ordered, np.array([0, len(ordered)]), np.array([0]), max_len)


def shifted_pairs(history: History, users: np.ndarray, max_len: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Training rows of a next-item model over whole sequences (one row per user, a loss at
    every position, as in the SASRec paper): ``(inputs, targets)``, both ``int64 (len(users),
    max_len)``; ``targets[:, t]`` is the item after ``inputs[:, t]`` (``item_idx + 1``), and
    :data:`PAD` where there is no input item or no next item. Long histories keep their most
    recent ``max_len + 1`` items."""
    w = history.windows(users, max_len + 1)
    inputs, targets = w[:, :-1], w[:, 1:].copy()
    targets[inputs == PAD] = PAD
    return inputs, targets


def cropped(windows: np.ndarray, keep_pad: int = 0) -> np.ndarray:
    """``windows`` without the leading columns that are padding in every row, less
    ``keep_pad`` of them (left padding is invisible to the networks, so this changes no score,
    and a block of short histories costs a short sequence's work)."""
    real = (windows != PAD).any(axis=0)
    first = int(np.argmax(real)) if real.any() else windows.shape[1] - 1
    return windows[:, max(0, first - keep_pad):]
