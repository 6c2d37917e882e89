"""Writing files whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def new_temp_sibling(path: Path, suffix: str = ".tmp", folder: bool = False) -> Path:
    """Create an empty file (or folder) beside ``path`` under a fresh hidden name and return it.

    Unlike :mod:`tempfile`, whose files are private (0600 / 0700), it gets the mode the umask
    gives any new file (typically 0644 / 0755), so what is renamed into place stays readable by
    other users, e.g. the Docker image's non-root server reading a mounted artifact.
    """
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        try:
            if folder:
                tmp.mkdir()
            else:
                open(tmp, "xb").close()
            return tmp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def write_atomically(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place.

    A failure (or interrupt) inside ``write`` removes the temporary file and leaves whatever was
    at ``path`` untouched, so readers never see half a file. Creates the parent folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(new_temp_sibling(path))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
