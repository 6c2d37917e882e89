"""Fetch, verify and unpack MovieLens releases; find release folders that are already on disk.

Where things live:

- ``MOVIEREC_DATA`` (default ``~/.cache/movierec``): the folder where releases are looked up and
  downloaded to, one sub-folder per release (``ml-100k/``, ``ml-latest-small/`` ...). The CLI's
  ``--data-dir`` overrides it (the ``data_dir`` argument here).
- ``MOVIEREC_CACHE`` (default ``$MOVIEREC_DATA/parsed``): parsed Parquet caches.
- ``MOVIEREC_BASE_URL``: a mirror that replaces ``https://files.grouplens.org/datasets/movielens``
  for every release (same file names beneath it).

A download either leaves the complete, verified release folder in place or leaves nothing: the
zip goes to a temporary file and is unpacked into a temporary folder beside the destination, and
only a checked folder is swapped into place (:func:`movierec.files.replace_folder`). One process
downloads a release at a time (the others wait, then find it); the temporary files of a killed
download are removed by the next one. A full disk is reported as such, naming the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from movierec import files
from movierec.data.registry import GROUPLENS, Release, get_release
from movierec.errors import DatasetNotFoundError, DiskFullError, DownloadError

log = logging.getLogger(__name__)

ENV_DATA = "MOVIEREC_DATA"
ENV_CACHE = "MOVIEREC_CACHE"
ENV_BASE_URL = "MOVIEREC_BASE_URL"

TIMEOUT_S = 30.0
"""Seconds to wait for a connection or for the next chunk of data."""

_CHUNK = 1 << 20
_MD5_RE = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")


class DatasetUnreachableError(DatasetNotFoundError, DownloadError):
    """The release is not on disk and its server cannot be reached (offline, DNS, refused).

    Both a :class:`DatasetNotFoundError` (a ``FileNotFoundError``: the data is missing) and a
    :class:`DownloadError` (the download failed); the message says where to put the files.
    """


def default_data_dir() -> Path:
    """The folder datasets are looked up in and downloaded to: ``$MOVIEREC_DATA`` or
    ``~/.cache/movierec``."""
    value = os.environ.get(ENV_DATA)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "movierec"


def cache_dir() -> Path:
    """The folder for parsed (Parquet) caches: ``$MOVIEREC_CACHE`` or
    ``default_data_dir() / "parsed"``."""
    value = os.environ.get(ENV_CACHE)
    return Path(value).expanduser() if value else default_data_dir() / "parsed"


def release_url(release: str | Release) -> str:
    """The URL the release's zip is fetched from, honouring ``$MOVIEREC_BASE_URL``."""
    release = _release(release)
    base = os.environ.get(ENV_BASE_URL)
    if not base:
        return release.url
    base = base.rstrip("/")
    if release.url.startswith(GROUPLENS + "/"):
        return base + release.url[len(GROUPLENS) :]
    return f"{base}/{release.filename}"


def find_local(
    name_or_release: str | Release, data_dir: str | os.PathLike | None = None
) -> Path | None:
    """The folder under ``data_dir`` (default :func:`default_data_dir`) that already holds the
    release, or ``None``.

    Looked for, in order: ``data_dir/<release folder>`` (``ml-10M100K`` for ml-10m),
    ``data_dir/<release name>``, and ``data_dir`` itself. A folder counts when it holds the
    release's ratings file (``u.data``, ``ratings.dat`` or ``ratings.csv``); nothing is read or
    checked beyond that, so a folder laid out by hand is used as-is.
    """
    release = _release(name_or_release)
    root = _root(data_dir)
    for folder in (root / release.folder, root / release.name, root):
        if (folder / release.ratings_file).is_file():
            return folder
    return None


