"""User, genre and similarity tables over item vectors, computed for all users at once.

Item vectors are any ``(n_items, d)`` description of movies: text embeddings, or the binary
movie x genre matrix. From them:

* user embedding: the mean vector of the user's positive movies (:func:`positive_matrix`);
* genre embedding: the mean vector of the movies in the genre;
* user x genre: cosine similarity of each user's embedding with each genre's;
* genre x genre: cosine similarity between genre embeddings (saved as CSV and drawn as an
  annotated heatmap by :func:`save_tables`);
* per user, the median of their genre similarities splits the genres into those above it
  (candidates for positive genres) and the rest, at or below it (candidates for negative
  genres).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError
from movierec.files import write_atomically

__all__ = [
    "GenreTables",
    "build_genre_tables",
    "cosine",
    "genre_embeddings",
    "plot_genre_heatmap",
    "positive_matrix",
    "save_tables",
    "unit_rows",
    "user_embeddings",
]

POSITIVE_THRESHOLD = 4.0
"""Default: a rating of at least this many stars makes a movie one of the user's positives."""


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``float32`` copy of ``x`` with L2-normalised rows (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``float32 (len(a), len(b))`` cosine similarities of rows; 0 where a row is all zeros."""
    return unit_rows(a) @ unit_rows(b).T


def positive_matrix(train: Dataset, threshold: float = POSITIVE_THRESHOLD) -> sp.csr_matrix:
    """Binary ``float32`` CSR ``(n_users, n_items)`` of each user's positive movies.

    A positive is a rating ``>= threshold``. A user with no such rating keeps all their rated
    movies (so every user with a rating has a profile). Users without ratings have empty rows.
    """
    csr = train.csr  # cached on the Dataset; one entry per (user, movie)
    rows = np.repeat(np.arange(train.n_users), np.diff(csr.indptr))
    pos = csr.data >= threshold
    has_pos = np.bincount(rows[pos], minlength=train.n_users) > 0
    keep = pos | ~has_pos[rows]
    indptr = np.zeros(train.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=train.n_users), out=indptr[1:])
    return sp.csr_matrix((np.ones(int(indptr[-1]), np.float32), csr.indices[keep], indptr),
                         shape=csr.shape)


def _genres_touched(m: sp.csr_matrix, genre_matrix: sp.csr_matrix) -> np.ndarray:
    """``bool (n_users, n_genres)``: genres of any movie in each row of ``m``."""
    return np.asarray(m @ genre_matrix.toarray()) > 0


def _row_mean(m: sp.csr_matrix, vectors: np.ndarray) -> np.ndarray:
    counts = np.diff(m.indptr).astype(np.float32)
    out = np.asarray(m @ vectors, dtype=np.float32)
    out /= np.maximum(counts, 1.0)[:, None]
    return out


def user_embeddings(
    train: Dataset, item_vectors: np.ndarray, threshold: float = POSITIVE_THRESHOLD
) -> np.ndarray:
    """``float32 (n_users, d)``: mean item vector of each user's positive movies (one sparse
    matrix product for all users; zeros for users without ratings)."""
    _check_vectors(item_vectors, train.n_items)
    return _row_mean(positive_matrix(train, threshold), np.asarray(item_vectors, np.float32))


def genre_embeddings(dataset: Dataset, item_vectors: np.ndarray) -> np.ndarray:
    """``float32 (n_genres, d)``: mean item vector of the movies of each genre (columns of
    ``dataset.genre_names``; every movie of the item table counts, rated or not)."""
    _check_vectors(item_vectors, dataset.n_items)
    g = sp.csr_matrix(dataset.genre_matrix.T)
    return _row_mean(g, np.asarray(item_vectors, np.float32))


def _check_vectors(item_vectors: np.ndarray, n_items: int) -> None:
    if np.ndim(item_vectors) != 2 or len(item_vectors) != n_items:
        raise MovierecError(
            f"item vectors have shape {np.shape(item_vectors)}; expected ({n_items}, d), "
            "one row per item_idx of the dataset"
        )


@dataclass(frozen=True, eq=False)
class GenreTables:
    """Per-user genre taste over ``genre_names``.

    Attributes:
        genre_names: the genre of each column.
        user_genre: ``float32 (n_users, n_genres)`` cosine(user embedding, genre embedding).
        genre_genre: ``float32 (n_genres, n_genres)`` cosine between genre embeddings.
        median: ``float32 (n_users,)`` median of each user's row of ``user_genre``.
        liked: ``bool (n_users, n_genres)`` genres of the user's positive movies.
        interacted: ``bool (n_users, n_genres)`` genres of any movie the user rated.
    """

    genre_names: list[str]
    user_genre: np.ndarray
    genre_genre: np.ndarray
    median: np.ndarray
    liked: np.ndarray
    interacted: np.ndarray

    @property
    def above(self) -> np.ndarray:
        """``bool (n_users, n_genres)``: similarity above the user's median."""
        return self.user_genre > self.median[:, None]

    @property
    def below(self) -> np.ndarray:
        """``bool (n_users, n_genres)``: similarity at or below the user's median (the genres
        not ``above``; with genre vectors many untouched genres tie at a median of 0)."""
        return ~self.above

    @property
    def positive(self) -> np.ndarray:
        """Actual positive genres: above the median and among the genres of positive movies."""
        return self.above & self.liked

    @property
    def negative(self) -> np.ndarray:
        """Actual negative genres: below the median and never interacted with."""
        return self.below & ~self.interacted


