"""Several artifacts in one server: each loaded once as a :class:`Store` under a name.

An artifact is named by its folder (``artifacts/ials`` -> ``ials``) or explicitly as
``NAME=DIR``; the first is the default unless another is named. Requests choose one with
``?model=NAME``; without it the default answers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from movierec.errors import MovierecError
from movierec.serving.store import BadRequest, Store

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ENV_ARTIFACTS = "MOVIEREC_ARTIFACTS"
"""JSON ``[[name, folder], ...]`` for worker processes (see :func:`to_env`)."""


def parse_artifacts(specs: list[str | Path]) -> list[tuple[str, Path]]:
    """``(name, folder)`` of each ``DIR`` or ``NAME=DIR``; one-line errors for a missing folder,
    a bad name or two artifacts with the same name."""
    if not specs:
        raise MovierecError("no artifact to serve: pass --artifact DIR (a `movierec train "
                            "--out DIR` folder)")
    out: list[tuple[str, Path]] = []
    for spec in specs:
        text = str(spec)
        name, sep, folder = text.partition("=")
        if not sep or Path(text).exists():
            name, folder = Path(text).name, text
        if not _NAME.fullmatch(name):
            raise MovierecError(f"--artifact {text}: the name {name!r} may only hold letters, "
                                "digits, '.', '_' and '-' (use NAME=DIR)")
        path = Path(folder)
        if not (path / "config.json").is_file():
            raise MovierecError(f"--artifact {text}: {path} is not an artifact folder (no "
                                "config.json); train one with `movierec train CONFIG --out DIR`")
        if any(name == n for n, _ in out):
            raise MovierecError(f"two artifacts are named {name!r}: name them with "
                                "--artifact NAME=DIR")
        out.append((name, path))
    return out


@dataclass
class ServedModels:
    """The loaded artifacts by name, and which one answers when a request names none."""

    stores: dict[str, Store]
    default: str

    def __post_init__(self) -> None:
        if self.default not in self.stores:
            raise MovierecError(f"--default {self.default}: no artifact has that name; "
                                f"served: {', '.join(self.stores)}")

    @classmethod
    def open(cls, artifacts: list[tuple[str, Path]], default: str | None = None,
             data_dir: str | Path | None = None) -> ServedModels:
        stores = {name: Store.open(path, data_dir, name=name) for name, path in artifacts}
        return cls(stores, default or artifacts[0][0])

    @property
    def names(self) -> list[str]:
        return list(self.stores)

    def get(self, name: str | None) -> Store:
        """The store called ``name`` (None: the default); :class:`BadRequest` names the
        served ones."""
        if name is None:
            return self.stores[self.default]
        store = self.stores.get(name)
        if store is None:
            raise BadRequest(f"unknown model {name[:64]!r}; served: {', '.join(self.stores)}")
        return store

    def with_movie(self, movie_id: int) -> Store:
        """The first store (default first) whose catalogue holds ``movie_id``."""
        order = [self.default, *(n for n in self.stores if n != self.default)]
        for name in order:
            store = self.stores[name]
            if store.knows_movie(movie_id):
                return store
        return self.stores[self.default]  # raises NotFound in item_index


def to_env(artifacts: list[tuple[str, Path]], default: str | None) -> dict[str, str]:
    """Environment variables that :func:`from_env` reads back in a worker process."""
    env = {ENV_ARTIFACTS: json.dumps([[n, str(Path(p).resolve())] for n, p in artifacts])}
    if default:
        env["MOVIEREC_DEFAULT_MODEL"] = default
    return env


def from_env() -> tuple[list[tuple[str, Path]], str | None]:
    """``(artifacts, default)`` from :data:`ENV_ARTIFACTS` (or the single
    ``MOVIEREC_ARTIFACT``) and ``MOVIEREC_DEFAULT_MODEL``."""
    listed = os.environ.get(ENV_ARTIFACTS)
    if listed:
        artifacts = [(str(n), Path(p)) for n, p in json.loads(listed)]
    elif os.environ.get("MOVIEREC_ARTIFACT"):
        artifacts = parse_artifacts([os.environ["MOVIEREC_ARTIFACT"]])
    else:
        raise MovierecError(f"set {ENV_ARTIFACTS} or MOVIEREC_ARTIFACT to the artifact(s) "
                            "to serve")
    return artifacts, os.environ.get("MOVIEREC_DEFAULT_MODEL") or None
