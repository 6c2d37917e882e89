"""Progress of long work: a tqdm bar on a terminal, a plain line every few seconds elsewhere.

No torch here: data, evaluation and training all report through :class:`Progress`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

LINE_EVERY = 5.0
"""Default seconds between two plain progress lines off a terminal (read when a
:class:`Progress` starts, so a test can set it to 0)."""
RATED_UNITS = ("batch", "users")  # units whose plain lines also say the rate and time left


class Progress:
    """Progress of a loop over ``total`` steps: a tqdm bar on a terminal; elsewhere (a log file,
    CI, ``nohup``) a plain line on stderr at most every ``every`` seconds, and at the end."""

    def __init__(self, desc: str, total: int, unit: str = "it", every: float | None = None,
                 done: int = 0, first_after: float | None = None, at_end: bool = True,
                 leave: bool = True):
        """``every``: seconds between plain lines (default :data:`LINE_EVERY`); ``first_after``:
        seconds before the first one (default ``every``); ``at_end``: also print a line when
        ``total`` is reached; ``leave``: keep the bar when closed."""
        every = LINE_EVERY if every is None else every
        self.desc, self.total, self.unit, self.every = desc, total, unit, every
        self.done, self.at_end = done, at_end
        self.started = time.monotonic()
        self.last = self.started - every + (every if first_after is None else first_after)
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, initial=done, leave=leave)

    def update(self, numbers: dict[str, float] | Callable[[], dict[str, float]] | None = None,
               n: int = 1) -> None:
        """Count ``n`` more steps; ``numbers`` (or a callable giving them, called only when a
        line or the bar is drawn) are shown beside the count."""
        self.done += n
        now = time.monotonic()
        due = now - self.last >= self.every or (self.at_end and self.done >= self.total)
        if self.bar is not None:
            self.bar.update(n)
            if numbers is not None and (not callable(numbers) or now - self.last >= 0.5):
                self.last = now
                self.bar.set_postfix(self._shown(numbers), refresh=not callable(numbers))
            return
        if due:
            shown = self._shown(numbers)
            self.last = now
            extra = " ".join(f"{k}={v}" for k, v in shown.items())
            if self.unit in RATED_UNITS and self.done < self.total:  # long work: say when it ends
                rate = self.done / max(1e-9, now - self.started)
                extra = (f"{rate:.1f} {self.unit}/s, ~{(self.total - self.done) / rate:.0f} s left "
                         f"{extra}")
            print(f"{self.desc}: {self.unit} {self.done}/{self.total} "
                  f"({now - self.started:.0f} s) {extra}".rstrip(), file=sys.stderr, flush=True)

    @staticmethod
    def _shown(numbers) -> dict[str, float]:
        numbers = numbers() if callable(numbers) else numbers
        return {k: round(v, 4) for k, v in (numbers or {}).items()
                if k != "epoch" and "seconds" not in k}

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
