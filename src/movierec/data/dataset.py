"""The canonical in-memory form of a MovieLens release (or of any split of one).

A :class:`Dataset` holds ratings over contiguous ``int32`` indices (``user_idx``, ``item_idx``) and
the maps back to the original MovieLens ids (``user_ids[user_idx]``, ``item_ids[item_idx]``).
Both id maps are sorted ascending, so index order is original-id order.

The item index covers every movie the release knows: the movies of its metadata table and any
rated id missing from it. ``rated_items`` tells which of them have at least one rating here.
Subsets (train / validation / test of a split) share the parent's id maps and tables, so an index
means the same movie in every part of a split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.errors import MovierecError

ITEM_COLUMNS = ("item_id", "title", "year", "genres")
"""Columns every item table has; readers may add ``imdb_id``, ``tmdb_id``, ``tags``."""

USER_COLUMNS = ("user_id", "age", "gender", "occupation", "zip")


@dataclass(frozen=True, eq=False)
class TagGenome:
    """The tag genome: ``relevance[i, t]`` of tag ``tags[t]`` to movie ``item_ids[i]``."""

    item_ids: np.ndarray  # int64, ascending original movie ids
    tags: list[str]
    relevance: np.ndarray  # float32, (len(item_ids), len(tags))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Ratings over contiguous ids, with the id maps and the movie / user tables.

    Ratings are sorted by ``(user_idx, timestamp, item_idx)``: each user's history is one
    contiguous, chronological run (ties in time broken by ascending original item id).

    Attributes:
        name: release or split name (``"ml-100k"``, ``"ml-100k/train"``).
        user_ids: ``int64[n_users]``, original user id of each ``user_idx``, ascending.
        item_ids: ``int64[n_items]``, original movie id of each ``item_idx``, ascending.
        user_idx, item_idx: ``int32[n_ratings]``.
        rating: ``float32[n_ratings]`` stars (0.5-5).
        timestamp: ``int64[n_ratings]`` seconds since the epoch.
        items: one row per ``item_idx`` in order: ``item_id``, ``title``, ``year`` (nullable int),
            ``genres`` (list of str; no genre is an empty list), optional ``imdb_id``,
            ``tmdb_id``, ``tags`` (list of str).
        users: one row per ``user_idx`` in order (``user_id``, ``age``, ``gender``,
            ``occupation``, ``zip``) where the release has demographics, else ``None``.
        genome: the tag genome where the release has one.
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    items: pl.DataFrame
    users: pl.DataFrame | None = None
    genome: TagGenome | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        name: str,
        ratings: pl.DataFrame,
        items: pl.DataFrame | None = None,
        users: pl.DataFrame | None = None,
        genome: TagGenome | None = None,
    ) -> Dataset:
        """Build a Dataset from original-id tables.

        ``ratings`` has columns ``user_id``, ``item_id``, ``rating``, ``timestamp`` (one row per
        rating; MovieLens has one rating per user and movie). ``items`` has at least ``item_id``
        (missing ``title``/``year``/``genres`` are filled with nulls / empty lists); movies that
        are rated but absent from ``items`` get an empty row. ``users`` rows for users without
        ratings are dropped, since a user index exists only for users who rated.
        """
        ratings = ratings.select(
            pl.col("user_id").cast(pl.Int64),
            pl.col("item_id").cast(pl.Int64),
            pl.col("rating").cast(pl.Float32),
            pl.col("timestamp").cast(pl.Int64),
        )
        user_ids = ratings.get_column("user_id").unique().sort().to_numpy()
        rated_ids = ratings.get_column("item_id").unique().sort().to_numpy()
        if items is not None and items.height:
            meta_ids = items.get_column("item_id").cast(pl.Int64).to_numpy()
            item_ids = np.union1d(rated_ids, meta_ids)
        else:
            item_ids = rated_ids
        user_idx = index_of(user_ids, ratings.get_column("user_id").to_numpy())
        item_idx = index_of(item_ids, ratings.get_column("item_id").to_numpy())
        order = canonical_order(
            user_idx, ratings.get_column("timestamp").to_numpy(), item_idx, len(item_ids)
        )
        return cls(
            name=name,
            user_ids=user_ids.astype(np.int64),
            item_ids=item_ids.astype(np.int64),
            user_idx=user_idx[order],
            item_idx=item_idx[order],
            rating=ratings.get_column("rating").to_numpy()[order],
            timestamp=ratings.get_column("timestamp").to_numpy()[order],
            items=_align_items(items, item_ids),
            users=_align_users(users, user_ids),
            genome=genome,
        )

    def subset(self, rows: np.ndarray, name: str | None = None) -> Dataset:
        """The same dataset (same id maps and tables) restricted to some ratings.

        ``rows`` is a boolean mask over ratings or an array of rating positions; the canonical
        sort order is kept when positions are ascending.
        """
        rows = np.asarray(rows)
        return replace(
            self,
            name=name or self.name,
            user_idx=self.user_idx[rows],
            item_idx=self.item_idx[rows],
            rating=self.rating[rows],
            timestamp=self.timestamp[rows],
        )

    def with_ratings(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        rating: np.ndarray,
        timestamp: np.ndarray,
        name: str | None = None,
    ) -> Dataset:
        """The same id maps and tables with other ratings (given as indices), re-sorted."""
        user_idx = np.asarray(user_idx, dtype=np.int32)
        item_idx = np.asarray(item_idx, dtype=np.int32)
        order = canonical_order(user_idx, np.asarray(timestamp), item_idx, self.n_items)
        return replace(
            self,
            name=name or self.name,
            user_idx=np.asarray(user_idx, dtype=np.int32)[order],
            item_idx=np.asarray(item_idx, dtype=np.int32)[order],
            rating=np.asarray(rating, dtype=np.float32)[order],
            timestamp=np.asarray(timestamp, dtype=np.int64)[order],
        )

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        return len(self.rating)

    @property
    def density(self) -> float:
        """Share of the user x rated-item matrix that holds a rating."""
        n_rated = int(self.rated_items.sum())
        return self.n_ratings / max(1, self.n_users * n_rated)

    # ------------------------------------------------------------------ derived views
    @cached_property
    def csr(self) -> sp.csr_matrix:
        """``float32`` CSR matrix ``n_users x n_items`` of ratings (0 where unrated)."""
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.user_idx, minlength=self.n_users), out=indptr[1:])
        if np.all(np.diff(self.user_idx) >= 0):
            m = sp.csr_matrix(  # copy: arrays read back from the Parquet cache are read-only
                (self.rating, self.item_idx, indptr), shape=(self.n_users, self.n_items), copy=True
            )
            m.sort_indices()
            return m
        return sp.csr_matrix(
            (self.rating, (self.user_idx, self.item_idx)), shape=(self.n_users, self.n_items)
        )

    @cached_property
    def user_counts(self) -> np.ndarray:
        """``int64[n_users]``: number of ratings per user."""
        return np.bincount(self.user_idx, minlength=self.n_users)

    @cached_property
    def item_counts(self) -> np.ndarray:
        """``int64[n_items]``: number of ratings (= number of distinct users) per item."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    @property
    def rated_items(self) -> np.ndarray:
        """``bool[n_items]``: items with at least one rating in this dataset."""
        return self.item_counts > 0

    @cached_property
    def genre_names(self) -> list[str]:
        """Sorted names of the genres that occur in the item table."""
        names = self.items.get_column("genres").explode().drop_nulls().unique().sort()
        return names.to_list()

    @cached_property
    def genre_matrix(self) -> sp.csr_matrix:
        """Binary ``float32`` CSR matrix ``n_items x n_genres`` (columns as ``genre_names``)."""
        exploded = (
            self.items.select(pl.col("genres"))
            .with_row_index("item")
            .explode("genres")
            .drop_nulls("genres")
        )
        rows = exploded.get_column("item").to_numpy()
        names = np.array(self.genre_names, dtype=object)
        cols = np.searchsorted(names, exploded.get_column("genres").to_numpy().astype(object))
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(self.n_items, len(self.genre_names)))

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the ratings and id maps: equal fingerprints mean equal data."""
        h = hashlib.sha256()
        for a in (self.user_ids, self.item_ids, self.user_idx, self.item_idx, self.rating,
                  self.timestamp):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ id mapping
    def user_index(self, user_ids) -> np.ndarray:
        """``int32`` indices of original user ids; raises naming the first unknown id."""
        return index_of(self.user_ids, user_ids, what="user id")

    def item_index(self, item_ids) -> np.ndarray:
        """``int32`` indices of original movie ids; raises naming the first unknown id."""
        return index_of(self.item_ids, item_ids, what="movie id")

    def ratings_frame(self, original_ids: bool = True) -> pl.DataFrame:
        """The ratings as a table: ``user_id, item_id`` (or ``user_idx, item_idx``), ``rating``,
        ``timestamp``."""
        if original_ids:
            cols = {"user_id": self.user_ids[self.user_idx],
                    "item_id": self.item_ids[self.item_idx]}
        else:
            cols = {"user_idx": self.user_idx, "item_idx": self.item_idx}
        return pl.DataFrame({**cols, "rating": self.rating, "timestamp": self.timestamp})

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict:
        """Plain-data summary for ``movierec datasets info``."""
        stars, counts = np.unique(self.rating, return_counts=True)
        genre_counts = np.asarray(self.genre_matrix.sum(axis=0)).ravel().astype(int)
        n_rated = int(self.rated_items.sum())
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_rated_items": n_rated,
            "n_ratings": self.n_ratings,
            "sparsity": 1.0 - self.density,
            "rating_histogram": {f"{s:g}": int(c) for s, c in zip(stars, counts, strict=True)},
            "mean_rating": float(self.rating.mean()) if self.n_ratings else None,
            "ratings_per_user": _quantiles(self.user_counts),
            "ratings_per_item": _quantiles(self.item_counts[self.rated_items]),
            "first_timestamp": int(self.timestamp.min()) if self.n_ratings else None,
            "last_timestamp": int(self.timestamp.max()) if self.n_ratings else None,
            "genres": dict(zip(self.genre_names, genre_counts.tolist(), strict=True)),
            "has_user_table": self.users is not None,
            "has_tags": "tags" in self.items.columns,
            "has_links": "tmdb_id" in self.items.columns,
            "has_genome": self.genome is not None,
            "fingerprint": self.fingerprint,
        }

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        """Write the dataset as Parquet / npz files into ``folder`` (created; overwritten)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.ratings_frame(original_ids=False).write_parquet(folder / "ratings.parquet")
        pl.DataFrame({"user_id": self.user_ids}).write_parquet(folder / "user_ids.parquet")
        self.items.write_parquet(folder / "items.parquet")
        if self.users is not None:
            self.users.write_parquet(folder / "users.parquet")
        if self.genome is not None:
            np.savez(
                folder / "genome.npz",
                item_ids=self.genome.item_ids,
                tags=np.array(self.genome.tags, dtype=object).astype(str),
                relevance=self.genome.relevance,
            )
        (folder / "dataset.json").write_text(json.dumps({"name": self.name, "version": 1}))

    @classmethod
    def load(cls, folder: str | Path) -> Dataset:
        """Read a dataset written by :meth:`save`."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "dataset.json").read_text())
            name = meta["name"]
            r = pl.read_parquet(folder / "ratings.parquet")
            items = pl.read_parquet(folder / "items.parquet")
            user_ids = pl.read_parquet(folder / "user_ids.parquet").get_column("user_id")
            users = (
                pl.read_parquet(folder / "users.parquet")
                if (folder / "users.parquet").exists()
                else None
            )
            genome = None
            if (folder / "genome.npz").exists():
                z = np.load(folder / "genome.npz")
                genome = TagGenome(z["item_ids"], z["tags"].tolist(), z["relevance"])
        except Exception as e:  # any unreadable part means the cache is unusable
            raise MovierecError(f"{folder}: not a readable movierec dataset cache ({e})") from e
        return cls(
            name=name,
            user_ids=user_ids.to_numpy().astype(np.int64),
            item_ids=items.get_column("item_id").to_numpy().astype(np.int64),
            user_idx=r.get_column("user_idx").to_numpy(),
            item_idx=r.get_column("item_idx").to_numpy(),
            rating=r.get_column("rating").to_numpy(),
            timestamp=r.get_column("timestamp").to_numpy(),
            items=items,
            users=users,
            genome=genome,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {self.n_users:,} users, {self.n_items:,} items, "
            f"{self.n_ratings:,} ratings)"
        )


# ---------------------------------------------------------------------- helpers
def index_of(sorted_ids: np.ndarray, ids, what: str = "id") -> np.ndarray:
    """Positions of ``ids`` in the ascending array ``sorted_ids`` as ``int32``.

    Raises :class:`KeyError` naming the first id that is not there.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if len(sorted_ids) == 0:
        if ids.size:
            raise KeyError(f"unknown {what} {int(ids.flat[0])}")
        return np.zeros(ids.shape, dtype=np.int32)
    lo, hi = int(sorted_ids[0]), int(sorted_ids[-1])
    if ids.size > 4 * len(sorted_ids) and 0 <= lo and hi < 50_000_000:
        # dense look-up table: O(n) instead of O(n log m) for the millions-of-ratings case
        lut = np.full(hi + 2, -1, dtype=np.int32)
        lut[sorted_ids] = np.arange(len(sorted_ids), dtype=np.int32)
        pos = lut[np.clip(ids, 0, hi + 1)]
        bad = pos < 0
    else:
        pos = np.searchsorted(sorted_ids, ids).astype(np.int32)
        clipped = np.minimum(pos, len(sorted_ids) - 1)
        bad = sorted_ids[clipped] != ids
        pos = clipped
    if bad.any():
        raise KeyError(f"unknown {what} {int(ids[bad].flat[0])}")
    return pos.astype(np.int32, copy=False)


