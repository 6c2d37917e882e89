"""Learning curves on disk: a :class:`~movierec.training.history.TrainingHistory` as CSV and PNG.

:func:`save_curve` writes ``<name>.csv`` (one row per epoch, one column per number) and
``<name>.png`` (a line plot, matplotlib's Agg backend, so no display is needed) into a folder;
:func:`read_curve` reads the CSV back. Plotting is optional: the CSV is always written.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from movierec.files import write_atomically
from movierec.training.history import TrainingHistory

__all__ = ["read_curve", "save_curve"]


def _safe_name(name: str) -> str:
    """A file-name-safe version of a run name (letters, digits, ``-_.``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "curve"


def save_curve(
    history: TrainingHistory, folder: str | Path, plot: bool = True
) -> tuple[Path, Path | None]:
    """Write ``history`` as ``<folder>/<name>.csv`` and, with ``plot``, ``<folder>/<name>.png``.

    The CSV has a column ``epoch``, one column per number the history recorded (empty where an
    epoch lacks it) and a last column ``best`` (1 on the selected epoch). Files are written to a
    temporary name and renamed, so a reader never sees half a file. Returns
    ``(csv_path, png_path or None)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _safe_name(history.name)
    series = history.series()
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["epoch", *series, "best"])
    for k, row in enumerate(history.epochs):
        values = ["" if math.isnan(v[k]) else f"{v[k]:.6f}" for v in series.values()]
        w.writerow([int(row["epoch"]), *values, int(row["epoch"] == history.best_epoch)])
    csv_path = folder / f"{stem}.csv"
    text = out.getvalue()
    write_atomically(csv_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    png_path = _plot(history, series, folder / f"{stem}.png") if plot and len(history) else None
    return csv_path, png_path


def _plot(history: TrainingHistory, series: dict[str, list[float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a Figure without pyplot keeps no global state

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    epochs = [int(r["epoch"]) for r in history.epochs]
    for label, values in series.items():
        if any(not math.isnan(v) for v in values):
            ax.plot(epochs, values, marker=".", label=label)
    if history.best_epoch:
        ax.axvline(history.best_epoch, color="grey", linestyle="--", linewidth=1,
                   label=f"selected epoch {history.best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_title(history.name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))


def read_curve(csv_path: str | Path) -> TrainingHistory:
    """Read a CSV written by :func:`save_curve` back into a :class:`TrainingHistory` (named
    after the file; ``monitor`` and ``mode`` are not stored)."""
    csv_path = Path(csv_path)
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    labels = header[1:-1]
    history = TrainingHistory(name=csv_path.stem)
    for row in body:
        history.add(**{k: float(v) for k, v in zip(labels, row[1:-1], strict=True) if v})
        if row[-1] == "1":
            history.best_epoch = int(row[0])
    return history
