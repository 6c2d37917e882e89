"""What the ``movierec content ...`` commands do, as library calls (the CLI only prints).

Tables and training rows describe users by their past, so by default they are built from the
leave-one-out train part (the fixed P1 files when ``<data_dir>/eval/<dataset>`` has them, else
generated): the held-out test items never enter them. ``split="none"`` uses every rating.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError
from movierec.files import check_not_input, check_output_file, owned_names, write_folder

if TYPE_CHECKING:
    from movierec.content.tables import GenreTables

__all__ = ["GenreTablesRecipe", "item_vectors", "train_part", "write_tables",
           "write_training_set"]
TABLES_KIND = "content tables folder"


def train_part(dataset: str, data_dir: str | Path | None = None, split: str = "fixed") -> Dataset:
    """The ratings the tables are built from: the leave-one-out train part, or all of them."""
    from movierec.data import splits
    from movierec.data.loading import load_dataset

    return splits.train_part(load_dataset(dataset, data_dir), data_dir, split)


def item_vectors(
    ds: Dataset, method: str = "genre", embedder: str = "minilm", progress: bool = False
) -> np.ndarray:
    """``float32 (n_items, d)``: binary genre vectors (``"genre"``) or description embeddings
    (``"text"``, cached on disk)."""
    from movierec.models.content import genre_item_vectors, text_item_vectors

    if method == "genre":
        return genre_item_vectors(ds)
    if method == "text":
        return text_item_vectors(ds, embedder, progress=progress)
    raise MovierecError(f"unknown content method {method!r}; expected genre or text")


@dataclass(frozen=True)
class GenreTablesRecipe:
    """What the user / genre tables of the content commands are built from: ``dataset``'s
    :func:`train_part` (``split``), movie vectors by ``method`` (``embedder`` for ``"text"``),
    and the rating ``threshold`` between liked and disliked movies."""

    dataset: str
    data_dir: str | Path | None = None
    split: str = "fixed"
    method: str = "text"
    embedder: str = "minilm"
    threshold: float = 4.0

    def build(
        self, progress: bool = False
    ) -> tuple[Dataset, np.ndarray, GenreTables, float, float]:
        """``(train part, item vectors, tables, seconds for the vectors, seconds for the
        tables)``."""
        from movierec.content.tables import build_genre_tables

        ds = train_part(self.dataset, self.data_dir, self.split)
        t0 = time.perf_counter()
        vectors = item_vectors(ds, self.method, self.embedder, progress)
        t1 = time.perf_counter()
        tables = build_genre_tables(ds, vectors, self.threshold)
        return ds, vectors, tables, t1 - t0, time.perf_counter() - t1


def write_tables(recipe: GenreTablesRecipe, out: str | Path, *, progress: bool = False,
                 force: bool = False) -> dict[str, Any]:
    """Build the user / genre tables of ``recipe`` and write them (with the heatmap) to the
    folder ``out`` (whole or not at all; an existing folder movierec did not make only with
    ``force``, its files kept); returns the file paths, sizes and seconds spent."""
    from movierec.content.tables import save_tables
    from movierec.data.loading import input_files

    out = Path(out).expanduser().absolute()
    check_not_input(out, input_files(recipe.dataset, recipe.data_dir))
    owned_names(out, TABLES_KIND, force=force)
    ds, vectors, tables, vectors_seconds, tables_seconds = recipe.build(progress)
    title = f"{ds.name.split('/')[0]}: genre x genre cosine ({recipe.method} vectors)"
    names: dict[str, Path] = {}
    write_folder(out, lambda tmp: names.update(save_tables(tables, ds, tmp, title=title)),
                 TABLES_KIND, force=force)
    paths = {key: out / p.name for key, p in names.items()}
    return {
        "dataset": ds.name, "method": recipe.method, "users": ds.n_users,
        "genres": len(tables.genre_names), "vector_dim": int(vectors.shape[1]),
        "mean_positive_genres": float(tables.positive.sum(axis=1).mean()),
        "mean_negative_genres": float(tables.negative.sum(axis=1).mean()),
        "vectors_seconds": vectors_seconds, "tables_seconds": tables_seconds,
        "files": {k: str(v) for k, v in paths.items()},
    }


def write_training_set(
    recipe: GenreTablesRecipe,
    out: str | Path,
    *,
    ratio: int = 3,
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Build the genre-aware training rows of ``recipe`` (``ratio`` negative rows per positive
    one, drawn with ``seed``) and export them to ``out`` (``.csv``, ``.tsv`` or ``.parquet``;
    an existing file only with ``force``, never an input file); returns the counts and the
    path."""
    from movierec.content.genre_training import export_training_set, genre_training_set
    from movierec.data.loading import input_files

    check_output_file(out, force=force, inputs=input_files(recipe.dataset, recipe.data_dir))
    ds, _, tables, _, _ = recipe.build(progress)
    rows = genre_training_set(ds, tables, ratio=ratio, threshold=recipe.threshold, seed=seed)
    path = export_training_set(rows, out)
    y = rows.get_column("interaction").to_numpy()
    return {
        "dataset": ds.name, "method": recipe.method, "path": str(path), "rows": rows.height,
        "positive": int((y == 1).sum()), "negative": int((y == 0).sum()),
        "users": int(rows.get_column("user_idx").n_unique()), "users_in_train": ds.n_users,
        "ratio": ratio,
    }
