"""load_dataset: registry names and folders, and the Parquet cache of parsed datasets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.data import loading
from movierec.data.readers import read_folder
from movierec.errors import DatasetNotFoundError, UnknownDatasetError


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache folder for this test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MOVIEREC_CACHE", str(folder))
    return folder


@pytest.fixture()
def ml100k_copy(ml100k_dir, tmp_path) -> Path:
    """A writable copy of the ML-100K files the reader uses."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.item", "u.user", "u.genre"):
        shutil.copy(ml100k_dir / name, folder / name)
    return folder


def _no_parsing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("parsed the files instead of reading the cache")

    monkeypatch.setattr(loading, "read_folder", fail)


def _same(a, b) -> None:
    assert a.fingerprint == b.fingerprint and a.name == b.name
    assert a.items.equals(b.items)
    assert (a.users is None and b.users is None) or a.users.equals(b.users)


def test_registry_name_reads_the_folder_under_data_dir(real_data_dir, ml100k_dir, cache):
    ds = loading.load_dataset("ml-100k", data_dir=real_data_dir, download=False)
    assert ds.name == "ml-100k" and ds.n_ratings == 100_000
    _same(ds, read_folder(ml100k_dir))


def test_folder_path_is_named_after_the_folder(ml_latest_small_dir, cache):
    ds = loading.load_dataset(ml_latest_small_dir)
    assert ds.name == "ml-latest-small" and ds.n_users == 610
    assert loading.load_dataset(str(ml_latest_small_dir)).fingerprint == ds.fingerprint


def test_unknown_name_and_missing_release(tmp_path, cache):
    with pytest.raises(UnknownDatasetError, match="neither a known dataset"):
        loading.load_dataset("ml-7m")
    with pytest.raises(DatasetNotFoundError):
        loading.load_dataset("ml-1m", data_dir=tmp_path, download=False)


def test_second_load_comes_from_the_cache(ml100k_copy, cache, monkeypatch):
    first = loading.load_dataset(ml100k_copy)
    entries = list(cache.iterdir())
    assert [e.name.startswith("ml-100k-") for e in entries] == [True]
    _no_parsing(monkeypatch)
    second = loading.load_dataset(ml100k_copy)
    _same(first, second)
    assert second.users is not None and second.rating.dtype == first.rating.dtype


def test_changed_source_file_is_parsed_again(ml100k_copy, cache):
    first = loading.load_dataset(ml100k_copy)
    lines = (ml100k_copy / "u.data").read_text().splitlines(keepends=True)
    (ml100k_copy / "u.data").write_text("".join(lines[:-10]))
    second = loading.load_dataset(ml100k_copy)
    assert second.n_ratings == first.n_ratings - 10
    assert second.fingerprint != first.fingerprint
    assert len(list(cache.iterdir())) == 2


