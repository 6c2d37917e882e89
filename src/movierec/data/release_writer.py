"""Write rating, movie and user tables as a MovieLens release folder, in the real file formats.

Used for synthetic data (:mod:`movierec.data.synthetic`): the files look like GroupLens' own, so
they exercise the same readers as a real download. Three layouts (see
:data:`movierec.data.registry.Layout`):

- ``csv`` (ML-20M / 25M / 32M / latest): ``ratings.csv``, ``movies.csv``, ``links.csv``,
  ``tags.csv``; UTF-8, quoted where needed, genres ``|``-joined with ``Children`` and
  ``(no genres listed)`` spelled as in those releases.
- ``dat`` (ML-1M / 10M): ``ratings.dat``, ``movies.dat``, ``users.dat``; ``::``-separated,
  latin-1; users.dat holds ML-1M's age-group and occupation codes.
- ``ml-100k``: ``u.data`` (tab, shuffled rows), ``u.item`` (pipe, latin-1, 19 genre flags in
  ``u.genre`` order), ``u.user``, ``u.genre``, ``u.occupation``, ``u.info`` and the five-fold
  ``u1..u5.base/.test`` split.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from movierec.data.synthetic import SyntheticData

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
"""The genre vocabulary of ML-100K / ML-1M (the CSV releases spell ``Children's`` ``Children``)."""

ML100K_GENRES = ("unknown", *GENRES)
"""``u.genre`` order: the 19 flag columns of ``u.item``; ``unknown`` marks a movie with no genre."""

NO_GENRE = "(no genres listed)"
"""How the CSV releases and ML-10M's movies.dat write a movie without genres."""

OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
    "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip
"""``u.occupation`` of ML-100K."""

# ML-1M users.dat codes: the closest ML-1M occupation to each name above, and the age groups.
ML1M_OCCUPATION_CODE = dict(
    zip(OCCUPATIONS, [3, 2, 6, 1, 17, 0, 7, 6, 9, 11, 1, 14, 19, 0, 12, 13, 14, 15, 4, 17, 20],
        strict=True)
)  # fmt: skip
ML1M_AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)
"""users.dat age codes: a code is the lowest age of its group (1 = under 18, 56 = 56+)."""

Layout = Literal["csv", "dat", "ml-100k"]
LAYOUT_FILES: dict[str, tuple[str, ...]] = {
    "csv": ("ratings.csv", "movies.csv", "links.csv", "tags.csv"),
    "dat": ("ratings.dat", "movies.dat", "users.dat"),
    "ml-100k": ("u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info"),
}


def write_release(data: SyntheticData, folder: str | Path, layout: Layout = "csv") -> Path:
    """Write ``data`` (ratings, items, users, tags tables) into ``folder`` (created; files of the
    layout overwritten) as a MovieLens release of ``layout``; returns the folder.

    ``ml-100k`` needs whole stars (ValueError otherwise); ``csv`` leaves out the user table and
    ``dat`` / ``ml-100k`` the tags and links, as the real releases do. A ``README.txt`` says the
    data is synthetic. Deterministic: the same data gives the same bytes.
    """
    if layout not in LAYOUT_FILES:
        raise ValueError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUT_FILES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    {"csv": _write_csv, "dat": _write_dat, "ml-100k": _write_100k}[layout](data, folder)
    (folder / "README.txt").write_text(
        f"Synthetic MovieLens-shaped data ({data.name}, seed {data.seed}), written by movierec in "
        f"the '{layout}' layout: {data.ratings.height:,} ratings of {data.items.height:,} movies "
        f"by {data.users.height:,} users. Made-up ids, titles and ratings; not GroupLens data.\n"
    )
    return folder


def _genre_text(children: str) -> pl.Expr:
    g = pl.col("genres").list.eval(pl.element().replace({"Children's": children}))
    return pl.when(g.list.len() == 0).then(pl.lit(NO_GENRE)).otherwise(g.list.join("|"))