def ensure_dataset(
    name: str | Release, data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> Path:
    """The folder holding the release's files: an existing one (see :func:`find_local`) is used
    as-is without any network access; otherwise the release is downloaded into
    ``data_dir/<release folder>`` when ``download`` is true.

    Raises :class:`DatasetNotFoundError` when the files are absent and ``download`` is false or
    the server cannot be reached; the message says where to put them. Other download failures
    raise :class:`DownloadError`.
    """
    release = _release(name)
    local = find_local(release, data_dir)
    if local is not None:
        return local
    if not download:
        raise DatasetNotFoundError(
            f"{release.name} not found in {_root(data_dir)} and downloading is off. "
            + _where_to_put(release, _root(data_dir), release_url(release))
        )
    return _download(release, data_dir)


@dataclass(frozen=True)
class Downloaded:
    """What :func:`download_release` did: the release ``folder``, whether the zip's MD5 was
    ``verified`` and against what (``how``: the checksum's source, or why it was not checked)."""

    folder: Path
    verified: bool
    how: str


def download(
    name: str | Release,
    data_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    md5: str | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download, verify and unpack a release into ``data_dir/<release folder>``; return that folder.

    ``url`` replaces the release's URL (default: the registry's, under ``$MOVIEREC_BASE_URL`` when
    set). The zip's MD5 must equal ``md5`` when given, else the registry's pinned checksum; for
    releases without one (``ml-32m``, ``ml-latest*``) it must equal the ``.md5`` file published
    beside the zip, and when that file does not exist (HTTP 404) the zip only has to be readable.
    An existing complete folder is returned untouched unless ``force`` is true, in which case it
    is replaced once the new copy is verified. ``progress`` shows a progress bar on a terminal.

    Raises :class:`DownloadError` (HTTP error, checksum mismatch, truncated or corrupt archive,
    unsafe archive paths, archive without the release's ratings file), :class:`DiskFullError`
    (naming the folder), or :class:`DatasetUnreachableError` (also a
    :class:`DatasetNotFoundError`) when the server cannot be reached. On any failure, and on
    interruption, no partial file or folder is left; with ``force``, files in the old folder
    that the archive does not hold are kept.
    """
    return download_release(name, data_dir, url=url, md5=md5, force=force, progress=progress,
                            timeout=timeout).folder


def download_release(
    name: str | Release,
    data_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    md5: str | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
) -> Downloaded:
    """:func:`download`, saying whether the archive's MD5 was checked (a mirror without a
    ``.md5`` file gives ``verified=False``, with a warning)."""
    release = _release(name)
    root = _root(data_dir)
    dest = root / release.folder
    if not force and (dest / release.ratings_file).is_file():
        return Downloaded(dest, True, "already on disk")
    url = url or release_url(release)
    created_root = not root.exists()
    with files.disk_full_is_one_line(root):
        root.mkdir(parents=True, exist_ok=True)
    try:
        with files.write_lock(dest, wait=-1):  # a second download of the release waits here
            files.sweep_stale(root / release.filename)  # a killed download's .part
            files.sweep_stale(dest)  # and its unpacked .tmp folder
            if not force and (dest / release.ratings_file).is_file():
                return Downloaded(dest, True, "downloaded by another process meanwhile")
            return _download_into(
                release, root, dest, url, md5, force=force, progress=progress, timeout=timeout
            )
    finally:
        if created_root:  # a failed first download leaves no empty folder either
            with contextlib.suppress(OSError):
                root.rmdir()  # only succeeds when empty


def _download_into(
    release: Release,
    root: Path,
    dest: Path,
    url: str,
    md5: str | None,
    *,
    force: bool,
    progress: bool,
    timeout: float,
) -> Downloaded:
    """:func:`download` once ``root`` exists: fetch, verify, unpack, swap into place."""
    expected = (md5 or release.md5 or "").lower() or None
    md5_source = "the expected checksum" if md5 else "the registry's checksum"
    if expected is None:
        expected = _published_md5(release, root, url + ".md5", timeout)
        md5_source = f"{url}.md5"
        if expected is None:
            md5_source = f"not verified: no checksum published ({url}.md5 does not exist)"
            log.warning("%s: %s; the archive was only checked to be a readable zip", url,
                        md5_source)

    fd, part_name = tempfile.mkstemp(prefix=f".{release.filename}.", suffix=".part", dir=root)
    os.close(fd)
    part = Path(part_name)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{release.folder}.", suffix=".tmp", dir=root))
    os.chmod(tmp_dir, files.dir_mode())  # it becomes the release folder when the zip is bare
    try:
        actual = _fetch(release, root, url, part, progress=progress, timeout=timeout)
        if expected is not None and actual != expected:
            raise DownloadError(
                f"{url}: MD5 {actual} does not match {md5_source} {expected}; the download is "
                "corrupt or the file was changed. Nothing was kept; try again, or download it "
                "yourself. " + _where_to_put(release, root, url)
            )
        folder = _extract(part, tmp_dir, release, url)
        _move_into_place(folder, dest, release, force=force)
        return Downloaded(dest, expected is not None, md5_source)
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)


_download = download  # ensure_dataset's ``download`` flag shadows the function's name

# --------------------------------------------------------------------------- helpers


def _release(name: str | Release) -> Release:
    return name if isinstance(name, Release) else get_release(name)


def _root(data_dir: str | os.PathLike | None) -> Path:
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if root.exists() and not root.is_dir():
        where = "--data-dir" if data_dir is not None else f"${ENV_DATA}"
        raise DatasetNotFoundError(
            f"{where} {root}: is a file; give the folder that holds (or will receive) the "
            "release folders"
        )
    return root


def _where_to_put(release: Release, root: Path, url: str) -> str:
    return (
        f"To use files obtained another way, download {url}, unzip it so that "
        f"{root / release.folder}/ contains {release.ratings_file}, or pass --data-dir / set "
        f"{ENV_DATA} to a folder that holds {release.folder}/{release.ratings_file}."
    )


def _open(release: Release, root: Path, url: str, timeout: float):
    """Open ``url``; HTTP errors propagate as ``urllib.error.HTTPError`` for the caller to judge,
    an unreachable server becomes :class:`DatasetUnreachableError`."""
    request = urllib.request.Request(url, headers={"User-Agent": "movierec"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetUnreachableError(
            f"{release.name} is not in {root} and {url} cannot be reached ({reason}). "
            + _where_to_put(release, root, url)
        ) from exc


def _published_md5(release: Release, root: Path, md5_url: str, timeout: float) -> str | None:
    """The checksum in the ``.md5`` file beside the zip; ``None`` when the server has none."""
    try:
        with _open(release, root, md5_url, timeout) as response:
            text = response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return None
        raise DownloadError(
            f"{md5_url}: HTTP {exc.code} {exc.reason}; cannot check the download's integrity."
        ) from exc
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{md5_url}: reading failed ({exc}); try again.") from exc
    # "<hex>  name", "MD5 (name) = <hex>" or a bare "<hex>": the one 32-digit hex token.
    match = _MD5_RE.search(text)
    if match is None:
        raise DownloadError(f"{md5_url}: no MD5 checksum found in {text[:80]!r}.")
    return match.group(0).lower()


def _fetch(
    release: Release, root: Path, url: str, part: Path, *, progress: bool, timeout: float
) -> str:
    """Stream ``url`` into ``part``; return the MD5 hex digest of what was received."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        response = _open(release, root, url, timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason}. " + _where_to_put(release, root, url)
        ) from exc
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        try:
            with open(part, "wb") as out, _progress_bar(release, total, progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except OSError as exc:
            if files.is_disk_full(exc):
                raise _full(root, exc) from exc
            raise DownloadError(
                f"{url}: download interrupted after {received:,} bytes ({exc}). Nothing was "
                "kept; try again."
            ) from exc
        except http.client.HTTPException as exc:  # reset, timeout, IncompleteRead
            raise DownloadError(
                f"{url}: download interrupted after {received:,} bytes ({exc}). Nothing was "
                "kept; try again."
            ) from exc
    if total is not None and received != total:
        raise DownloadError(
            f"{url}: received {received:,} of {total:,} bytes; the connection was cut. Nothing "
            "was kept; try again."
        )
    return digest.hexdigest()


def _progress_bar(release: Release, total: int | None, progress: bool):
    from tqdm import tqdm

    enabled = progress and sys.stderr.isatty()
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=release.filename,
        disable=not enabled,
        leave=False,
    )