def test_touched_movie_file_invalidates(ml100k_copy, cache):
    loading.load_dataset(ml100k_copy)
    before = loading.cache_path(ml100k_copy, "ml-100k")
    st = (ml100k_copy / "u.item").stat()
    os.utime(ml100k_copy / "u.item", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert loading.cache_path(ml100k_copy, "ml-100k") != before


def test_corrupt_cache_is_reparsed_and_rewritten(ml100k_copy, cache, monkeypatch):
    first = loading.load_dataset(ml100k_copy)
    (entry,) = cache.iterdir()
    (entry / "ratings.parquet").write_bytes(b"not parquet at all")
    again = loading.load_dataset(ml100k_copy)
    _same(first, again)
    _no_parsing(monkeypatch)  # the rewritten cache is good again
    _same(first, loading.load_dataset(ml100k_copy))
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary folders left


def test_cache_with_inconsistent_content_is_ignored(ml100k_copy, cache):
    first = loading.load_dataset(ml100k_copy)
    (entry,) = cache.iterdir()
    (entry / "user_ids.parquet").unlink()
    shutil.copy(entry / "items.parquet", entry / "user_ids.parquet")  # wrong table
    _same(first, loading.load_dataset(ml100k_copy))


def test_use_cache_false_writes_nothing(ml100k_copy, cache):
    ds = loading.load_dataset(ml100k_copy, use_cache=False)
    assert ds.n_ratings == 100_000
    assert not cache.exists() or not any(cache.iterdir())


def test_unwritable_cache_is_not_fatal(ml100k_copy, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be created below a file")
    monkeypatch.setenv("MOVIEREC_CACHE", str(blocker / "cache"))
    assert loading.load_dataset(ml100k_copy).n_ratings == 100_000


def test_cache_keeps_tags_links_and_genome(tmp_path, cache, monkeypatch):
    folder = tmp_path / "tiny"
    folder.mkdir()
    files = {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.5,10\n2,2,3.0,11\n",
        "movies.csv": 'movieId,title,genres\n1,"A, The (1990)",Drama\n2,B (1991),Comedy\n',
        "tags.csv": "userId,movieId,tag,timestamp\n1,1,Dark,5\n2,1,dark,6\n",
        "links.csv": "movieId,imdbId,tmdbId\n1,0000001,\n2,0000002,22\n",
        "genome-tags.csv": "tagId,tag\n1,dark\n",
        "genome-scores.csv": "movieId,tagId,relevance\n1,1,0.5\n2,1,0.25\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    first = loading.load_dataset(folder)
    _no_parsing(monkeypatch)
    second = loading.load_dataset(folder)
    _same(first, second)
    assert second.items.get_column("tags").to_list() == [["Dark"], []]
    assert second.items.get_column("tmdb_id").to_list() == [None, 22]
    assert second.genome.tags == ["dark"]
    assert second.genome.relevance.tolist() == first.genome.relevance.tolist() == [[0.5], [0.25]]


# ---------------------------------------------------------------------- checksums, panics, disks
def _flip(path: Path, offset: int, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    for k in range(offset, min(offset + n, len(data))):
        data[k] ^= 0xA5
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["ratings.parquet", "items.parquet", "user_ids.parquet",
                                  "users.parquet", "dataset.json", "SHA256SUMS"])
def test_flipped_bytes_in_the_cache_are_caught_and_reparsed(ml100k_copy, cache, name, caplog):
    """Issue 14: 8 flipped bytes in ratings.parquet gave silently different data at 28 of 61
    offsets; in items.parquet a PanicException on every later run."""
    first = loading.load_dataset(ml100k_copy)
    (entry,) = cache.iterdir()
    for offset in np.random.default_rng(len(name)).integers(0, (entry / name).stat().st_size, 4):
        _flip(entry / name, int(offset))
        caplog.clear()
        again = loading.load_dataset(ml100k_copy)
        _same(first, again)
        assert np.array_equal(first.rating, again.rating)
        assert np.array_equal(first.timestamp, again.timestamp)
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "\n" not in warnings[0] and str(entry) in warnings[0]
    assert [p.name for p in cache.iterdir()] == [entry.name]


def test_a_reader_panic_in_the_cache_is_a_warning_not_a_crash(ml100k_copy, cache, monkeypatch,
                                                              caplog):
    first = loading.load_dataset(ml100k_copy)

    def panic(folder):
        raise pl.exceptions.PanicException("assertion failed: offset <= len")

    monkeypatch.setattr(loading.Dataset, "load", panic)
    _same(first, loading.load_dataset(ml100k_copy))
    assert "assertion failed" in caplog.text


def test_a_full_disk_skips_the_cache_with_one_warning(ml100k_copy, cache, monkeypatch, caplog):
    def full(self, folder):
        (Path(folder) / "ratings.parquet").write_bytes(b"half")
        raise pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device "
                                         "(os error 28)")

    monkeypatch.setattr(loading.Dataset, "save", full)
    ds = loading.load_dataset(ml100k_copy)
    assert ds.n_ratings == 100_000
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no space left on device" in warnings[0]
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing half-written


def test_data_dir_that_is_a_file_is_one_clear_error(tmp_path):
    afile = tmp_path / "ratings.csv"
    afile.write_text("x")
    with pytest.raises(DatasetNotFoundError, match="--data-dir .*: is a file"):
        loading.load_dataset("ml-100k", data_dir=afile)
    with pytest.raises(DatasetNotFoundError, match="is a file; give a release name"):
        loading.load_dataset(afile)


def test_a_large_release_says_when_its_parse_starts_and_ends(ml100k_copy, tmp_path, monkeypatch,
                                                          capsys):
    """ML-32M parses for ~18 s in one polars call: a large release gets a line when parsing
    (and caching) starts and when it ends with the time; a small one stays silent."""
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "cache1"))
    loading.load_dataset(ml100k_copy)
    assert "parsing" not in capsys.readouterr().err
    monkeypatch.setattr(loading, "LARGE_INPUT_BYTES", 1)
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "cache2"))
    loading.load_dataset(ml100k_copy)
    err = capsys.readouterr().err.splitlines()
    assert any(x.startswith("parsing ml-100k (") and "MB of files" in x for x in err)
    assert any(x.startswith("parsing ml-100k: done in ") for x in err)
    assert any(x.startswith("caching ml-100k: done in ") for x in err)
