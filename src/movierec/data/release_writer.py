"""Write rating, movie and user tables as a MovieLens release folder, in the real file formats.

Used for synthetic data (:mod:`movierec.data.synthetic`): the files look like GroupLens' own, so
they exercise the same readers as a real download. Names, separators, encodings and column orders
come from :mod:`movierec.data.formats`, the readers' definition. Three layouts:

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

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from movierec.data.formats import (
    CSV_CHILDREN,
    LAYOUTS,
    ML1M_AGE_GROUPS,
    ML100K_GENRES,
    ML100K_OCCUPATIONS,
    NO_GENRE,
    FileFormat,
    Layout,
)
from movierec.data.provenance import write_synthetic_marker

if TYPE_CHECKING:
    from movierec.data.synthetic import SyntheticData

# ML-1M users.dat codes: the closest ML-1M occupation to each ML-100K one.
ML1M_OCCUPATION_CODE = dict(
    zip(ML100K_OCCUPATIONS,
        [3, 2, 6, 1, 17, 0, 7, 6, 9, 11, 1, 14, 19, 0, 12, 13, 14, 15, 4, 17, 20], strict=True)
)  # fmt: skip


def write_release(data: SyntheticData, folder: str | Path, layout: Layout = "csv",
                  progress: Callable[[str, float], None] | None = None) -> Path:
    """Write ``data`` (ratings, items, users, tags tables) into ``folder`` (created; files of the
    layout overwritten) as a MovieLens release of ``layout``; returns the folder.

    ``ml-100k`` needs whole stars (ValueError otherwise); ``csv`` leaves out the user table and
    ``dat`` / ``ml-100k`` the tags and links, as the real releases do. A ``README.txt`` says the
    data is synthetic, and :data:`~movierec.data.provenance.SYNTHETIC_FILE` (preset, seed,
    shape) makes the loader name the dataset ``"<folder> (synthetic, seed N)"``. Deterministic:
    the same data gives the same bytes. ``progress(stage, fraction)`` is told when writing
    starts (0) and ends (1).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress(f"writing the {layout} files", 0.0)
    {"csv": _write_csv, "dat": _write_dat, "ml-100k": _write_100k}[layout](data, folder)
    (folder / "README.txt").write_text(
        f"Synthetic MovieLens-shaped data ({data.name}, seed {data.seed}), written by movierec in "
        f"the '{layout}' layout: {data.ratings.height:,} ratings of {data.items.height:,} movies "
        f"by {data.users.height:,} users. Made-up ids, titles and ratings; not GroupLens data.\n"
    )
    write_synthetic_marker(folder, {
        "name": data.name, "preset": data.preset, "seed": data.seed, "layout": layout,
        "n_users": data.users.height, "n_items": data.items.height,
        "n_ratings": data.ratings.height,
    })
    if progress is not None:
        progress("written", 1.0)
    return folder


def _genre_text(children: str) -> pl.Expr:
    g = pl.col("genres").list.eval(pl.element().replace({"Children's": children}))
    return pl.when(g.list.len() == 0).then(pl.lit(NO_GENRE)).otherwise(g.list.join("|"))


def _write_csv_file(frame: pl.DataFrame, fmt: FileFormat | None, folder: Path) -> None:
    """``frame`` (movierec's column names) as ``fmt``: its columns, header, quoting as needed."""
    assert fmt is not None and fmt.header is not None
    renamed = frame.select(fmt.columns).rename(dict(zip(fmt.columns, fmt.header, strict=True)))
    renamed.write_csv(folder / fmt.name)


def _write_separated(frame: pl.DataFrame, fmt: FileFormat | None, folder: Path,
                     extra: tuple[str, ...] = (), name: str | None = None) -> None:
    """``frame`` as the header-less file ``fmt`` (then the ``extra`` columns): fields joined
    with its separator, no quoting, in its encoding."""
    assert fmt is not None
    cols = [pl.col(c).cast(pl.String) for c in (*fmt.columns, *extra)]
    text = frame.select(pl.concat_str(cols, separator=fmt.separator)).write_csv(
        include_header=False, quote_style="never")
    (folder / (name or fmt.name)).write_bytes(text.encode(fmt.encoding))


