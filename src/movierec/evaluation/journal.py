"""The journal of a `movierec compare` run: every finished (dataset, model, protocol group) as
one JSON line in ``<out>/runs.jsonl``, written the moment it finishes.

A comparison of sequential networks over three seeds runs for hours; a killed run, or one more
model added to the config, should not train everything again. ``compare --resume`` reads the
journal and reuses every entry whose *key* matches (the dataset, the model's spec, the split, the
protocols, the seeds, the validation settings and the ``run`` options that change results), so a
changed setting is run again, never silently reused. Several ``compare --models ... --resume``
processes may share one journal (one per core or machine): appends are whole lines under the
output path's :func:`movierec.files.write_lock`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from movierec.errors import MovierecError
from movierec.evaluation.compare import GridPoint, RunResult

__all__ = ["JOURNAL_NAME", "RunJournal", "result_from_dict", "run_key"]

JOURNAL_NAME = "runs.jsonl"
_FORMAT = 1


def run_key(**parts: Any) -> str:
    """A stable digest of everything that decides a run's results (JSON of ``parts``)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def result_from_dict(data: dict[str, Any]) -> RunResult:
    """The :class:`RunResult` that ``dataclasses.asdict`` wrote."""
    fields = dict(data)
    fields["selection"] = [GridPoint(**g) for g in fields.get("selection", [])]
    return RunResult(**fields)


class RunJournal:
    """``<folder>/runs.jsonl``: read with :meth:`load`, extended with :meth:`record`."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / JOURNAL_NAME
        self.entries: dict[str, list[RunResult]] = {}
        self.labels: dict[str, str] = {}
        self.used: list[str] = []  # the keys of this comparison, in order

    def load(self) -> int:
        """Read the journal (a missing one is empty); the last line of a key wins. A line cut
        short by a killed process is skipped; anything else unreadable is an error that names
        the line. Returns the number of entries."""
        if not self.path.exists():
            return 0
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if entry.get("format") != _FORMAT:
                    raise ValueError(f"format {entry.get('format')!r}, expected {_FORMAT}")
                results = [result_from_dict(r) for r in entry["results"]]
            except (ValueError, KeyError, TypeError) as exc:
                if number == len(lines) and not line.endswith("}"):
                    continue  # the last line of a process killed while writing it
                raise MovierecError(
                    f"{self.path}:{number}: not a movierec compare journal line ({exc}); move "
                    "the file away to start afresh, or run without --resume") from None
            self.entries[entry["key"]] = results
            self.labels[entry["key"]] = str(entry.get("label", ""))
        return len(self.entries)

    def run(self, key: str, label: str, compute: Callable[[], Iterable[RunResult]],
            progress: Callable[[str], None] | None = None) -> list[RunResult]:
        """The journal's results for ``key``, or ``compute()``'s, recorded before returning."""
        self.used.append(key)
        if key in self.entries:
            if progress:
                progress(f"{label}: reused from {self.path}")
            return self.entries[key]
        results = list(compute())
        self.record(key, label, results)
        return results

    def record(self, key: str, label: str, results: list[RunResult]) -> None:
        """Append one line for ``key`` (whole, under the path's write lock, flushed to disk)."""
        from movierec.files import write_lock

        line = json.dumps({"format": _FORMAT, "key": key, "label": label,
                           "results": [asdict(r) for r in results]}, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with write_lock(self.path, wait=120.0, what="the compare journal"):
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        self.entries[key] = results
        self.labels[key] = label

    def write_used(self, folder: str | os.PathLike) -> Path:
        """``<folder>/runs.jsonl`` with this comparison's entries only, for the final report
        (so a later ``--resume`` on that folder reuses exactly what the report shows)."""
        path = Path(folder) / JOURNAL_NAME
        with open(path, "w", encoding="utf-8") as handle:
            for key in dict.fromkeys(self.used):
                handle.write(json.dumps({"format": _FORMAT, "key": key, "label": self.labels[key],
                                         "results": [asdict(r) for r in self.entries[key]]},
                                        default=str) + "\n")
        return path
