"""The year at the end of a MovieLens title: one rule for the readers, search, descriptions and
the web page.

MovieLens writes a movie's year in parentheses after its title, but not always the same way
(every case below is in the real files):

- ``"Toy Story (1995)"``; with a blank after it: ``"Two Friends (1986) "``;
- a series' run, with a hyphen or an en dash: ``"Death Note: Desu nôto (2006–2007)"``, the first
  year counting;
- a release-kind marker after it: ``"Land Before Time III: The Time of the Great Giving (1995)
  (V)"`` (``(V)`` video, ``(TV)``, ``(VG)`` as IMDb writes them);
- other parentheses before it, which stay in the title: ``"Assembly (Ji jie hao) (2007)"``,
  ``"(500) Days of Summer (2009)"``;
- no year at all: ``"Babylon 5"``, ``"unknown"``.

The pattern is written for both Python's ``re`` and polars' regex engine, so the vectorised
table code and the one-title functions cannot disagree.
"""

from __future__ import annotations

import re
from typing import TypeVar

import polars as pl

__all__ = ["TITLE_YEAR", "split_title_year", "strip_title_year", "title_year"]

TITLE_YEAR = r"\s*\(([0-9]{4})(?:\s*[-–]\s*[0-9]{0,4})?\)(?:\s*\((?:V|TV|VG)\))?\s*$"
"""The year suffix of a title; group 1 is the (first) year."""

_TITLE_YEAR = re.compile(TITLE_YEAR)

Text = TypeVar("Text", pl.Expr, pl.Series)


def split_title_year(title: str) -> tuple[str, int | None]:
    """``(title without its year suffix, year)``; the year is None when the title has none
    (the title is then returned as given)."""
    m = _TITLE_YEAR.search(title)
    if m is None:
        return title, None
    return title[: m.start()], int(m.group(1))


def title_year(titles: pl.Expr) -> pl.Expr:
    """The year of each title (``Int32``), null where a title has none."""
    return titles.str.extract(TITLE_YEAR, 1).cast(pl.Int32)


def strip_title_year(titles: Text) -> Text:
    """Each title without its year suffix (titles without one are left as they are)."""
    return titles.str.replace(TITLE_YEAR, "")
