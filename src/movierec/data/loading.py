"""Load a MovieLens release by name or folder, through a Parquet cache of the parsed Dataset.

The cache lives in :func:`movierec.data.download.cache_dir` (``$MOVIEREC_CACHE``, default
``$MOVIEREC_DATA/parsed``), one folder per parse: ``<name>-<key>``, where the key hashes the
resolved paths, sizes and modification times of the source files and the reader version. Editing,
replacing or touching a source file therefore makes a new parse; stale folders are left in place
(delete the cache folder to reclaim the space). A cache folder is written to a temporary folder
and renamed into place, so a crash never leaves half of one; a cache that cannot be read is
ignored and rewritten, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.readers import detect_layout, read_folder, source_files
from movierec.data.registry import RELEASES, Layout, get_release
from movierec.errors import UnknownDatasetError

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
    the dataset is then named after the folder. With ``use_cache``, a previous parse of the same
    unchanged files is read back from the cache instead of parsing again.

    Raises :class:`UnknownDatasetError` for a string that is neither a known name nor a folder,
    :class:`DatasetNotFoundError` when the files are missing, :class:`DataFormatError` for a
    malformed file.
    """
    folder, name, layout = _resolve(name_or_folder, data_dir, download)
    if not use_cache:
        return read_folder(folder, layout, name)
    target = cache_path(folder, name, layout)
    cached = _read_cache(target, name)
    if cached is not None:
        return cached
    dataset = read_folder(folder, layout, name)
    _write_cache(dataset, target)
    return dataset


def cache_path(folder: str | os.PathLike, name: str, layout: Layout | None = None) -> Path:
    """The cache folder for parsing ``folder`` as ``name``, given its files as they are now."""
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


def _read_cache(target: Path, name: str) -> Dataset | None:
    if not (target / "dataset.json").is_file():
        return None
    try:
        dataset = Dataset.load(target)
        _check_consistent(dataset, name)
    except Exception as e:  # a cache is disposable: any failure means "parse again"
        log.warning("ignoring unreadable dataset cache %s (%s); parsing the files again", target, e)
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
    """Write ``dataset`` to ``target`` atomically; failures are logged, never raised."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        dataset.save(tmp)
        if target.exists():  # an unreadable earlier cache, or a concurrent writer's copy
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
            tmp = None
        except OSError:
            if not (target / "dataset.json").is_file():
                raise  # another process did not win the race: a real failure
    except OSError as e:
        log.warning("could not write the dataset cache %s (%s); continuing without it", target, e)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
