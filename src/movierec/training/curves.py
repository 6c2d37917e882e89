"""Learning curves: train and validation error per epoch, written as CSV and PNG.

Every iterative model records a :class:`LearningCurve` while it trains; :func:`save_curve` writes
``<name>.csv`` (one row per epoch) and ``<name>.png`` (a line plot, matplotlib's Agg backend, so no
display is needed) into a folder. Plotting is optional: the CSV is always written.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LearningCurve", "read_curve", "save_curve"]


@dataclass
class LearningCurve:
    """Error per epoch of one training run.

    Attributes:
        name: run name, used for the file names (``"svd-sgd-u1"``).
        metric: what the values measure (``"RMSE"``).
        epochs: 1-based epoch numbers.
        train: metric on the training ratings after each epoch.
        valid: metric on the validation ratings after each epoch (NaN where there was none).
        best_epoch: the epoch selected on validation (0: none selected).
    """

    name: str
    metric: str = "RMSE"
    epochs: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    best_epoch: int = 0

    def add(self, epoch: int, train: float, valid: float | None = None) -> None:
        """Record one epoch."""
        self.epochs.append(int(epoch))
        self.train.append(float(train))
        self.valid.append(float("nan") if valid is None else float(valid))

    def __len__(self) -> int:
        return len(self.epochs)


def _safe_name(name: str) -> str:
    """A file-name-safe version of a run name (letters, digits, ``-_.``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "curve"


def save_curve(
    curve: LearningCurve, folder: str | Path, plot: bool = True
) -> tuple[Path, Path | None]:
    """Write ``curve`` as ``<folder>/<name>.csv`` and, with ``plot``, ``<folder>/<name>.png``.

    The CSV has columns ``epoch, train_<metric>, valid_<metric>`` (empty where no validation) and
    a last column ``best`` (1 on the selected epoch). Files are written to a temporary name and
    renamed, so a reader never sees half a file. Returns ``(csv_path, png_path or None)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _safe_name(curve.name)
    csv_path = folder / f"{stem}.csv"
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".csv", dir=folder)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["epoch", f"train_{curve.metric}", f"valid_{curve.metric}", "best"])
        for e, tr, va in zip(curve.epochs, curve.train, curve.valid, strict=True):
            w.writerow([e, f"{tr:.6f}", "" if math.isnan(va) else f"{va:.6f}",
                        int(e == curve.best_epoch)])
    os.replace(tmp, csv_path)
    png_path = _plot(curve, folder / f"{stem}.png") if plot and len(curve) else None
    return csv_path, png_path


def _plot(curve: LearningCurve, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a Figure without pyplot keeps no global state

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    ax.plot(curve.epochs, curve.train, marker=".", label=f"train {curve.metric}")
    if any(not math.isnan(v) for v in curve.valid):
        ax.plot(curve.epochs, curve.valid, marker=".", label=f"validation {curve.metric}")
    if curve.best_epoch:
        ax.axvline(curve.best_epoch, color="grey", linestyle="--", linewidth=1,
                   label=f"selected epoch {curve.best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(curve.metric)
    ax.set_title(curve.name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path


def read_curve(csv_path: str | Path) -> LearningCurve:
    """Read a CSV written by :func:`save_curve` back into a :class:`LearningCurve`."""
    csv_path = Path(csv_path)
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    metric = header[1].removeprefix("train_")
    curve = LearningCurve(name=csv_path.stem, metric=metric)
    for row in body:
        curve.add(int(row[0]), float(row[1]), float(row[2]) if row[2] else None)
        if row[3] == "1":
            curve.best_epoch = int(row[0])
    return curve
