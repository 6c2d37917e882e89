"""The on-disk vocabulary matches the real files, and the registry takes its file names from it."""

from __future__ import annotations

import pytest

from movierec.data.formats import LAYOUTS, ML1M_OCCUPATIONS, ML100K_GENRES
from movierec.data.registry import RELEASES


def test_each_release_is_marked_by_its_layouts_ratings_file():
    for release in RELEASES.values():
        assert release.ratings_file == LAYOUTS[release.layout].ratings.name
        assert release.url.endswith(f"/{release.name}.zip")
    assert RELEASES["ml-10m"].folder == "ml-10M100K"  # the one zip named otherwise inside


def test_csv_files_name_every_column_in_their_header():
    for files in LAYOUTS.values():
        for fmt in (files.ratings, files.movies, files.users, files.tags, files.links,
                    files.genome_scores, files.genome_tags):
            if fmt is not None and fmt.header is not None:
                assert len(fmt.header) == len(fmt.columns) and fmt.separator == ","


def _first_line(path, encoding: str) -> str:
    with open(path, encoding=encoding) as f:
        return f.readline().rstrip("\n")


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("folder", "layout", "part", "extra"),
    [
        ("ml-100k", "ml-100k", "ratings", 0),
        ("ml-100k", "ml-100k", "movies", len(ML100K_GENRES)),  # then one flag per genre
        ("ml-100k", "ml-100k", "users", 0),
        ("ml-100k", "ml-100k", "genre_list", 0),
        ("ml-1m-metadata", "dat", "movies", 0),
        ("ml-1m-metadata", "dat", "users", 0),
        ("ml-latest-small", "csv", "ratings", 0),
        ("ml-latest-small", "csv", "movies", 0),
        ("ml-latest-small", "csv", "tags", 0),
        ("ml-latest-small", "csv", "links", 0),
    ],
)
def test_real_files_have_the_formats_fields(real_data_dir, folder, layout, part, extra):
    fmt = getattr(LAYOUTS[layout], part)
    line = _first_line(real_data_dir / folder / fmt.name, fmt.encoding)
    if fmt.header is not None:
        assert line == ",".join(fmt.header)
    else:
        assert len(line.split(fmt.separator)) == len(fmt.columns) + extra


@pytest.mark.real_data
def test_ml1m_occupation_codes_are_the_ones_its_readme_lists(real_data_dir):
    readme = (real_data_dir / "ml-1m-metadata" / "README").read_text(encoding="latin-1")
    for code, name in enumerate(ML1M_OCCUPATIONS):
        assert f'{code}:  "{name}"' in readme or f'{code}: "{name}"' in readme, (code, name)