def build_genre_tables(
    train: Dataset, item_vectors: np.ndarray, threshold: float = POSITIVE_THRESHOLD
) -> GenreTables:
    """All the tables of the module docstring for the users of ``train``."""
    if not train.genre_names:
        raise MovierecError(f"{train.name}: the item table has no genres to build tables over")
    _check_vectors(item_vectors, train.n_items)
    pos = positive_matrix(train, threshold)
    users = unit_rows(_row_mean(pos, np.asarray(item_vectors, np.float32)))
    genres = unit_rows(genre_embeddings(train, item_vectors))
    user_genre = users @ genres.T
    seen = train.csr
    return GenreTables(
        genre_names=list(train.genre_names),
        user_genre=user_genre.astype(np.float32, copy=False),
        genre_genre=(genres @ genres.T).astype(np.float32, copy=False),
        median=np.median(user_genre, axis=1).astype(np.float32),
        liked=_genres_touched(pos, train.genre_matrix),
        interacted=_genres_touched(sp.csr_matrix((np.ones_like(seen.data), seen.indices,
                                                  seen.indptr), shape=seen.shape),
                                   train.genre_matrix),
    )


# ---------------------------------------------------------------------- files
def plot_genre_heatmap(
    genre_genre: np.ndarray, genre_names: list[str], path: str | Path, title: str = ""
) -> Path:
    """Draw the genre x genre matrix as a heatmap with each cell's value written in it (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(genre_names)
    size = max(6.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    # colours span the values present (mean text embeddings are all alike: 0.7-1.0)
    lo = float(np.floor(np.min(genre_genre) * 20) / 20) if n else 0.0
    lo = min(lo, 0.95)
    im = ax.imshow(genre_genre, cmap="viridis", vmin=lo, vmax=1.0)
    ax.set_xticks(range(n), genre_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), genre_names, fontsize=8)
    mid = (lo + 1.0) / 2
    for i in range(n):  # n <= ~20 genres: a few hundred labels
        for j in range(n):
            v = float(genre_genre[i, j])
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="black" if v > mid else "white")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    ax.set_title(title or "genre x genre cosine similarity")
    fig.tight_layout()
    path = Path(path)
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return path


def save_tables(
    tables: GenreTables, dataset: Dataset, folder: str | Path, title: str = ""
) -> dict[str, Path]:
    """Write ``genre_genre.csv``, ``genre_heatmap.png``, ``user_genre.parquet`` (``user_id``,
    ``median`` and one similarity column per genre) and ``user_genres.parquet`` (``user_id``,
    ``positive_genres``, ``negative_genres`` lists) into ``folder``; returns their paths."""
    folder = Path(folder)
    names = tables.genre_names
    gg = pl.DataFrame({"genre": names}).hstack(
        pl.DataFrame(tables.genre_genre, schema=names, orient="row")
    )
    paths = {"genre_genre": folder / "genre_genre.csv", "heatmap": folder / "genre_heatmap.png",
             "user_genre": folder / "user_genre.parquet",
             "user_genres": folder / "user_genres.parquet"}
    write_atomically(paths["genre_genre"], lambda tmp: gg.write_csv(tmp, float_precision=4))
    plot_genre_heatmap(tables.genre_genre, names, paths["heatmap"], title)
    ug = pl.DataFrame({"user_id": dataset.user_ids, "median": tables.median}).hstack(
        pl.DataFrame(tables.user_genre, schema=names, orient="row")
    )
    write_atomically(paths["user_genre"], lambda tmp: ug.write_parquet(tmp))
    sets = pl.DataFrame({"user_id": dataset.user_ids,
                         "positive_genres": _genre_lists(tables.positive, names),
                         "negative_genres": _genre_lists(tables.negative, names)})
    write_atomically(paths["user_genres"], lambda tmp: sets.write_parquet(tmp))
    return paths


def _genre_lists(mask: np.ndarray, names: list[str]) -> pl.Series:
    users, cols = np.nonzero(mask)
    exploded = pl.DataFrame({"u": users, "g": np.asarray(names, dtype=object)[cols].astype(str)})
    lists = exploded.group_by("u", maintain_order=True).agg("g")
    full = pl.DataFrame({"u": np.arange(mask.shape[0], dtype=users.dtype)})
    out = full.join(lists, on="u", how="left", maintain_order="left").get_column("g")
    return out.fill_null(pl.lit([], dtype=pl.List(pl.String)))
