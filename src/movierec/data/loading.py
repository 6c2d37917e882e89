"""Load a MovieLens release by name or folder, through a Parquet cache of the parsed Dataset.

The cache lives in :func:`movierec.data.download.cache_dir` (``$MOVIEREC_CACHE``, default
``$MOVIEREC_DATA/parsed``), one folder per parse: ``<name>-<key>``, where the key hashes the
resolved paths, sizes and modification times of the source files and the reader version. Editing,
replacing or touching a source file therefore makes a new parse; stale folders are left in place
(delete the cache folder to reclaim the space). A cache folder is built in a temporary folder
and swapped into place (:func:`movierec.files.swap_folder`), so a crash never leaves half of one.
Its ``SHA256SUMS`` records every file's checksum; a file whose bytes changed, that a reader cannot
parse (polars' panics included) or a cache that cannot be written (full disk, read-only folder,
another process writing it) costs one warning and a parse of the source files, never the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from movierec import checksums, files
from movierec.data.dataset import Dataset
from movierec.data.provenance import display_name
from movierec.data.readers import detect_layout, read_folder, source_files
from movierec.data.registry import RELEASES, Layout, get_release
from movierec.errors import CorruptFileError, DatasetNotFoundError, UnknownDatasetError

log = logging.getLogger(__name__)

READER_VERSION = 2
"""Bumped whenever the readers' output changes, so older caches are not reused."""


def load_dataset(
    name_or_folder: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    use_cache: bool = True,
) -> Dataset:
    """The parsed :class:`Dataset` of a release name (``"ml-100k"``) or a release folder.

    A registry name is located with :func:`movierec.data.download.ensure_dataset`: an existing
    ``<data_dir>/<release folder>`` is used as-is, else the release is downloaded when
    ``download`` is true. Any other argument must be an existing folder laid out like a release;
    the dataset is then named after the folder. A folder written by ``movierec datasets
    synthesize`` is named so: ``"ml-1m (synthetic, seed 0)"``. With ``use_cache``, a previous
    parse of the same unchanged files is read back from the cache instead of parsing again.

    Raises :class:`UnknownDatasetError` for a string that is neither a known name nor a folder,
    :class:`DatasetNotFoundError` when the files are missing, :class:`DataFormatError` for a
    malformed file.
    """
    folder, name, layout = _resolve(name_or_folder, data_dir, download)
    name = display_name(name, folder)  # "ml-1m (synthetic, seed 0)" for a synthetic release
    if not use_cache:
        return read_folder(folder, layout, name)
    target = cache_path(folder, name, layout)
    cached = _read_cache(target, name)
    if cached is not None:
        return cached
    with _said(f"parsing {name}", folder):
        dataset = read_folder(folder, layout, name)
    with _said(f"caching {name}", folder):
        _write_cache(dataset, target)
    return dataset


LARGE_INPUT_BYTES = 64 << 20
"""Source files at least this large (ML-10M and up: parsing takes seconds) get stage lines."""


