"""Every MovieLens release movierec knows: where it lives, how it is laid out, how to check it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from movierec.errors import UnknownDatasetError

Layout = Literal["ml-100k", "dat", "csv"]
"""On-disk format family:

- ``ml-100k``: ``u.data`` (tab), ``u.item`` (pipe, latin-1, 19 genre flags), ``u.user``.
- ``dat``: ML-1M / ML-10M, ``::``-separated latin-1 ``ratings.dat``, ``movies.dat``
  (``users.dat`` in 1M, ``tags.dat`` in 10M).
- ``csv``: ML-20M / 25M / 32M / latest(-small): ``ratings.csv``, ``movies.csv``, ``tags.csv``,
  ``links.csv`` and, where present, ``genome-scores.csv`` / ``genome-tags.csv``.
"""

GROUPLENS = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Release:
    """One MovieLens release.

    ``md5`` is the pinned checksum of the zip for fixed releases; ``None`` for the ``latest``
    releases that GroupLens rebuilds, which are checked against the ``.md5`` file published beside
    the zip (``md5_url``).
    """

    name: str
    url: str
    folder: str  # the folder the zip extracts to
    layout: Layout
    ratings_file: str  # the file whose presence marks a usable folder
    md5: str | None
    size_mb: float  # size of the zip, for the user's information
    n_ratings: int  # approximate, for the user's information
    n_users: int
    n_movies: int
    rating_scale: str
    description: str

    @property
    def md5_url(self) -> str:
        return self.url + ".md5"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


RELEASES: dict[str, Release] = {
    r.name: r
    for r in [
        Release(
            "ml-100k", f"{GROUPLENS}/ml-100k.zip", "ml-100k", "ml-100k", "u.data",
            "0e33842e24a9c977be4e0107933c0723", 4.7, 100_000, 943, 1_682, "1-5 whole stars",
            "MovieLens 100K (1998): demographics, canonical 5-fold and ua/ub splits.",
        ),
        Release(
            "ml-1m", f"{GROUPLENS}/ml-1m.zip", "ml-1m", "dat", "ratings.dat",
            "c4d9eecfca2ab87c1945afe126590906", 5.9, 1_000_209, 6_040, 3_706, "1-5 whole stars",
            "MovieLens 1M (2003): demographics (age, gender, occupation, zip).",
        ),
        Release(
            "ml-10m", f"{GROUPLENS}/ml-10m.zip", "ml-10M100K", "dat", "ratings.dat",
            "ce571fd55effeba0271552578f2648bd", 63.0, 10_000_054, 69_878, 10_677,
            "0.5-5 half stars", "MovieLens 10M (2009): half-star ratings and free-text tags.",
        ),
        Release(
            "ml-20m", f"{GROUPLENS}/ml-20m.zip", "ml-20m", "csv", "ratings.csv",
            "cd245b17a1ae2cc31bb14903e1204af3", 190.0, 20_000_263, 138_493, 27_278,
            "0.5-5 half stars", "MovieLens 20M (2015): tags, links and the tag genome.",
        ),
        Release(
            "ml-25m", f"{GROUPLENS}/ml-25m.zip", "ml-25m", "csv", "ratings.csv",
            "6b51fb2759a8657d3bfcbfc42b592ada", 250.0, 25_000_095, 162_541, 62_423,
            "0.5-5 half stars", "MovieLens 25M (2019): tags, links and the tag genome.",
        ),
        Release(
            "ml-32m", f"{GROUPLENS}/ml-32m.zip", "ml-32m", "csv", "ratings.csv",
            None, 239.0, 32_000_204, 200_948, 87_585, "0.5-5 half stars",
            "MovieLens 32M (2023): tags and links; checked against the published .md5 file.",
        ),
        Release(
            "ml-latest-small", f"{GROUPLENS}/ml-latest-small.zip", "ml-latest-small", "csv",
            "ratings.csv", None, 1.0, 100_836, 610, 9_742, "0.5-5 half stars",
            "MovieLens latest, small (rebuilt over time): for education and development.",
        ),
        Release(
            "ml-latest", f"{GROUPLENS}/ml-latest.zip", "ml-latest", "csv", "ratings.csv",
            None, 335.0, 33_832_162, 330_975, 86_537, "0.5-5 half stars",
            "MovieLens latest, full (rebuilt over time): tags, links and the tag genome.",
        ),
    ]
}


def get_release(name: str) -> Release:
    """The release called ``name``; an unknown name raises an error listing the known ones."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {known}") from None