def _extract(archive: Path, tmp_dir: Path, release: Release, url: str) -> Path:
    """Unpack ``archive`` into ``tmp_dir``; return the unpacked release folder inside it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                if (
                    not parts
                    or parts[0] == "/"
                    or ".." in parts
                    or re.match(r"^[A-Za-z]:", parts[0])
                ):
                    raise DownloadError(
                        f"{url}: archive entry {info.filename!r} points outside the folder it is "
                        "unpacked into; refusing to unpack it."
                    )
            zf.extractall(tmp_dir)
    except DownloadError:
        raise
    except OSError as exc:
        if files.is_disk_full(exc):
            raise _full(tmp_dir.parent, exc) from exc
        raise DownloadError(
            f"{url}: unpacking failed ({exc}). Nothing was kept; try again."
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise DownloadError(
            f"{url}: the archive is not a readable zip ({exc}); the download is truncated or "
            "corrupt. Nothing was kept; try again."
        ) from exc
    for folder in (tmp_dir / release.folder, tmp_dir):  # a mirror may zip the files bare
        if (folder / release.ratings_file).is_file():
            return folder
    raise DownloadError(
        f"{url}: the archive holds no {release.folder}/{release.ratings_file}; it is not the "
        f"{release.name} release. Nothing was kept."
    )


def _full(root: Path, exc: BaseException) -> DiskFullError:
    return files.disk_full(root)


def _move_into_place(folder: Path, dest: Path, release: Release, *, force: bool) -> Path:
    """Swap the verified ``folder`` into ``dest``; an old ``dest`` is replaced only if ``force``
    or incomplete, and every file in it that the archive does not hold is kept (hard-linked into
    the new folder first), so notes or split files a user put there survive ``--force``."""
    if os.path.lexists(dest):
        if not dest.is_dir():
            raise DownloadError(f"{dest}: is a file, not a release folder; move it away")
        if not force and (dest / release.ratings_file).is_file():
            return dest  # another process finished the same download first
        new = {p.name for p in folder.iterdir()}
        for entry in dest.iterdir():
            if entry.name not in new:
                files.carry(entry, folder / entry.name)
    try:
        with files.disk_full_is_one_line(dest):
            files.replace_folder(folder, dest)
    except DiskFullError:
        raise
    except OSError as exc:
        raise DownloadError(f"cannot move the unpacked release to {dest}: {exc}") from exc
    return dest
