"""Exploratory data analysis: one HTML page with the figures of a MovieLens release.

``write_report(dataset, out)`` for a loaded :class:`~movierec.data.dataset.Dataset`;
``report_dataset(name_or_folder, out, data_dir)`` loads the release first (what ``movierec eda``
runs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from movierec.eda.report import write_report

__all__ = ["report_dataset", "write_report"]


def report_dataset(name_or_folder: str, out: str | Path, data_dir: str | Path | None = None, *,
                   download: bool = True, progress: Callable[[str], None] | None = None,
                   force: bool = False) -> Path:
    """Load a release (name or folder, see :func:`movierec.data.loading.load_dataset`) and write
    its EDA report into ``out``; returns the path of ``index.html``. ``out`` is checked first
    (:func:`movierec.eda.report.check_target`; ``force`` as there)."""
    from movierec.data.loading import input_files, load_dataset
    from movierec.eda.report import check_target

    inputs = tuple(input_files(name_or_folder, data_dir))
    check_target(out, force=force, inputs=inputs)
    ds = load_dataset(name_or_folder, data_dir, download=download)
    return write_report(ds, out, progress=progress, force=force, inputs=inputs)