def _write_csv(data: SyntheticData, folder: Path) -> None:
    ids = {"user_id": "userId", "item_id": "movieId"}
    data.ratings.sort("user_id", "item_id").rename(ids).write_csv(folder / "ratings.csv")
    items = data.items.rename({"item_id": "movieId"})
    items.select("movieId", "title", _genre_text("Children").alias("genres")).write_csv(
        folder / "movies.csv"
    )
    items.select(
        "movieId",
        pl.col("imdb_id").cast(pl.String).str.zfill(7).alias("imdbId"),
        pl.col("tmdb_id").alias("tmdbId"),
    ).write_csv(folder / "links.csv")
    data.tags.sort("user_id", "item_id", "timestamp").rename(ids).write_csv(folder / "tags.csv")


def _write_lines(lines: pl.DataFrame, path: Path, encoding: str = "utf-8") -> None:
    """One pre-joined string column, one line each, no quoting (``::`` files, u.item)."""
    if encoding == "utf-8":
        lines.write_csv(path, include_header=False, quote_style="never")
    else:
        path.write_bytes(
            lines.write_csv(include_header=False, quote_style="never").encode(encoding)
        )


def _stars_text() -> pl.Expr:
    r = pl.col("rating")
    return pl.when(r % 1 == 0).then(r.cast(pl.Int32).cast(pl.String)).otherwise(r.cast(pl.String))


def _write_dat(data: SyntheticData, folder: Path) -> None:
    def joined(*cols: pl.Expr | str) -> pl.Expr:
        return pl.concat_str([pl.col(c) if isinstance(c, str) else c for c in cols], separator="::")

    _write_lines(
        data.ratings.select(joined("user_id", "item_id", _stars_text(), "timestamp")),
        folder / "ratings.dat",
    )
    movies = data.items.select(joined("item_id", "title", _genre_text("Children's")))
    _write_lines(movies, folder / "movies.dat", "latin-1")
    age = np.asarray(ML1M_AGE_GROUPS)[
        np.searchsorted(ML1M_AGE_GROUPS[1:], data.users["age"].to_numpy(), side="right")
    ]
    users = data.users.with_columns(
        pl.Series("age_group", age),
        pl.col("occupation").replace_strict(ML1M_OCCUPATION_CODE, return_dtype=pl.Int32),
    )
    _write_lines(
        users.select(joined("user_id", "gender", "age_group", "occupation", "zip")),
        folder / "users.dat",
        "latin-1",
    )


def _write_100k(data: SyntheticData, folder: Path) -> None:
    ratings = data.ratings
    if (ratings["rating"] % 1 != 0).any():
        raise ValueError(
            "the ml-100k layout holds whole stars only; generate with half_stars=False"
        )
    ratings = ratings.with_columns(pl.col("rating").cast(pl.Int32))
    tsv = {"separator": "\t", "include_header": False}
    rng = np.random.default_rng(data.seed)
    ratings[rng.permutation(ratings.height)].write_csv(folder / "u.data", **tsv)
    fold = rng.permutation(ratings.height) % 5  # the canonical 5-fold split, disjoint tests
    for k in range(5):
        test = pl.Series(fold == k)
        ratings.filter(~test).sort("user_id", "item_id").write_csv(folder / f"u{k + 1}.base", **tsv)
        ratings.filter(test).sort("user_id", "item_id").write_csv(folder / f"u{k + 1}.test", **tsv)

    title, year = pl.col("title"), pl.col("year").cast(pl.String)
    flags = [
        (pl.col("genres").list.len() == 0) if g == "unknown" else pl.col("genres").list.contains(g)
        for g in ML100K_GENRES
    ]
    item = data.items.select(
        pl.concat_str(
            [
                pl.col("item_id"),
                title,
                pl.when(year.is_null()).then(pl.lit("")).otherwise(pl.lit("01-Jan-") + year),
                pl.lit(""),
                pl.lit("http://us.imdb.com/M/title-exact?") + title.str.replace_all(" ", "%20"),
                *[f.cast(pl.Int8).cast(pl.String) for f in flags],
            ],
            separator="|",
        )
    )
    _write_lines(item, folder / "u.item", "latin-1")
    user = data.users.select(
        pl.concat_str(["user_id", "age", "gender", "occupation", "zip"], separator="|")
    )
    _write_lines(user, folder / "u.user", "latin-1")
    (folder / "u.genre").write_text(
        "".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n"
    )
    (folder / "u.occupation").write_text("".join(f"{o}\n" for o in OCCUPATIONS))
    (folder / "u.info").write_text(
        f"{data.users.height} users\n{data.items.height} items\n{ratings.height} ratings\n"
    )
