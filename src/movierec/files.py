"""Writing files whole or not at all, only where movierec may, with checksums to read them back.

Every file and folder movierec writes goes through this module:

- :func:`write_atomically`: one file, written to a temporary sibling and renamed into place
  (readable mode, honouring the umask); a failure leaves the old file and no temporary one.
- :func:`swap_folder` / :func:`write_folder`: one folder built in a temporary sibling and
  exchanged with the old one in a single step (``renameat2(RENAME_EXCHANGE)`` on Linux), so a
  reader, or a process killed at any moment, sees the old folder or the new one, never a mix.
  :func:`write_folder` adds the output policy: it writes only into folders movierec created (a
  :data:`MARKER` file lists what it wrote) or empty ones; anything else needs ``force``, and even
  then every file it did not write is kept (hard-linked into the new folder), and a file of the
  user's under a name it would write is refused.
- A lock per output path (``filelock``): a second writer of the same path gets a clear error
  (or waits, for downloads) instead of racing; stale temporary files of killed runs are removed
  by the next writer of the same path, under that lock.
- Checksums of what is written and read back: :mod:`movierec.checksums`.
- A full disk is a :class:`DiskFullError` naming the path: "no space left on device".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from movierec.errors import DiskFullError, OutputError

MARKER = ".movierec-output"
"""File in every output folder movierec writes: JSON ``{"kind": ..., "files": [...]}``."""

_E = TypeVar("_E", bound=OutputError)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = re.compile(r"No space left on device|os error 28|Disk quota exceeded", re.I)


# ---------------------------------------------------------------------- errors
def _error(cls: type[_E], code: int, message: str) -> _E:
    """``cls(message)`` carrying ``errno`` ``code`` (without the ``[Errno n]`` prefix that the
    two-argument ``OSError`` puts in the message)."""
    e = cls(message)
    e.errno = code
    return e


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or the quota is full; polars reports
    it as a ``ComputeError`` whose text holds ``os error 28``."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        if _DISK_FULL_TEXT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def disk_full(path: str | os.PathLike) -> DiskFullError:
    """The one-line error for a write to ``path`` that ran out of space."""
    return _error(DiskFullError, errno.ENOSPC, f"{path}: no space left on device; nothing was "
                  "written there. Free some space or write elsewhere")


@contextlib.contextmanager
def disk_full_is_one_line(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise a full-disk failure inside the block as :func:`disk_full` of ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise disk_full(path) from e
        raise


# ---------------------------------------------------------------------- modes
def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would race with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the umask (``mkstemp`` makes
    ``0o600``)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: ``0o777`` less the umask (``mkdtemp``: ``0o700``)."""
    return 0o777 & ~_umask()


# ---------------------------------------------------------------------- locks
def lock_dir() -> Path:
    """Where the per-path lock files live (one small file per output path ever written):
    ``$MOVIEREC_LOCKS`` or ``<temp dir>/movierec-locks-<uid>``; lock files are never placed
    beside the user's files."""
    value = os.environ.get("MOVIEREC_LOCKS")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(value) if value else Path(tempfile.gettempdir()) / f"movierec-locks-{uid}"


