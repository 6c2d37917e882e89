"""Synthetic data written as MovieLens release folders: the real readers parse them back into the
same Dataset, and the files look like GroupLens' own (names, separators, encodings, vocabularies).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from movierec.data.formats import ML1M_AGE_GROUPS, ML1M_OCCUPATIONS
from movierec.data.readers import read_folder
from movierec.data.release_writer import ML1M_OCCUPATION_CODE, write_release


# ---------------------------------------------------------------------- release files
@pytest.mark.parametrize(
    ("layout", "half"), [("csv", False), ("dat", False), ("ml-100k", False), ("csv", True),
                         ("dat", True)],
)  # fmt: skip
def test_written_release_reads_back_as_the_same_dataset(tmp_path, small, small_half, layout, half):
    data = small_half if half else small
    ref = data.to_dataset()
    ds = read_folder(write_release(data, tmp_path / layout, layout))
    assert ds.fingerprint == ref.fingerprint  # ids, ratings and timestamps, bit for bit
    spelled = pl.col("genres").list.eval(pl.element().replace({"Children": "Children's"}))
    cols = ["item_id", "title", "year", "genres"]
    assert ds.items.select(*cols[:3], spelled).equals(ref.items.select(cols))
    if layout == "csv":
        assert ds.items["imdb_id"].equals(data.items["imdb_id"])
        assert ds.items["tmdb_id"].equals(data.items["tmdb_id"])
        tags = data.tags.group_by("item_id").agg(pl.col("tag").unique().sort())
        got = ds.items.select("item_id", pl.col("tags").list.sort()).filter(
            pl.col("tags").list.len() > 0
        )
        assert got.sort("item_id").equals(tags.sort("item_id").rename({"tag": "tags"}))
    else:
        assert ds.users is not None and ds.users["gender"].equals(data.users["gender"])
    if layout == "ml-100k":
        assert ds.users.select("age", "occupation", "zip").equals(
            data.users.select("age", "occupation", "zip")
        )
    if layout == "dat":
        age = np.searchsorted(ML1M_AGE_GROUPS[1:], data.users["age"].to_numpy(), side="right")
        assert np.array_equal(ds.users["age"].to_numpy(), np.asarray(ML1M_AGE_GROUPS)[age])
        jobs = [ML1M_OCCUPATIONS[ML1M_OCCUPATION_CODE[o]] for o in data.users["occupation"]]
        assert ds.users["occupation"].to_list() == jobs


def test_files_have_the_real_formats(tmp_path, small, ml100k_dir):
    write_release(small, tmp_path / "a", "ml-100k")
    write_release(small, tmp_path / "b", "dat")
    write_release(small, tmp_path / "c", "csv")
    for name in ("u.genre", "u.occupation"):  # fixed vocabularies, byte for byte
        assert (tmp_path / "a" / name).read_bytes() == (ml100k_dir / name).read_bytes()
    real_item = (ml100k_dir / "u.item").read_bytes().decode("latin-1").splitlines()
    ours = (tmp_path / "a" / "u.item").read_bytes().decode("latin-1").splitlines()
    assert {len(line.split("|")) for line in ours} == {len(real_item[0].split("|"))} == {24}
    assert len(ours) == small.items.height
    movies = (tmp_path / "b" / "movies.dat").read_bytes()
    assert "synthétique".encode("latin-1") in movies  # latin-1, like ML-1M
    header, first = (tmp_path / "c" / "ratings.csv").read_text().splitlines()[:2]
    assert header == "userId,movieId,rating,timestamp" and first.split(",")[2].endswith(".0")
    movies_csv = (tmp_path / "c" / "movies.csv").read_text()
    assert re.search(r'^\d+,"Synthetic Movie \d+, The \(\d{4}\)",', movies_csv, re.M)  # quoted


def test_writing_is_deterministic_and_refuses_half_stars_for_ml100k(tmp_path, small, small_half):
    a = write_release(small, tmp_path / "a", "ml-100k")
    b = write_release(small, tmp_path / "b", "ml-100k")
    for name in ("u.data", "u.item", "u1.test", "u5.base"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    tests = [pl.read_csv(a / f"u{k}.test", separator="\t", has_header=False) for k in range(1, 6)]
    assert sum(t.height for t in tests) == small.ratings.height  # five disjoint folds
    with pytest.raises(ValueError, match="whole stars"):
        write_release(small_half, tmp_path / "c", "ml-100k")
