"""Whether a release folder holds real GroupLens data or movierec's synthetic stand-in.

:func:`movierec.data.release_writer.write_release` leaves :data:`SYNTHETIC_FILE` (the preset,
seed and shape it drew) in every folder it writes; :func:`display_name` turns a folder's name
into ``"ml-1m (synthetic, seed 0)"`` when that file is there. The loader names the
:class:`~movierec.data.dataset.Dataset` so, and every place that shows a dataset's name (``datasets
info``, JSON output, EDA and evaluation reports, an artifact's ``config.json``) shows it from
there, so a figure measured on synthetic data cannot pass for one of the real release.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SYNTHETIC_FILE = "SYNTHETIC.json"
"""The marker file of a synthetic release folder."""

SYNTHETIC_TAG = "synthetic"
"""The word every synthetic dataset's name contains."""


def write_synthetic_marker(folder: str | Path, info: dict[str, Any]) -> Path:
    """Write :data:`SYNTHETIC_FILE` into ``folder`` with ``info`` (preset, seed, shape)."""
    path = Path(folder) / SYNTHETIC_FILE
    text = json.dumps({"synthetic": True, **info, "note": "made-up data written by movierec "
                       "(movierec datasets synthesize); not GroupLens data"}, indent=1)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def synthetic_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a synthetic release folder; ``{}`` when the file is there but unreadable
    (the folder is still synthetic), ``None`` for a folder without one."""
    path = Path(folder) / SYNTHETIC_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def display_name(name: str, folder: str | Path) -> str:
    """``name`` as the dataset should be called: unchanged for a real release, else with
    ``(synthetic[ PRESET], seed N)`` appended (the preset only when it differs from ``name``)."""
    info = synthetic_marker(folder)
    if info is None or SYNTHETIC_TAG in name:
        return name
    preset, seed = info.get("preset"), info.get("seed")
    parts = [SYNTHETIC_TAG + (f" {preset}" if preset and preset != name else "")]
    if seed is not None:
        parts.append(f"seed {seed}")
    return f"{name} ({', '.join(parts)})"


def is_synthetic_name(name: str) -> bool:
    """Whether a dataset name (``Dataset.name``, an artifact's dataset) is a synthetic one's."""
    return f"({SYNTHETIC_TAG}" in name


def release_name(name: str) -> str:
    """The folder / release name behind a display name: ``"ml-1m (synthetic, seed 0)"`` ->
    ``"ml-1m"``; a real release's name is returned unchanged."""
    cut = name.find(f" ({SYNTHETIC_TAG}")
    return name if cut < 0 else name[:cut]