@contextlib.contextmanager
def write_lock(path: str | os.PathLike, *, wait: float = 0.0, what: str = "") -> Iterator[None]:
    """Hold the lock of output ``path`` (its absolute, symlink-resolved form) for the block.

    ``wait`` seconds to wait for another holder (0: fail at once; -1: forever). Raises
    :class:`OutputError` when another process holds it.
    """
    from filelock import FileLock, Timeout

    key = hashlib.sha256(str(Path(path).absolute().resolve()).encode()).hexdigest()[:32]
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = FileLock(str(folder / f"{key}.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise _error(OutputError, errno.EBUSY,
            f"{path}: another movierec process is writing {what or 'it'} right now; "
            "wait for it to finish or choose another path") from None
    try:
        yield
    finally:
        lock.release()


# ---------------------------------------------------------------------- stale temporaries
def _temp_pattern(name: str) -> re.Pattern[str]:
    # what mkstemp/mkdtemp make below: ".<name>.<8 chars>.tmp|.part" and ".<name>.tmp|old-<8>"
    n = re.escape(name)
    return re.compile(rf"^\.{n}\.(?:[a-z0-9_]{{8}}\.(?:tmp|part)|(?:tmp|old)-[a-z0-9_]{{8}})$")


def sweep_stale(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings that a killed writer of ``path`` left; call it holding
    :func:`write_lock` of ``path`` (so no live writer owns them). A folder moved aside by an
    interrupted swap is put back first when ``path`` itself is missing. Returns what it removed.
    """
    path = Path(path).absolute()
    if not path.parent.is_dir():
        return []
    pattern = _temp_pattern(path.name)
    stale = sorted((p for p in path.parent.iterdir() if pattern.match(p.name)),
                   key=lambda p: p.stat().st_mtime if p.exists() else 0)
    olds = [p for p in stale if ".old-" in p.name and p.is_dir()]
    if olds and not os.path.lexists(path):
        os.replace(olds[-1], path)  # an interrupted two-step swap: the old folder goes back
        stale.remove(olds[-1])
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
    return stale


# ---------------------------------------------------------------------- one file
def _fsync(path: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(
    path: str | os.PathLike, write: Callable[[str], object], *, lock: bool = True,
    check: Callable[[str], None] | None = None,
) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place.

    A failure (or interrupt) inside ``write`` removes the temporary file and leaves whatever was
    at ``path`` untouched, so readers never see half a file. The file gets the mode a plain
    ``open()`` would give it (umask honoured). Creates the parent folder. ``check(tmp)``, when
    given, runs on the written file before it replaces the old one. With ``lock`` another
    process writing the same path is an :class:`OutputError`, and temporary files of killed
    writers are removed. A full disk is a :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    with disk_full_is_one_line(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    guard = write_lock(path) if lock else contextlib.nullcontext()
    with guard:
        if lock:
            sweep_stale(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            with disk_full_is_one_line(path):
                write(tmp)
                if check is not None:
                    check(tmp)
                os.chmod(tmp, file_mode())
                _fsync(tmp)
                os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def write_bytes_atomically(path: str | os.PathLike, data: bytes, **kw: Any) -> Path:
    """:func:`write_atomically` of ``data``."""
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(data), **kw)


# ---------------------------------------------------------------------- folders
def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the names ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``);
    False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def replace_folder(tmp: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Put the folder ``tmp`` at ``dest`` in one step; an old ``dest`` is removed after.

    With ``renameat2(RENAME_EXCHANGE)`` the two are swapped atomically, so ``dest`` is always a
    whole folder; elsewhere the old one is first renamed aside (``.<name>.old-*``), and a crash in
    between is repaired by the next :func:`sweep_stale`.
    """
    tmp, dest = Path(tmp), Path(dest)
    if not os.path.lexists(dest):
        os.replace(tmp, dest)
        return
    if _exchange(tmp, dest):
        shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    old.rmdir()
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def swap_folder(dest: str | os.PathLike, build: Callable[[Path], object], *, wait: float = 0.0,
                what: str = "", finish: Callable[[Path], object] | None = None) -> Path:
    """Build a folder with ``build(tmp)`` in a temporary sibling of ``dest`` and put it at
    ``dest`` with :func:`replace_folder`, holding ``dest``'s :func:`write_lock`.

    ``finish(tmp)`` runs after ``build``, still before the swap. A failure or interrupt leaves the
    old ``dest`` and no temporary folder; a killed run's temporaries are swept by the next call.
    """
    dest = Path(dest).absolute()
    if dest.is_symlink():
        dest = dest.resolve()
    with disk_full_is_one_line(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
    with write_lock(dest, wait=wait, what=what):
        sweep_stale(dest)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            with disk_full_is_one_line(dest):
                os.chmod(tmp, dir_mode())
                build(tmp)
                if finish is not None:
                    finish(tmp)
                _fsync(tmp)
                replace_folder(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


# ---------------------------------------------------------------------- output policy
def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The :data:`MARKER` of ``folder`` (``kind``, ``files``), or ``None`` (absent, damaged)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(marker, dict) and isinstance(marker.get("kind"), str)
          and isinstance(marker.get("files"), list)
          and all(isinstance(f, str) for f in marker["files"]))
    return marker if ok else None


def _marker_text(kind: str, files: Iterable[str]) -> str:
    from movierec import __version__

    return json.dumps({"kind": kind, "files": sorted(files), "movierec": __version__,
                       "note": "written by movierec; it replaces only the files listed here"},
                      indent=1) + "\n"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_not_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                    option: str = "--out") -> None:
    """Refuse an output path that is one of the command's inputs (or the folder holding one)."""
    out = Path(out).expanduser()
    for source in inputs:
        source = Path(source)
        if _same(out, source) or (out.is_dir() and _same(out, source.parent)):
            raise _error(OutputError, errno.EEXIST, f"{option} {out}: is an input of this command "
                              f"({source}); writing there would overwrite it. Choose another "
                              "path")


def owned_names(dest: str | os.PathLike, kind: str, *, force: bool = False,
                recognise: Callable[[Path], bool] | None = None,
                owned: Iterable[str] = (), option: str = "--out") -> tuple[set[str], bool]:
    """Check that movierec may write a ``kind`` output folder at ``dest``; return the names in it
    that are movierec's own (replaced or dropped by the new output) and whether ``dest`` is an
    output of an older movierec (recognised by ``recognise``, no marker), whose files that the new
    output writes are replaced too.

    Allowed: a missing or empty folder; a folder whose :data:`MARKER` says ``kind``; one that
    ``recognise`` accepts; anything else only with ``force`` (then nothing in it is movierec's).
    Raises :class:`OutputError` otherwise, and for a file at ``dest``.
    """
    dest = Path(dest).expanduser().absolute()
    if not os.path.lexists(dest):
        return set(), False
    if not dest.is_dir():
        raise _error(OutputError, errno.ENOTDIR, f"{option} {dest}: is a file; give a folder")
    marker = read_marker(dest)
    if marker is not None and marker["kind"] == kind:
        return set(marker["files"]) | set(owned), False
    if marker is None and recognise is not None and recognise(dest):
        return set(owned), True
    if force or not any(dest.iterdir()):
        return set(), False
    what = (f"a movierec {marker['kind']}" if marker is not None
            else "files movierec did not write")
    raise _error(OutputError, errno.EEXIST,
        f"{option} {dest}: holds {what}; refusing to write a {kind} there. Give a "
        f"new or empty folder, or pass --force to add the {kind} beside those files (none of "
        "them is deleted)")


def claim_output_dir(dest: str | os.PathLike, kind: str, *, force: bool = False,
                     recognise: Callable[[Path], bool] | None = None,
                     option: str = "--out") -> Path:
    """Check ``dest`` as :func:`owned_names` does and make it a movierec ``kind`` folder now
    (created, with a :data:`MARKER` listing no files yet), before a long run writes into it
    (a ``log_dir`` inside it) and saves at the end. Returns the absolute path."""
    dest = Path(dest).expanduser().absolute()
    _, legacy = owned_names(dest, kind, force=force, recognise=recognise, option=option)
    marker = read_marker(dest) if dest.is_dir() else None
    if legacy or (marker is not None and marker["kind"] == kind):
        return dest
    with disk_full_is_one_line(dest):
        dest.mkdir(parents=True, exist_ok=True)
    write_atomically(dest / MARKER, lambda tmp: Path(tmp).write_text(_marker_text(kind, [])))
    return dest


@contextlib.contextmanager
def claimed_output_dir(dest: str | os.PathLike, kind: str, *, force: bool = False,
                       recognise: Callable[[Path], bool] | None = None,
                       option: str = "--out") -> Iterator[Path]:
    """:func:`claim_output_dir` for the block; when the block fails and the folder was created by
    the claim and still holds nothing but the marker, it is removed again (nothing half-made)."""
    dest = Path(dest).expanduser().absolute()
    created = not os.path.lexists(dest)
    claim_output_dir(dest, kind, force=force, recognise=recognise, option=option)
    try:
        yield dest
    except BaseException:
        if created and dest.is_dir() and [p.name for p in dest.iterdir()] == [MARKER]:
            shutil.rmtree(dest, ignore_errors=True)
        raise


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def carry(src: Path, dst: Path) -> None:
    """Put ``src`` (a file, link or folder tree) at ``dst`` by hard links (copies where links
    are impossible): the data is not copied and survives the removal of ``src``."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def write_folder(dest: str | os.PathLike, build: Callable[[Path], object], kind: str, *,
                 force: bool = False, recognise: Callable[[Path], bool] | None = None,
                 owned: Iterable[str] = (), option: str = "--out", wait: float = 0.0) -> Path:
    """Write the output folder ``dest`` (a ``kind``) with ``build(tmp)``, all or nothing.

    Allowed where :func:`owned_names` allows it. Every file of ``dest`` that movierec did not
    write is kept (hard-linked into the new folder); one under a name the new output writes is an
    :class:`OutputError` and nothing changes. Files of the old output that the new one does not
    write are dropped. ``owned`` names are movierec's in a ``kind`` folder even when the marker
    does not list them (files added later, such as an artifact's catalogue). The new folder's
    :data:`MARKER` lists what ``build`` wrote. Returns ``dest`` (absolute).
    """
    dest = Path(dest).expanduser().absolute()
    if dest.is_symlink():
        dest = dest.resolve()
    owned_names(dest, kind, force=force, recognise=recognise, owned=owned, option=option)

    def finish(tmp: Path) -> None:
        ours, legacy = owned_names(dest, kind, force=force, recognise=recognise, owned=owned,
                                   option=option)  # again, under the lock
        new = {p.name for p in tmp.iterdir()}
        if dest.is_dir():
            for entry in sorted(dest.iterdir()):
                name = entry.name
                if name == MARKER or name in ours or (legacy and name in new):
                    continue  # movierec's own: replaced or dropped
                if name in new:
                    raise _error(OutputError, errno.EEXIST,
                        f"{option} {dest}: {name} there is not movierec's; "
                        f"refusing to overwrite it. Move it away or choose another folder")
                carry(entry, tmp / name)
        (tmp / MARKER).write_text(_marker_text(kind, new), encoding="utf-8")

    return swap_folder(dest, build, wait=wait, what=f"this {kind}", finish=finish)


def check_output_file(path: str | os.PathLike, *, force: bool = False,
                      inputs: Iterable[str | os.PathLike] = (), option: str = "--out") -> Path:
    """Check a single-file output before any work: not a folder, not one of ``inputs``, and an
    existing file only with ``force`` (it is then replaced whole). Returns the path."""
    path = Path(path).expanduser()
    check_not_input(path, inputs, option)
    if path.is_dir():
        raise _error(OutputError, errno.EISDIR, f"{option} {path}: is a folder; give a file")
    if path.exists() and not force:
        raise _error(OutputError, errno.EEXIST, f"{option} {path}: exists; refusing to overwrite "
                     "it. Choose another name, or pass --force to replace it")
    return path
