"""How MovieLens releases lie on disk: the one definition the readers, the synthetic-release
writer and the registry share.

Three layouts:

- ``ml-100k``: ``u.data`` (tab), ``u.item`` (pipe, latin-1, 19 genre flags in ``u.genre``
  order), ``u.user``, ``u.genre``, ``u.occupation``, ``u.info``, the ``u1..u5`` / ``ua`` / ``ub``
  folds (``.base`` / ``.test``, laid out like ``u.data``).
- ``dat`` (ML-1M, ML-10M): ``::``-separated latin-1 ``ratings.dat``, ``movies.dat``, and
  ``users.dat`` (1M) or ``tags.dat`` (10M).
- ``csv`` (ML-20M and later, ml-latest): UTF-8 ``ratings.csv``, ``movies.csv``, and where
  present ``tags.csv``, ``links.csv``, ``genome-scores.csv`` + ``genome-tags.csv``; each with a
  header row.

A :class:`FileFormat` names a file's fields in order by movierec's column names (``user_id``,
``item_id``, ...); ``header`` is the header row as GroupLens writes it, for the CSV files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CSV_CHILDREN",
    "FileFormat",
    "GENRES",
    "LAYOUTS",
    "Layout",
    "LayoutFormat",
    "ML100K_GENRES",
    "ML100K_OCCUPATIONS",
    "ML1M_AGE_GROUPS",
    "ML1M_OCCUPATIONS",
    "NO_GENRE",
    "NO_GENRE_NAMES",
]

Layout = Literal["ml-100k", "dat", "csv"]
"""On-disk format family of a release (see the module docstring)."""


@dataclass(frozen=True)
class FileFormat:
    """One file of a layout: its ``name``, field ``separator``, text ``encoding`` (as GroupLens
    wrote it; readers also accept UTF-8), ``columns`` in file order and, for CSV files, the
    published ``header``."""

    name: str
    separator: str
    encoding: str
    columns: tuple[str, ...]
    header: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LayoutFormat:
    """The files of one layout: ``ratings`` marks a release folder, ``movies`` is required too,
    the others are read when present."""

    ratings: FileFormat
    movies: FileFormat
    users: FileFormat | None = None
    tags: FileFormat | None = None
    links: FileFormat | None = None
    genre_list: FileFormat | None = None
    genome_scores: FileFormat | None = None
    genome_tags: FileFormat | None = None

    @property
    def optional(self) -> tuple[str, ...]:
        """The names of the files read when present, in reading order."""
        files = (self.users, self.tags, self.links, self.genre_list, self.genome_scores,
                 self.genome_tags)
        return tuple(f.name for f in files if f is not None)


_RATING = ("user_id", "item_id", "rating", "timestamp")
_TAG = ("user_id", "item_id", "tag", "timestamp")


def _csv(name: str, columns: tuple[str, ...], header: tuple[str, ...]) -> FileFormat:
    return FileFormat(name, ",", "utf-8", columns, header)


LAYOUTS: dict[Layout, LayoutFormat] = {
    "ml-100k": LayoutFormat(
        ratings=FileFormat("u.data", "\t", "latin-1", _RATING),
        # followed by one 0/1 flag per genre of u.genre (ML100K_GENRES)
        movies=FileFormat("u.item", "|", "latin-1",
                          ("item_id", "title", "release_date", "video_date", "imdb_url")),
        users=FileFormat("u.user", "|", "latin-1",
                         ("user_id", "age", "gender", "occupation", "zip")),
        genre_list=FileFormat("u.genre", "|", "latin-1", ("genre", "index")),
    ),
    "dat": LayoutFormat(
        ratings=FileFormat("ratings.dat", "::", "latin-1", _RATING),
        movies=FileFormat("movies.dat", "::", "latin-1", ("item_id", "title", "genres")),
        users=FileFormat("users.dat", "::", "latin-1",
                         ("user_id", "gender", "age", "occupation_code", "zip")),
        tags=FileFormat("tags.dat", "::", "latin-1", _TAG),
    ),
    "csv": LayoutFormat(
        ratings=_csv("ratings.csv", _RATING, ("userId", "movieId", "rating", "timestamp")),
        movies=_csv("movies.csv", ("item_id", "title", "genres"), ("movieId", "title", "genres")),
        tags=_csv("tags.csv", _TAG, ("userId", "movieId", "tag", "timestamp")),
        links=_csv("links.csv", ("item_id", "imdb_id", "tmdb_id"),
                   ("movieId", "imdbId", "tmdbId")),
        genome_scores=_csv("genome-scores.csv", ("item_id", "tag_id", "relevance"),
                           ("movieId", "tagId", "relevance")),
        genome_tags=_csv("genome-tags.csv", ("tag_id", "tag"), ("tagId", "tag")),
    ),
}

# ---------------------------------------------------------------------- the releases' word lists
GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
"""The genre vocabulary of ML-100K / ML-1M (later releases add a few)."""

CSV_CHILDREN = "Children"
"""How the CSV releases spell ``Children's``."""

ML100K_GENRES = ("unknown", *GENRES)
"""``u.genre`` order: the 19 flag columns of ``u.item``; ``unknown`` marks a movie with no genre."""

NO_GENRE = "(no genres listed)"
"""How the CSV releases and ML-10M's movies.dat write a movie without genres."""

NO_GENRE_NAMES = frozenset({"unknown", NO_GENRE})
"""Genre names that mean "no genre" (read as the empty genre list)."""

ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
    "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip
"""``u.occupation`` of ML-100K."""

ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
"""ML-1M occupation names by code (``users.dat``), per the release's README."""

ML1M_AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)
"""``users.dat`` age codes: a code is the lowest age of its group (1 = under 18, 56 = 56+)."""
