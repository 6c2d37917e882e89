"""Every MovieLens release movierec knows: where it lives, how it is laid out, how to check it."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.data.formats import LAYOUTS, Layout
from movierec.errors import UnknownDatasetError

GROUPLENS = "https://files.grouplens.org/datasets/movielens"


WHOLE_STARS, HALF_STARS = "1-5 whole stars", "0.5-5 half stars"


@dataclass(frozen=True)
class Release:
    """One MovieLens release, downloaded from ``<GROUPLENS>/<name>.zip``.

    ``md5`` is the pinned checksum of the zip for fixed releases; ``None`` for the ``latest``
    releases that GroupLens rebuilds, which are checked against the ``.md5`` file published beside
    the zip (``md5_url``). Sizes and counts are for the user's information.
    """

    name: str
    layout: Layout
    md5: str | None
    size_mb: float  # size of the zip
    n_ratings: int  # approximate for the rebuilt releases
    n_users: int
    n_movies: int
    rating_scale: str
    description: str
    zip_folder: str | None = None  # the folder the zip extracts to, when it is not ``name``

    @property
    def url(self) -> str:
        return f"{GROUPLENS}/{self.name}.zip"

    @property
    def folder(self) -> str:
        """The folder the zip extracts to."""
        return self.zip_folder or self.name

    @property
    def ratings_file(self) -> str:
        """The file whose presence marks a usable folder (its layout's ratings file)."""
        return LAYOUTS[self.layout].ratings.name

    @property
    def md5_url(self) -> str:
        return self.url + ".md5"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


RELEASES: dict[str, Release] = {
    r.name: r
    for r in [
        Release("ml-100k", "ml-100k", "0e33842e24a9c977be4e0107933c0723", 4.7, 100_000, 943,
                1_682, WHOLE_STARS,
                "MovieLens 100K (1998): demographics, canonical 5-fold and ua/ub splits."),
        Release("ml-1m", "dat", "c4d9eecfca2ab87c1945afe126590906", 5.9, 1_000_209, 6_040, 3_706,
                WHOLE_STARS, "MovieLens 1M (2003): demographics (age, gender, occupation, zip)."),
        Release("ml-10m", "dat", "ce571fd55effeba0271552578f2648bd", 63.0, 10_000_054, 69_878,
                10_677, HALF_STARS, "MovieLens 10M (2009): half-star ratings and free-text tags.",
                zip_folder="ml-10M100K"),
        Release("ml-20m", "csv", "cd245b17a1ae2cc31bb14903e1204af3", 190.0, 20_000_263, 138_493,
                27_278, HALF_STARS, "MovieLens 20M (2015): tags, links and the tag genome."),
        Release("ml-25m", "csv", "6b51fb2759a8657d3bfcbfc42b592ada", 250.0, 25_000_095, 162_541,
                62_423, HALF_STARS, "MovieLens 25M (2019): tags, links and the tag genome."),
        Release("ml-32m", "csv", None, 239.0, 32_000_204, 200_948, 87_585, HALF_STARS,
                "MovieLens 32M (2023): tags and links; checked against the published .md5 file."),
        Release("ml-latest-small", "csv", None, 1.0, 100_836, 610, 9_742, HALF_STARS,
                "MovieLens latest, small (rebuilt over time): for education and development."),
        Release("ml-latest", "csv", None, 335.0, 33_832_162, 330_975, 86_537, HALF_STARS,
                "MovieLens latest, full (rebuilt over time): tags, links and the tag genome."),
    ]
}


def get_release(name: str) -> Release:
    """The release called ``name``; an unknown name raises an error listing the known ones."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {known}") from None