def _stars_text() -> pl.Expr:
    r = pl.col("rating")
    return pl.when(r % 1 == 0).then(r.cast(pl.Int32).cast(pl.String)).otherwise(r.cast(pl.String))


def _write_csv(data: SyntheticData, folder: Path) -> None:
    files = LAYOUTS["csv"]
    _write_csv_file(data.ratings.sort("user_id", "item_id"), files.ratings, folder)
    items = data.items.with_columns(_genre_text(CSV_CHILDREN).alias("genres"))
    _write_csv_file(items, files.movies, folder)
    links = items.with_columns(pl.col("imdb_id").cast(pl.String).str.zfill(7))
    _write_csv_file(links, files.links, folder)
    _write_csv_file(data.tags.sort("user_id", "item_id", "timestamp"), files.tags, folder)


def _write_dat(data: SyntheticData, folder: Path) -> None:
    files = LAYOUTS["dat"]
    _write_separated(data.ratings.with_columns(_stars_text().alias("rating")), files.ratings,
                     folder)
    _write_separated(data.items.with_columns(_genre_text("Children's").alias("genres")),
                     files.movies, folder)
    age = np.asarray(ML1M_AGE_GROUPS)[
        np.searchsorted(ML1M_AGE_GROUPS[1:], data.users["age"].to_numpy(), side="right")
    ]
    users = data.users.with_columns(
        pl.Series("age", age),
        pl.col("occupation").replace_strict(ML1M_OCCUPATION_CODE, return_dtype=pl.Int32)
        .alias("occupation_code"),
    )
    _write_separated(users, files.users, folder)


def _write_100k(data: SyntheticData, folder: Path) -> None:
    files = LAYOUTS["ml-100k"]
    ratings = data.ratings
    if (ratings["rating"] % 1 != 0).any():
        raise ValueError(
            "the ml-100k layout holds whole stars only; generate with half_stars=False"
        )
    ratings = ratings.with_columns(pl.col("rating").cast(pl.Int32))
    rng = np.random.default_rng(data.seed)
    _write_separated(ratings[rng.permutation(ratings.height)], files.ratings, folder)
    fold = rng.permutation(ratings.height) % 5  # the canonical 5-fold split, disjoint tests
    for k in range(5):  # laid out like u.data
        test = pl.Series(fold == k)
        for part, rows in ((f"u{k + 1}.base", ~test), (f"u{k + 1}.test", test)):
            _write_separated(ratings.filter(rows).sort("user_id", "item_id"), files.ratings,
                             folder, name=part)

    title, year = pl.col("title"), pl.col("year").cast(pl.String)
    flags = [
        (pl.col("genres").list.len() == 0) if g == "unknown" else pl.col("genres").list.contains(g)
        for g in ML100K_GENRES
    ]
    items = data.items.select(
        "item_id", "title",
        pl.when(year.is_null()).then(pl.lit("")).otherwise(pl.lit("01-Jan-") + year)
        .alias("release_date"),
        pl.lit("").alias("video_date"),
        (pl.lit("http://us.imdb.com/M/title-exact?") + title.str.replace_all(" ", "%20"))
        .alias("imdb_url"),
        *[f.cast(pl.Int8).alias(g) for f, g in zip(flags, ML100K_GENRES, strict=True)],
    )
    _write_separated(items, files.movies, folder, extra=ML100K_GENRES)
    _write_separated(data.users, files.users, folder)
    genre_list = pl.DataFrame({"genre": ML100K_GENRES, "index": range(len(ML100K_GENRES))})
    _write_separated(genre_list, files.genre_list, folder)
    with open(folder / "u.genre", "a", encoding="latin-1") as f:
        f.write("\n")  # the real u.genre ends with a blank line
    (folder / "u.occupation").write_text("".join(f"{o}\n" for o in ML100K_OCCUPATIONS))
    (folder / "u.info").write_text(
        f"{data.users.height} users\n{data.items.height} items\n{ratings.height} ratings\n"
    )
