"""The title-year rule, on titles as they stand in the real MovieLens files."""

from __future__ import annotations

import csv

import polars as pl
import pytest

from movierec.data.titles import split_title_year, strip_title_year, title_year

# (title as published, title without its year, year); every one is copied from a real file
REAL_TITLES = [
    ("Toy Story (1995)", "Toy Story", 1995),  # every release
    ("American President, The (1995)", "American President, The", 1995),
    ("Two Friends (1986) ", "Two Friends", 1986),  # ml-100k u.item: a blank after the year
    ("From Dusk Till Dawn 2: Texas Blood Money (1999) ",
     "From Dusk Till Dawn 2: Texas Blood Money", 1999),  # ml-latest-small
    ("Land Before Time III: The Time of the Great Giving (1995) (V)",
     "Land Before Time III: The Time of the Great Giving", 1995),  # ml-100k: a video release
    ("Death Note: Desu nôto (2006–2007)", "Death Note: Desu nôto", 2006),  # en dash, a run
    ("Assembly (Ji jie hao) (2007) ", "Assembly (Ji jie hao)", 2007),  # other parentheses stay
    ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
    ("Babylon 5", "Babylon 5", None),  # ml-latest-small: no year
    ("unknown", "unknown", None),  # ml-100k's movie 267
]


@pytest.mark.parametrize(("title", "base", "year"), REAL_TITLES)
def test_one_title(title, base, year):
    assert split_title_year(title) == (base, year)


def test_vectorised_forms_agree_with_the_one_title_form():
    titles = pl.Series("title", [t for t, _, _ in REAL_TITLES] + ["Babylon 5 (1994 - 1998)"])
    frame = titles.to_frame().select(title_year(pl.col("title")).alias("year"),
                                     strip_title_year(pl.col("title")).alias("base"))
    assert frame["year"].dtype == pl.Int32
    assert frame["year"].to_list() == [y for _, _, y in REAL_TITLES] + [1994]
    assert frame["base"].to_list() == [b for _, b, _ in REAL_TITLES] + ["Babylon 5"]
    assert strip_title_year(titles).to_list() == frame["base"].to_list()  # a Series works too


def _real_titles(real_data_dir) -> list[str]:
    titles = []
    with open(real_data_dir / "ml-latest-small" / "movies.csv", encoding="utf-8") as f:
        titles += [row["title"] for row in csv.DictReader(f)]
    for name, sep in [("ml-100k/u.item", "|"), ("ml-1m-metadata/movies.dat", "::")]:
        with open(real_data_dir / name, encoding="latin-1") as f:
            titles += [line.split(sep)[1] for line in f if line.strip()]
    return titles


@pytest.mark.real_data
def test_every_real_title_with_a_year_in_parentheses_yields_it(real_data_dir):
    titles = _real_titles(real_data_dir)
    assert len(titles) == 9_742 + 1_682 + 3_883
    parsed = [split_title_year(t) for t in titles]
    missing = [t for t, (_, y) in zip(titles, parsed, strict=True) if y is None]
    # the titles without a year, every one of them: nothing with a year slips through
    assert all("(1" not in t and "(2" not in t for t in missing), missing
    assert len(missing) == 13
    vectorised = pl.DataFrame({"t": titles}).select(title_year(pl.col("t")))
    assert vectorised["t"].to_list() == [y for _, y in parsed]
