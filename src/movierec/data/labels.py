"""Implicit-feedback labels for training: which ratings count as positives, and sampled negatives.

Label modes (``label_mode``):

* ``"binary"`` (the NCF paper's setting): every rating is a positive, target 1.
* ``"hard"``: ratings at or above ``soft_positive`` (3 stars) are positives (target 1); lower
  ratings are observed negatives (target 0) trained alongside the sampled unobserved items.
* ``"soft"``: each rating's class gives a target in [0, 1] (:data:`SOFT_TARGETS`):

  ==============  =======================================  ======
  class           rating (default thresholds)              target
  ==============  =======================================  ======
  hard positive   ``r >= 4``                               1.0
  soft positive   ``3 <= r < 4``                           0.75
  soft negative   ``2 <= r < 3``                           0.25
  hard negative   ``r < 2`` (the issue's ``<= 1``; the     0.0
                  half-star 1.5 of ml-latest has no other
                  class, so it is a hard negative too)
  ==============  =======================================  ======

Sampled unobserved items always have target 0. Every observed rating gets ``k`` sampled negatives
(default 4; in ``"binary"`` mode exactly ``k`` per positive), drawn anew each epoch, uniformly
among the items the user has no rating for (low ratings included: an observed item is never drawn
as a sampled negative).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError

LabelMode = Literal["binary", "hard", "soft"]
LABEL_MODES: tuple[str, ...] = ("binary", "hard", "soft")

HARD_NEGATIVE, SOFT_NEGATIVE, SOFT_POSITIVE, HARD_POSITIVE = 0, 1, 2, 3
SOFT_TARGETS: tuple[float, float, float, float] = (0.0, 0.25, 0.75, 1.0)
"""Soft-mode targets of the classes hard negative, soft negative, soft positive, hard positive."""

_DENSE_CELLS = 1 << 28
"""Largest ``n_users * n_items`` for which membership is a dense byte table (256 MiB)."""


@dataclass(frozen=True)
class Thresholds:
    """Rating thresholds (stars) that split ratings into four classes; see the module docstring."""

    hard_positive: float = 4.0
    soft_positive: float = 3.0
    soft_negative: float = 2.0

    def __post_init__(self) -> None:
        if not self.soft_negative <= self.soft_positive <= self.hard_positive:
            raise MovierecError(
                f"label thresholds must satisfy soft_negative <= soft_positive <= hard_positive; "
                f"got {self.soft_negative}, {self.soft_positive}, {self.hard_positive}"
            )


def rating_classes(rating: np.ndarray, thresholds: Thresholds = Thresholds()) -> np.ndarray:
    """``int8`` class of each rating: 0 hard negative, 1 soft negative, 2 soft positive, 3 hard
    positive (see the module docstring for the default thresholds)."""
    r = np.asarray(rating, dtype=np.float32)
    edges = np.array(
        [thresholds.soft_negative, thresholds.soft_positive, thresholds.hard_positive], np.float32
    )
    return np.searchsorted(edges, r, side="right").astype(np.int8)


def observed_targets(
    rating: np.ndarray,
    mode: str = "binary",
    thresholds: Thresholds = Thresholds(),
    soft_targets: tuple[float, float, float, float] = SOFT_TARGETS,
) -> np.ndarray:
    """``float32`` training target of each observed rating under ``mode`` (module docstring)."""
    rating = np.asarray(rating, dtype=np.float32)
    if mode == "binary":
        return np.ones(len(rating), dtype=np.float32)
    classes = rating_classes(rating, thresholds)
    if mode == "hard":
        return (classes >= SOFT_POSITIVE).astype(np.float32)
    if mode == "soft":
        if any(not 0.0 <= t <= 1.0 for t in soft_targets):
            raise MovierecError(f"soft targets must lie in [0, 1]; got {soft_targets}")
        return np.asarray(soft_targets, dtype=np.float32)[classes]
    raise MovierecError(f"unknown label_mode {mode!r}; expected one of {LABEL_MODES}")


class NegativeSampler:
    """Uniform draws, with replacement, among the items each user has NOT rated.

    Built once per training set (O(n_users * n_items) bytes for catalogues up to 2^28 cells,
    else a bit table of an eighth of that); each :meth:`sample` call is vectorised rejection
    sampling: draw, test membership in one table look-up, redraw only the rejected cells. Users
    who rated almost everything cost more rounds, not a Python loop per user.
    """

    def __init__(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        n_users: int,
        n_items: int,
        item_weights: np.ndarray | None = None,
    ):
        self.n_users, self.n_items = int(n_users), int(n_items)
        self._cdf = None
        if item_weights is not None:
            w = np.asarray(item_weights, dtype=np.float64)
            if w.shape != (self.n_items,) or not np.all(w > 0) or not np.isfinite(w).all():
                raise MovierecError(
                    f"item_weights must be {self.n_items} positive finite numbers, one per item"
                )
            self._cdf = np.cumsum(w / w.sum())
        flat = np.asarray(user_idx, np.int64) * self.n_items + np.asarray(item_idx, np.int64)
        cells = self.n_users * self.n_items
        self._packed = cells > _DENSE_CELLS
        if not self._packed:
            self._table = np.zeros(cells, dtype=np.bool_)
            self._table[flat] = True
            n_rated = self._table.reshape(self.n_users, self.n_items).sum(axis=1)
        else:
            self._table = np.zeros((cells + 7) // 8, dtype=np.uint8)
            # distinct cells, sorted: the bits of one byte are distinct, so their sum is their OR
            # (one sort: ufunc.at over ML-20M's 20M ratings took minutes, and np.unique of 20M
            # distinct int64 (numpy 2.4's hash table) 37 CPU-s where sorting takes 0.7)
            flat = np.sort(flat)
            flat = flat[np.r_[True, flat[1:] != flat[:-1]]] if len(flat) else flat
            byte = flat >> 3
            first = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]]) if len(byte) else byte
            bits = (1 << (flat & 7)).astype(np.uint8)
            if len(first):
                self._table[byte[first]] = np.add.reduceat(bits, first)
            n_rated = np.bincount(flat // self.n_items, minlength=self.n_users)
        self.n_rated: np.ndarray = n_rated.astype(np.int64)
        """``int64[n_users]``: distinct items each user has rated."""

    @classmethod
    def from_dataset(cls, *parts: Dataset, popularity_exponent: float = 0.0) -> NegativeSampler:
        """A sampler excluding every pair rated in any of ``parts`` (which share id maps).

        ``popularity_exponent`` ``b > 0`` draws item ``i`` with probability proportional to
        ``(1 + n_i) ** b`` (``n_i``: its ratings in ``parts``) instead of uniformly: popular
        items, the hard negatives of a ranking, come up more often.
        """
        first = parts[0]
        u = np.concatenate([p.user_idx for p in parts])
        i = np.concatenate([p.item_idx for p in parts])
        weights = None
        if popularity_exponent:
            counts = np.bincount(i, minlength=first.n_items).astype(np.float64)
            weights = (1.0 + counts) ** float(popularity_exponent)
        return cls(u, i, first.n_users, first.n_items, weights)

    @classmethod
    def from_csr(cls, csr: sp.spmatrix) -> NegativeSampler:
        """A sampler excluding the stored entries of a ``n_users x n_items`` sparse matrix."""
        coo = sp.coo_matrix(csr)
        return cls(coo.row, coo.col, *coo.shape)

    def is_rated(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """``bool`` per pair: whether the user rated the item."""
        return self._rated_flat(np.asarray(user_idx, np.int64), np.asarray(item_idx, np.int64))

    def sample(self, user_idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """``int32 (len(user_idx), k)``: items each user has not rated, drawn with replacement
        (uniformly, or by the sampler's item weights).

        Raises :class:`MovierecError` when a user has rated every item.
        """
        users = np.asarray(user_idx, dtype=np.int64)
        if len(users) and int(self.n_rated[users].max()) >= self.n_items:
            bad = int(users[np.argmax(self.n_rated[users])])
            raise MovierecError(
                f"user_idx {bad} has rated all {self.n_items} items: no negative to draw; "
                "drop such users before training"
            )
        out = self._draw(rng, (len(users), k))
        if k == 0 or not len(users):
            return out
        flat_users = np.broadcast_to(users[:, None], out.shape).ravel()
        flat_out = out.reshape(-1)
        todo = np.flatnonzero(self._rated_flat(flat_users, flat_out))
        while len(todo):
            flat_out[todo] = self._draw(rng, len(todo))
            todo = todo[self._rated_flat(flat_users[todo], flat_out[todo])]
        return out

    def _draw(self, rng: np.random.Generator, shape) -> np.ndarray:
        if self._cdf is None:
            return rng.integers(0, self.n_items, size=shape, dtype=np.int32)
        pick = np.searchsorted(self._cdf, rng.random(shape), side="right")
        return np.minimum(pick, self.n_items - 1).astype(np.int32)

    def _rated_flat(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        flat = users * self.n_items + items
        if not self._packed:
            return self._table[flat]
        return ((self._table[flat >> 3] >> (flat & 7).astype(np.uint8)) & 1).astype(bool)


def labelled_interactions(
    train: Dataset,
    mode: str = "binary",
    n_negatives: int = 4,
    seed: int = 0,
    thresholds: Thresholds = Thresholds(),
    soft_targets: tuple[float, float, float, float] = SOFT_TARGETS,
    sampler: NegativeSampler | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's labelled rows: ``(user_idx int32, item_idx int32, target float32, rating
    float32)``; each observed rating is followed by its ``n_negatives`` sampled items (rating NaN,
    target 0)."""
    if n_negatives < 0:
        raise MovierecError(f"n_negatives must be >= 0, got {n_negatives}")
    sampler = sampler or NegativeSampler.from_dataset(train)
    rng = np.random.default_rng(seed)
    neg = sampler.sample(train.user_idx, n_negatives, rng)
    group = 1 + n_negatives
    users = np.repeat(train.user_idx.astype(np.int32), group)
    items = np.column_stack([train.item_idx.astype(np.int32), neg]).reshape(-1)
    target = np.zeros((train.n_ratings, group), dtype=np.float32)
    target[:, 0] = observed_targets(train.rating, mode, thresholds, soft_targets)
    rating = np.full((train.n_ratings, group), np.nan, dtype=np.float32)
    rating[:, 0] = train.rating
    return users, items, target.reshape(-1), rating.reshape(-1)


def labelled_table(train: Dataset, *args: Any, **kwargs: Any) -> pl.DataFrame:
    """One epoch's labelled table ``index | userid | movieid | interaction | rating``: the rows
    of :func:`labelled_interactions` (same arguments) with the original ids.

    ``userid`` / ``movieid`` are original MovieLens ids; ``interaction`` is the training target
    (float in [0, 1]); ``rating`` is the observed stars, null for sampled negatives.
    """
    users, items, target, rating = labelled_interactions(train, *args, **kwargs)
    return pl.DataFrame(
        {
            "index": np.arange(len(users), dtype=np.int64),
            "userid": train.user_ids[users],
            "movieid": train.item_ids[items],
            "interaction": target,
            "rating": rating,
        }
    ).with_columns(pl.col("rating").fill_nan(None))


def write_labelled_table(table: pl.DataFrame, path: str | Path) -> Path:
    """Write :func:`labelled_table` output as CSV (``.csv``), TSV (``.tsv``) or Parquet (other
    suffixes), atomically: never half a file."""
    from movierec.files import write_atomically

    suffix = Path(path).suffix
    if suffix == ".csv":
        return write_atomically(path, table.write_csv)
    if suffix == ".tsv":
        return write_atomically(path, lambda tmp: table.write_csv(tmp, separator="\t"))
    return write_atomically(path, table.write_parquet)
