"""Checksums of the files movierec writes and reads back, and readers that never panic.

- :func:`write_manifest` / :func:`verify_manifest`: a folder's ``SHA256SUMS`` (the format
  ``sha256sum -c`` reads), for the dataset cache, artifacts and split files;
- :func:`write_checked` / :func:`read_checked`: one file and its ``<name>.sha256`` sidecar, for
  single-file caches (text embeddings, an artifact's serving catalogue);
- :func:`read_parquet`: every reader failure, polars' ``PanicException`` (a ``BaseException``)
  included, becomes a :class:`~movierec.errors.CorruptFileError` naming the file.

SHA-256 (``hashlib``, hardware-accelerated on current CPUs) of the bytes, hashed once as they are
read: ``benchmarks/bench_checksums.py`` measures the cost.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from movierec.errors import CorruptFileError
from movierec.files import sweep_stale, write_atomically, write_lock

MANIFEST = "SHA256SUMS"
"""Checksums of a folder's files, one ``<sha256 hex>  <name>`` line each (``sha256sum -c``)."""
SIDECAR_SUFFIX = ".sha256"


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def format_sums(sums: dict[str, str]) -> str:
    """``sha256sum`` lines (``<hex>  <name>``), sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))


def parse_sums(text: str, where: str | os.PathLike) -> dict[str, str]:
    """The ``name -> hex`` of a ``sha256sum`` file; a malformed line is a
    :class:`CorruptFileError` (lower-case hex only, so a flipped case bit is caught too)."""
    sums: dict[str, str] = {}
    for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"),
                             start=1):
        m = re.fullmatch(r"([0-9a-f]{64})  ([^/\\\n]+)", line)
        if m is None or m.group(2) in sums:
            raise CorruptFileError(where, f"line {n} is not '<sha256>  <file name>'; the "
                                   "checksum file is damaged")
        sums[m.group(2)] = m.group(1)
    if not sums:
        raise CorruptFileError(where, "no checksums in the file; it is damaged")
    return sums


def write_manifest(folder: str | os.PathLike, names: Iterable[str]) -> Path:
    """Record the SHA-256 of ``folder``'s files ``names`` in ``folder/SHA256SUMS``."""
    folder = Path(folder)
    text = format_sums({n: sha256_file(folder / n) for n in names})
    return write_atomically(folder / MANIFEST, lambda tmp: Path(tmp).write_text(text), lock=False)


def read_manifest(folder: str | os.PathLike) -> dict[str, str] | None:
    """``folder/SHA256SUMS`` as ``name -> hex``; ``None`` when there is none."""
    file = Path(folder) / MANIFEST
    try:
        text = file.read_bytes().decode("ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptFileError(file, f"unreadable ({e})") from e
    return parse_sums(text, file)


def verify_bytes(path: str | os.PathLike, data: bytes, sums: dict[str, str]) -> None:
    """Raise :class:`CorruptFileError` unless ``data`` (the bytes of ``path``) has the SHA-256
    that ``sums`` records for its name."""
    name = Path(path).name
    want = sums.get(name)
    if want is None:
        raise CorruptFileError(path, f"has no checksum in {MANIFEST}; the folder is damaged")
    if sha256_bytes(data) != want:
        raise CorruptFileError(path, "its bytes changed since movierec wrote it (SHA-256 "
                               "mismatch); the file is corrupt")


def verify_manifest(folder: str | os.PathLike, names: Iterable[str],
                    sums: dict[str, str] | None = None) -> None:
    """Raise :class:`CorruptFileError` naming the first of ``names`` in ``folder`` whose bytes
    differ from ``SHA256SUMS`` (or that it does not list)."""
    folder = Path(folder)
    sums = read_manifest(folder) if sums is None else sums
    if sums is None:
        raise CorruptFileError(folder / MANIFEST, "missing; cannot check the files")
    for name in names:
        try:
            data = (folder / name).read_bytes()
        except OSError as e:
            raise CorruptFileError(folder / name, f"unreadable ({e.strerror or e})") from e
        verify_bytes(folder / name, data, sums)


def sidecar(path: str | os.PathLike) -> Path:
    """``<path>.sha256``: the checksum of one file written with :func:`write_checked`."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_checked(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """:func:`write_atomically`, then its SHA-256 in :func:`sidecar`. An interruption between
    the two leaves a pair that :func:`read_checked` rejects (so a cache is rebuilt)."""
    path = Path(path)
    digest: list[str] = []
    with write_lock(path):
        sweep_stale(path)
        sweep_stale(sidecar(path))
        sidecar(path).unlink(missing_ok=True)  # the old checksum no longer applies
        write_atomically(path, write, lock=False,
                         check=lambda tmp: digest.append(sha256_file(tmp)))
        text = format_sums({path.name: digest[0]})
        write_atomically(sidecar(path), lambda tmp: Path(tmp).write_text(text), lock=False)
    return path


def read_checked(path: str | os.PathLike) -> bytes:
    """The bytes of a file written by :func:`write_checked`, after checking them against its
    sidecar; :class:`CorruptFileError` when the sidecar is missing or does not match."""
    path = Path(path)
    side = sidecar(path)
    try:
        sums = parse_sums(side.read_bytes().decode("ascii"), side)
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise CorruptFileError(e.filename or path, "missing") from e
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptFileError(path, f"unreadable ({e})") from e
    if sums.get(path.name) is None:
        raise CorruptFileError(side, f"does not name {path.name}; it is damaged")
    verify_bytes(path, data, sums)
    return data


# ---------------------------------------------------------------------- guarded readers
def read_parquet(source: str | Path | bytes, *, name: str | os.PathLike | None = None,
                 **kw: Any):
    """``polars.read_parquet`` where any reader failure, polars' ``PanicException`` (a
    ``BaseException``) included, is a :class:`CorruptFileError` naming the file."""
    import polars as pl

    where = name if name is not None else source
    data = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        return pl.read_parquet(data, **kw)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # PanicException derives from BaseException
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorruptFileError(where, f"not a readable Parquet file ({first[:200]})") from None
