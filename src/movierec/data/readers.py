"""Readers for every MovieLens on-disk format, producing the canonical :class:`Dataset`.

Three layouts, whose files, separators and column orders :mod:`movierec.data.formats` defines:
``ml-100k`` (``u.data``, ``u.item``, ``u.user``, ``u.genre``), ``dat`` (ML-1M / ML-10M
``ratings.dat``, ``movies.dat``, ``users.dat`` or ``tags.dat``) and ``csv`` (ML-20M and later:
``ratings.csv``, ``movies.csv``, ``tags.csv``, ``links.csv``, the genome files).

Normalisation, the same for every layout:

- titles are stripped of surrounding blanks and kept as published (``"American President, The
  (1995)"``); ``year`` is the title's year (:mod:`movierec.data.titles`: the final parentheses,
  the first year of a range such as ``(2006-2007)``); for ML-100K titles without one, the
  release-date year;
- ``genres`` is a list of names; "no genre" (ML-100K's ``unknown`` flag, the later releases'
  ``(no genres listed)``) is the empty list;
- ``tags`` lists a movie's distinct tags in order of first appearance; tags differing only in
  case count as one, and the first spelling is kept;
- ``imdb_id`` / ``tmdb_id`` are nullable integers;
- ML-1M's ``age`` is the published age-group code (1: under 18, 18: 18-24, 25, 35, 45, 50, 56:
  56+), ``occupation`` the occupation's name and ``occupation_code`` its number.

Every file is parsed by polars with vectorised expressions. A malformed line raises
:class:`DataFormatError` naming the file, the line and the problem; a missing file raises
:class:`DatasetNotFoundError` naming the folder and the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from movierec.data.dataset import Dataset, TagGenome
from movierec.data.formats import (
    LAYOUTS,
    ML1M_OCCUPATIONS,
    ML100K_GENRES,
    NO_GENRE_NAMES,
    FileFormat,
    Layout,
)
from movierec.data.parsing import Col, first_bad_line, read_csv_table, read_separated
from movierec.data.provenance import display_name
from movierec.data.titles import title_year
from movierec.errors import DataFormatError, DatasetNotFoundError

MIN_RATING, MAX_RATING = 0.5, 5.0

_FIELDS = {c.name: c for c in (
    Col("user_id", "int", "user id"), Col("item_id", "int", "movie id"),
    Col("rating", "float", "rating"), Col("timestamp", "int", "timestamp"),
    Col("title", "str", "title", required=False), Col("genres", "str", "genres", required=False),
    Col("release_date", "str", "release date", required=False),
    Col("video_date", "str", "video release date", required=False),
    Col("imdb_url", "str", "IMDb URL", required=False),
    Col("age", "int", "age"), Col("gender", "str", "gender"),
    Col("occupation", "str", "occupation"), Col("occupation_code", "int", "occupation"),
    Col("zip", "str", "zip code", required=False), Col("tag", "str", "tag", required=False),
    Col("imdb_id", "int", "IMDb id", required=False),
    Col("tmdb_id", "int", "TMDB id", required=False),
    Col("tag_id", "int", "tag id"), Col("relevance", "float", "relevance"),
    Col("genre", "str", "genre"), Col("index", "int", "genre index"),
)}
"""How each column of :mod:`movierec.data.formats` is typed, named in errors and checked."""


def _read(fmt: FileFormat | None, path: Path, *extra: Col, free_text: int | None = None,
          **override: Col) -> pl.DataFrame:
    """``path`` read as ``fmt`` (its columns, then ``extra`` ones), with line-exact errors."""
    assert fmt is not None
    cols = [override.get(n, _FIELDS[n]) for n in fmt.columns] + list(extra)
    if fmt.header is not None:
        return read_csv_table(path, fmt.header, cols)
    return read_separated(path, fmt.separator, cols, free_text=free_text)


# ---------------------------------------------------------------------- folders
def detect_layout(folder: str | Path) -> Layout:
    """The layout of a release folder, from the ratings file it holds."""
    folder = _existing_folder(folder)
    for layout, files in LAYOUTS.items():
        if (folder / files.ratings.name).is_file():
            return layout
    hint = ""
    for files in LAYOUTS.values():
        if (folder / files.movies.name).is_file():
            hint = f" (it has {files.movies.name}, so {files.ratings.name} is the file missing)"
    looked = ", ".join(files.ratings.name for files in LAYOUTS.values())
    raise DatasetNotFoundError(
        f"{folder}: no MovieLens ratings file found{hint}; looked for {looked}. Point movierec at "
        "the folder the release's zip extracts to."
    )


def source_files(folder: str | Path, layout: Layout | None = None) -> list[Path]:
    """The files :func:`read_folder` reads from ``folder`` (those of the layout that exist)."""
    folder = _existing_folder(folder)
    layout = layout or detect_layout(folder)
    files = LAYOUTS[layout]
    names = (files.ratings.name, files.movies.name, *files.optional)
    return [folder / n for n in names if (folder / n).is_file()]


def read_folder(folder: str | Path, layout: Layout | None = None, name: str | None = None
                ) -> Dataset:
    """Parse a release folder into a :class:`Dataset` named ``name`` (default: the folder name,
    marked synthetic by :func:`~movierec.data.provenance.display_name` where it is).

    ``layout`` is detected from the files when not given. The ratings and movie files are
    required; user, tag, link and genome files are read when present.
    """
    folder = _existing_folder(folder)
    layout = layout or detect_layout(folder)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    files = LAYOUTS[layout]
    ratings_path = _required(folder, files.ratings.name)
    movies_path = _required(folder, files.movies.name)
    users = genome = None
    if layout == "ml-100k":
        ratings = read_ml100k_ratings(ratings_path)
        items = read_ml100k_items(movies_path, _optional(folder, "u.genre"))
        if (p := _optional(folder, "u.user")) is not None:
            users = read_ml100k_users(p)
    elif layout == "dat":
        ratings = read_dat_ratings(ratings_path)
        items = read_dat_movies(movies_path)
        if (p := _optional(folder, "users.dat")) is not None:
            users = read_dat_users(p)
        if (p := _optional(folder, "tags.dat")) is not None:
            items = _join(items, read_dat_tags(p))
    else:
        ratings = read_csv_ratings(ratings_path)
        items = read_csv_movies(movies_path)
        if (p := _optional(folder, "tags.csv")) is not None:
            items = _join(items, read_csv_tags(p))
        if (p := _optional(folder, "links.csv")) is not None:
            items = _join(items, read_csv_links(p))
        scores, tags = _optional(folder, "genome-scores.csv"), _optional(folder, "genome-tags.csv")
        if (scores is None) != (tags is None):
            missing = "genome-tags.csv" if tags is None else "genome-scores.csv"
            raise DatasetNotFoundError(
                f"{folder}: {missing} is missing; the tag genome needs both genome-scores.csv "
                "and genome-tags.csv (remove the other one to load without the genome)"
            )
        if scores is not None and tags is not None:
            genome = read_genome(scores, tags)
    name = name or display_name(folder.name, folder)
    return Dataset.from_frames(name, ratings, items, users, genome)


# ---------------------------------------------------------------------- ratings
def read_ml100k_ratings(path: Path) -> pl.DataFrame:
    """``u.data``: ``user_id, item_id, rating, timestamp``."""
    return _checked_ratings(path, _read(LAYOUTS["ml-100k"].ratings, _nonempty(path)))


def read_dat_ratings(path: Path) -> pl.DataFrame:
    """ML-1M / ML-10M ``ratings.dat`` (``user::movie::rating::timestamp``)."""
    return _checked_ratings(path, _read(LAYOUTS["dat"].ratings, _nonempty(path)))


def read_csv_ratings(path: Path) -> pl.DataFrame:
    """``ratings.csv`` (``userId,movieId,rating,timestamp``)."""
    return _checked_ratings(path, _read(LAYOUTS["csv"].ratings, _nonempty(path)))


def _checked_ratings(path: Path, df: pl.DataFrame) -> pl.DataFrame:
    """Ratings in range, one per user and movie, at least one: else a line-exact error."""
    if df.height == 0:
        raise DataFormatError(path, None, "holds no ratings (only a header or blank lines)")
    _check_not_cut(path, df)
    r = pl.col("rating")
    bad = first_bad_line(df, r.is_nan())
    if bad is not None:
        raise DataFormatError(path, bad["line"], "rating 'nan' is not a number")
    bad = first_bad_line(df, (r < MIN_RATING) | (r > MAX_RATING))
    if bad is not None:
        raise DataFormatError(
            path, bad["line"], f"rating {bad['rating']:g} is outside {MIN_RATING:g}..{MAX_RATING:g}"
        )
    dup = _first_repeated_pair(df)
    if dup is not None:
        same = (pl.col("user_id") == dup["user_id"]) & (pl.col("item_id") == dup["item_id"])
        first = df.filter(same)
        raise DataFormatError(
            path, dup["line"], f"user {dup['user_id']} rated movie {dup['item_id']} a second time "
            f"(first at line {first.get_column('line')[0]}); keep one rating per user and movie",
        )
    return df.drop("line")


def _check_not_cut(path: Path, df: pl.DataFrame) -> None:
    """A file cut short inside its last line's timestamp still parses: it ends without a newline
    and that timestamp has fewer digits than every other one. Raise naming the line."""
    with open(path, "rb") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n" or df.height < 2:
            return
    ts = df.get_column("timestamp")
    last, others = int(ts.to_numpy()[-1]), int(ts.head(df.height - 1).abs().min())  # type: ignore[arg-type]  # polars types min() as any scalar
    if len(str(abs(last))) < len(str(others)):
        raise DataFormatError(
            path, int(df.get_column("line")[-1]),
            f"the file ends inside this line: timestamp {last} has fewer digits than every "
            "other one and no newline follows; the file looks cut short, download or copy it "
            "again")


def _first_repeated_pair(df: pl.DataFrame) -> dict | None:
    """The first row whose (user_id, item_id) pair occurred on an earlier row, or None."""
    u, i = pl.col("user_id"), pl.col("item_id")
    fits = df.select(((u.min() >= 0) & (u.max() < 2**31) & (i.min() >= 0) & (i.max() < 2**32))
                     .fill_null(True)).item()
    # one Int64 key hashes several times faster than a struct of two columns
    key = u * 2**32 + i if fits else pl.struct(u, i)
    if df.select(key.n_unique()).item() == df.height:
        return None
    return first_bad_line(df, ~key.is_first_distinct())


# ---------------------------------------------------------------------- movies
def read_ml100k_items(path: Path, genre_path: Path | None = None) -> pl.DataFrame:
    """``u.item``: ``item_id, title, year, genres``, ``release_date`` (Date) and ``imdb_url``.

    Genre names come from ``u.genre`` when given (else :data:`ML100K_GENRES`); the ``unknown``
    flag is no genre.
    """
    genres = _ml100k_genres(genre_path) if genre_path is not None else list(ML100K_GENRES)
    flags = [Col(f"g{j}", "int", f"flag of genre {g!r}") for j, g in enumerate(genres)]
    df = _read(LAYOUTS["ml-100k"].movies, path, *flags)
    flag_names = [c.name for c in flags]
    bad = first_bad_line(df, ~pl.all_horizontal(pl.col(flag_names).is_in([0, 1])))
    if bad is not None:
        col = next(c for c in flags if bad[c.name] not in (0, 1))
        raise DataFormatError(path, bad["line"], f"{col.label} is {bad[col.name]}, not 0 or 1")
    date = pl.col("release_date").str.strptime(pl.Date, "%d-%b-%Y", strict=False)
    genre_list = pl.concat_list(
        [pl.when(pl.col(f"g{j}") == 1).then(pl.lit(g)) for j, g in enumerate(genres)]
        if genres else [pl.lit(None, pl.String)]
    ).list.drop_nulls().list.filter(~pl.element().is_in(list(NO_GENRE_NAMES)))
    return df.select(
        pl.col("item_id"),
        pl.col("title"),
        _year().fill_null(date.dt.year()).cast(pl.Int32).alias("year"),
        genre_list.alias("genres"),
        date.alias("release_date"),
        pl.col("imdb_url"),
    )


def read_dat_movies(path: Path) -> pl.DataFrame:
    """ML-1M / ML-10M ``movies.dat`` (``id::title::genres``): ``item_id, title, year, genres``."""
    return _movies(_read(LAYOUTS["dat"].movies, path, free_text=1), path)


def read_csv_movies(path: Path) -> pl.DataFrame:
    """``movies.csv`` (``movieId,title,genres``): ``item_id, title, year, genres``."""
    return _movies(_read(LAYOUTS["csv"].movies, path), path)


def _movies(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    _check_unique_ids(df, "item_id", "movie", path)
    genres = (
        pl.col("genres").fill_null("").str.split("|")
        .list.eval(pl.element().str.strip_chars())
        .list.filter((pl.element() != "") & ~pl.element().is_in(list(NO_GENRE_NAMES)))
    )
    return df.select("item_id", "title", _year().cast(pl.Int32).alias("year"), genres)


def _year() -> pl.Expr:
    return title_year(pl.col("title"))


def _ml100k_genres(path: Path) -> list[str]:
    df = _read(LAYOUTS["ml-100k"].genre_list, path).sort("index")
    if df.get_column("index").to_list() != list(range(df.height)):
        raise DataFormatError(path, None, "genre indices are not 0, 1, 2, ... in order")
    return df.get_column("genre").to_list()


# ---------------------------------------------------------------------- users
def read_ml100k_users(path: Path) -> pl.DataFrame:
    """``u.user`` (``id|age|gender|occupation|zip``): ``user_id, age, gender, occupation, zip``."""
    df = _read(LAYOUTS["ml-100k"].users, path)
    _check_unique_ids(df, "user_id", "user", path)
    return df.select("user_id", pl.col("age").cast(pl.Int32), "gender", "occupation", "zip")


def read_dat_users(path: Path) -> pl.DataFrame:
    """ML-1M ``users.dat`` (``id::gender::age::occupation::zip``): ``user_id, age`` (age-group
    code), ``gender``, ``occupation`` (name), ``zip``, ``occupation_code``."""
    df = _read(LAYOUTS["dat"].users, path)
    _check_unique_ids(df, "user_id", "user", path)
    code = pl.col("occupation_code")
    bad = first_bad_line(df, (code < 0) | (code >= len(ML1M_OCCUPATIONS)))
    if bad is not None:
        raise DataFormatError(
            path, bad["line"], f"occupation code {bad['occupation_code']} is not one of "
            f"0..{len(ML1M_OCCUPATIONS) - 1}",
        )
    names = pl.Series(ML1M_OCCUPATIONS)
    return df.select(
        "user_id", pl.col("age").cast(pl.Int32), "gender",
        code.replace_strict(list(range(len(names))), names, return_dtype=pl.String)
        .alias("occupation"),
        "zip", code.cast(pl.Int32),
    )


# ---------------------------------------------------------------------- tags, links, genome
def read_dat_tags(path: Path) -> pl.DataFrame:
    """ML-10M ``tags.dat`` (``user::movie::tag::timestamp``): ``item_id, tags`` (list)."""
    return tags_per_movie(_read(LAYOUTS["dat"].tags, path, free_text=2))


def read_csv_tags(path: Path) -> pl.DataFrame:
    """``tags.csv`` (``userId,movieId,tag,timestamp``): ``item_id, tags`` (list)."""
    return tags_per_movie(_read(LAYOUTS["csv"].tags, path))


def tags_per_movie(tags: pl.DataFrame) -> pl.DataFrame:
    """One row per tagged movie: ``item_id`` and its distinct ``tags`` in order of first
    appearance (case-insensitive; the first spelling is kept; blank tags dropped)."""
    return (
        tags.select("item_id", pl.col("tag").str.strip_chars())
        .filter(pl.col("tag").is_not_null() & (pl.col("tag") != ""))
        .with_columns(pl.col("tag").str.to_lowercase().alias("key"))
        .unique(["item_id", "key"], keep="first", maintain_order=True)
        .group_by("item_id", maintain_order=True)
        .agg(pl.col("tag").alias("tags"))
    )


def read_csv_links(path: Path) -> pl.DataFrame:
    """``links.csv`` (``movieId,imdbId,tmdbId``): ``item_id, imdb_id, tmdb_id`` (nullable)."""
    df = _read(LAYOUTS["csv"].links, path)
    _check_unique_ids(df, "item_id", "movie", path)
    return df.drop("line")


def read_genome(scores_path: Path, tags_path: Path) -> TagGenome:
    """The tag genome: ``genome-scores.csv`` (``movieId,tagId,relevance``) pivoted to a dense
    ``float32`` matrix over ascending movie ids x tags in ascending ``tagId`` order
    (``genome-tags.csv``). Pairs absent from the scores file have relevance 0."""
    tags = _read(LAYOUTS["csv"].genome_tags, tags_path, tag=Col("tag", "str", "tag"))
    _check_unique_ids(tags, "tag_id", "tag", tags_path)
    tags = tags.sort("tag_id")
    scores = _read(LAYOUTS["csv"].genome_scores, scores_path)
    tag_ids = tags.get_column("tag_id").to_numpy()
    score_tags = scores.get_column("tag_id").to_numpy()
    col = np.searchsorted(tag_ids, score_tags)
    unknown = (col >= len(tag_ids)) | (tag_ids[np.minimum(col, len(tag_ids) - 1)] != score_tags)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataFormatError(
            scores_path, int(scores.get_column("line")[i]),
            f"tag id {score_tags[i]} is not in {tags_path.name}",
        )
    movie = scores.get_column("item_id").to_numpy()
    item_ids, row = np.unique(movie, return_inverse=True)
    relevance = np.zeros((len(item_ids), len(tag_ids)), dtype=np.float32)
    relevance[row, col] = scores.get_column("relevance").to_numpy()
    return TagGenome(item_ids.astype(np.int64), tags.get_column("tag").to_list(), relevance)


# ---------------------------------------------------------------------- helpers
def _existing_folder(folder: str | Path) -> Path:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{folder}: no such folder")
    return folder


def _required(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DatasetNotFoundError(f"{folder}: required file {name} is missing")
    return path


def _optional(folder: Path, name: str) -> Path | None:
    path = folder / name
    return path if path.is_file() else None


def _nonempty(path: Path) -> Path:
    if path.stat().st_size == 0:
        raise DataFormatError(path, None, "holds no ratings (the file is empty)")
    return path


def _check_unique_ids(df: pl.DataFrame, column: str, what: str, path: Path) -> None:
    dup = first_bad_line(df, ~pl.col(column).is_first_distinct())
    if dup is not None:
        raise DataFormatError(path, dup["line"], f"{what} id {dup[column]} is listed twice")


def _join(items: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    """Add ``extra``'s columns to the movie table (movies absent from ``extra`` get nulls)."""
    return items.join(extra, on="item_id", how="left", maintain_order="left")
