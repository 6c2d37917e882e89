"""The movie catalogue a served artifact needs: titles, years, genres, links and rating counts.

An artifact holds the model and its id maps but not the movie table, so the server reads
``catalogue.parquet`` beside the artifact's files when it is there, and otherwise builds it from
the dataset named in the artifact's ``config.json`` (found with ``--data-dir`` /
``$MOVIEREC_DATA``) and writes it there for next time (best effort: a read-only artifact folder
is fine). With the catalogue in place, serving needs no dataset at all (the Docker image).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from movierec.checksums import read_checked, read_parquet, sidecar, write_checked
from movierec.data.dataset import Dataset
from movierec.data.titles import strip_title_year
from movierec.errors import CorruptFileError, MovierecError
from movierec.models.artifacts import dataset_name_of

log = logging.getLogger(__name__)

CATALOGUE_FILE = "catalogue.parquet"
COLUMNS = ("item_id", "title", "year", "genres", "imdb_id", "tmdb_id", "n_ratings",
           "mean_rating")

_ARTICLES = "The|A|An|Les|Le|La|L'|Il|El|Los|Las|Das|Der|Die|Det|Den|O|I"


def catalogue_of(dataset: Dataset) -> pl.DataFrame:
    """One row per movie of ``dataset`` (its ``item_idx`` order): the :data:`COLUMNS`.

    ``n_ratings`` / ``mean_rating`` count every rating of ``dataset``; ``mean_rating`` is null
    for an unrated movie; ``imdb_id`` / ``tmdb_id`` are null where the release has no links.
    """
    counts = np.bincount(dataset.item_idx, minlength=dataset.n_items)
    sums = np.bincount(dataset.item_idx, weights=dataset.rating, minlength=dataset.n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    items = dataset.items
    out = items.select("item_id", "title", "year", "genres").with_columns(
        *(
            (items.get_column(c).cast(pl.Int64) if c in items.columns
             else pl.lit(None, dtype=pl.Int64)).alias(c)
            for c in ("imdb_id", "tmdb_id")
        ),
        pl.Series("n_ratings", counts.astype(np.int64)),
        pl.Series("mean_rating", means.astype(np.float32)).fill_nan(None),
    )
    return out.select(COLUMNS)


def display_titles(titles: pl.Series) -> pl.Series:
    """MovieLens titles as people write them: the trailing ``(1995)`` dropped and a trailing
    article moved to the front (``"Usual Suspects, The (1995)"`` -> ``"The Usual Suspects"``)."""
    no_year = strip_title_year(titles.fill_null(""))
    moved = no_year.str.replace(rf"^(.+?), ({_ARTICLES})((?: \(.*\))?)$", "$2 $1$3")
    # "L'" takes no space after it ("L'Avventura")
    return moved.str.replace(r"^L' ", "L'").str.strip_chars()


def write_catalogue(dataset: Dataset, artifact: str | Path) -> Path:
    """Write ``catalogue.parquet`` for ``dataset`` into the artifact folder (atomically, with its
    SHA-256 in ``catalogue.parquet.sha256``)."""
    return write_checked(Path(artifact) / CATALOGUE_FILE, catalogue_of(dataset).write_parquet)


def ensure_catalogue(artifact: str | Path, data_dir: str | Path | None = None) -> Path:
    """Write ``catalogue.parquet`` into the artifact folder (from the dataset named in its
    ``config.json``) unless a readable one is there, so the artifact serves on a machine without
    the data folder. Returns the file; :class:`MovierecError` when the dataset is missing."""
    file = Path(artifact) / CATALOGUE_FILE
    frame = load_catalogue(artifact, data_dir)
    if not file.is_file():  # load_catalogue could not save it: say so now, not at serve time
        write_catalogue_frame(frame, artifact)
    return file


def write_catalogue_frame(frame: pl.DataFrame, artifact: str | Path) -> Path:
    """Write ``frame`` as the artifact's ``catalogue.parquet`` (atomically, with its SHA-256)."""
    return write_checked(Path(artifact) / CATALOGUE_FILE, frame.write_parquet)


def load_catalogue(artifact: str | Path, data_dir: str | Path | None = None) -> pl.DataFrame:
    """The catalogue of an artifact: its ``catalogue.parquet``, else built from its dataset.

    Raises :class:`MovierecError` saying what to do when neither is available.
    """
    artifact = Path(artifact)
    file = artifact / CATALOGUE_FILE
    damaged = ""
    if file.is_file():
        try:  # checked against its sidecar; one written before checksums existed is read as is
            data = read_checked(file) if sidecar(file).exists() else file.read_bytes()
            frame = read_parquet(data, name=file)
            missing = [c for c in COLUMNS if c not in frame.columns]
            if not missing:
                return frame.select(COLUMNS)
            log.warning("%s lacks columns %s; rebuilding it from the dataset", file, missing)
        except (CorruptFileError, OSError) as e:  # a damaged cache file: rebuild it
            damaged = f"{e}; "
            log.warning("%s; rebuilding the catalogue from the dataset", e)
    from movierec.data.loading import load_dataset
    from movierec.data.provenance import release_name

    name = dataset_name_of(artifact)  # a synthetic release's display name names its folder too
    try:
        dataset = load_dataset(release_name(name), data_dir, download=False)
    except MovierecError as e:
        raise MovierecError(
            f"{artifact}: {damaged}the artifact was trained on {name!r}, whose movie table is "
            f"needed to serve it, but it was not found ({e}). Pass --data-dir (or set "
            f"MOVIEREC_DATA) to the folder holding {release_name(name)}/, or put "
            f"{CATALOGUE_FILE} in the artifact folder"
        ) from e
    if dataset.name != name:  # e.g. a synthetic artifact and a real release of the same name
        raise MovierecError(
            f"{artifact}: {damaged}the artifact was trained on {name!r} but the release found is "
            f"{dataset.name!r}, whose movies may differ; pass --data-dir to the folder holding "
            f"the release it was trained on, or put {CATALOGUE_FILE} in the artifact folder"
        )
    try:
        write_catalogue(dataset, artifact)
    except OSError as e:
        log.info("could not save %s (%s); it is rebuilt at each start", file, e)
    return catalogue_of(dataset)