def canonical_order(
    user_idx: np.ndarray, timestamp: np.ndarray, item_idx: np.ndarray, n_items: int
) -> np.ndarray:
    """Permutation sorting ratings by ``(user_idx, timestamp, item_idx)``.

    The three keys are packed into one ``int64`` (timestamps rank-compressed when their range is
    too wide to fit), so one single-column sort replaces a slow three-column one.
    """
    n = len(user_idx)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ts = np.asarray(timestamp, dtype=np.int64)
    t = ts - ts.min()
    bits_i = max(1, int(n_items - 1).bit_length())
    bits_u = max(1, int(user_idx.max()).bit_length())
    if bits_u + int(t.max()).bit_length() + bits_i > 63:
        t = pl.Series(ts).rank("dense").to_numpy().astype(np.int64)
    bits_t = max(1, int(t.max()).bit_length())
    if bits_u + bits_t + bits_i > 63:  # beyond any MovieLens size: fall back to a stable sort
        return np.lexsort((item_idx, ts, user_idx))
    key = (user_idx.astype(np.int64) << (bits_t + bits_i)) | (t << bits_i) | item_idx
    return pl.Series(key).arg_sort().to_numpy()


def _align_items(items: pl.DataFrame | None, item_ids: np.ndarray) -> pl.DataFrame:
    """One row per item id in ``item_ids`` order, with the canonical columns present."""
    base = pl.DataFrame({"item_id": item_ids.astype(np.int64)})
    if items is None or not items.height:
        out = base
    else:
        items = items.with_columns(pl.col("item_id").cast(pl.Int64)).unique(
            "item_id", keep="first", maintain_order=True
        )
        out = base.join(items, on="item_id", how="left", maintain_order="left")
    if "title" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=pl.String).alias("title"))
    if "year" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=pl.Int32).alias("year"))
    if "genres" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("genres"))
    out = out.with_columns(
        pl.col("genres").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("year").cast(pl.Int32),
    )
    if "tags" in out.columns:
        out = out.with_columns(pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    rest = [c for c in out.columns if c not in ITEM_COLUMNS]
    return out.select([*ITEM_COLUMNS, *rest])


def _align_users(users: pl.DataFrame | None, user_ids: np.ndarray) -> pl.DataFrame | None:
    if users is None:
        return None
    users = users.with_columns(pl.col("user_id").cast(pl.Int64))
    base = pl.DataFrame({"user_id": user_ids.astype(np.int64)})
    return base.join(users, on="user_id", how="left", maintain_order="left")


def _quantiles(counts: np.ndarray) -> dict:
    if len(counts) == 0:
        return {}
    q = np.percentile(counts, [0, 50, 90, 100])
    return {"min": int(q[0]), "median": float(q[1]), "p90": float(q[2]), "max": int(q[3]),
            "mean": float(counts.mean())}