@contextlib.contextmanager
def _said(what: str, folder: Path) -> Iterator[None]:
    """A line on stderr when a step on a large release starts and when it ends, with its time;
    one polars call cannot say how far it is, so this is the parse's progress (ML-32M: ~18 s).
    Silent for small releases."""
    try:
        size = sum(f.stat().st_size for f in source_files(folder))
    except Exception:  # the reader will say what is wrong with the folder
        size = 0
    if size < LARGE_INPUT_BYTES:
        yield
        return
    started = time.monotonic()
    print(f"{what} ({size / 2**20:,.0f} MB of files)...", file=sys.stderr, flush=True)
    yield
    print(f"{what}: done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def cache_path(folder: str | os.PathLike, name: str, layout: Layout | None = None) -> Path:
    """The cache folder for parsing ``folder`` as ``name``, given its files as they are now."""
    folder = Path(folder)
    files = source_files(folder, layout)
    parts = [READER_VERSION, name, layout or detect_layout(folder)]
    for f in files:
        st = f.stat()
        parts.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"
    return _cache_root() / f"{safe}-{key}"


# ---------------------------------------------------------------------- internals
def _resolve(name_or_folder, data_dir, download: bool) -> tuple[Path, str, Layout | None]:
    if isinstance(name_or_folder, str) and name_or_folder in RELEASES:
        from movierec.data.download import ensure_dataset

        release = get_release(name_or_folder)
        return ensure_dataset(release.name, data_dir, download=download), release.name, None
    folder = Path(name_or_folder).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        return folder, folder.name, None
    if folder.exists():
        raise DatasetNotFoundError(
            f"{folder}: is a file; give a release name ({', '.join(RELEASES)}) or the folder "
            "holding the release's files"
        )
    known = ", ".join(RELEASES)
    raise UnknownDatasetError(
        f"{str(name_or_folder)!r} is neither a known dataset ({known}) nor an existing folder"
    )


def _cache_root() -> Path:
    try:
        from movierec.data.download import cache_dir
    except ImportError:  # pragma: no cover - download.py is part of the package
        value = os.environ.get("MOVIEREC_CACHE")
        return Path(value) if value else Path.home() / ".cache" / "movierec" / "parsed"
    return cache_dir()


def input_files(name_or_folder: str | os.PathLike, data_dir: str | os.PathLike | None = None
                ) -> list[Path]:
    """The source files :func:`load_dataset` would read (and their folder, first), without
    reading or downloading anything; empty when the release is not on disk. For refusing an
    output path that is an input."""
    from movierec.data.download import find_local

    if isinstance(name_or_folder, str) and name_or_folder in RELEASES:
        folder = find_local(name_or_folder, data_dir)
    else:
        folder = Path(name_or_folder).expanduser()
    if folder is None or not folder.is_dir():
        return []
    try:
        return [folder, *source_files(folder)]
    except Exception:  # not a release folder: load_dataset will say so
        return [folder]


def _read_cache(target: Path, name: str) -> Dataset | None:
    if not (target / "dataset.json").is_file():
        return None
    try:
        names = sorted(p.name for p in target.iterdir()
                       if p.is_file() and p.name not in (checksums.MANIFEST, files.MARKER))
        checksums.verify_manifest(target, names)  # every file, checked before any parser sees it
        dataset = Dataset.load(target)
        _check_consistent(dataset, name)
    except CorruptFileError as e:
        log.warning("dataset cache %s; parsing the source files again", e)
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # a cache is disposable (polars' PanicException is no Exception)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        log.warning("ignoring unreadable dataset cache %s (%s); parsing the files again",
                    target, first)
        return None
    return dataset


def _check_consistent(ds: Dataset, name: str) -> None:
    n = ds.n_ratings
    if ds.name != name:
        raise ValueError(f"cache holds {ds.name!r}, not {name!r}")
    if not (len(ds.user_idx) == len(ds.item_idx) == len(ds.timestamp) == n):
        raise ValueError("rating columns differ in length")
    if ds.items.height != ds.n_items or (ds.users is not None and ds.users.height != ds.n_users):
        raise ValueError("tables do not match the id maps")
    if n and (ds.user_idx.min() < 0 or ds.user_idx.max() >= ds.n_users
              or ds.item_idx.min() < 0 or ds.item_idx.max() >= ds.n_items):
        raise ValueError("indices out of range")
    if ds.n_users and not np.all(np.diff(ds.user_ids) > 0):
        raise ValueError("user ids are not ascending")


def _write_cache(dataset: Dataset, target: Path) -> None:
    """Write ``dataset`` to ``target`` whole, with a ``SHA256SUMS`` of its files; a failure (full
    disk, no permission, another process writing it) is one warning, never raised."""

    def build(tmp: Path) -> None:
        dataset.save(tmp)
        checksums.write_manifest(tmp, sorted(p.name for p in tmp.iterdir()))

    try:
        files.swap_folder(target, build, what="this dataset cache")
    except OSError as e:
        log.warning("could not write the dataset cache (%s); continuing without it",
                    str(e) if isinstance(e, files.OutputError) else f"{target}: {e}")
    except Exception as e:  # polars reports a full disk as a ComputeError
        if not files.is_disk_full(e):
            raise
        log.warning("could not write the dataset cache (%s); continuing without it",
                    files.disk_full(target))
