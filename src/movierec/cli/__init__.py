"""The ``movierec`` command line: thin wrappers that parse options, call the library and print.

One module per group of commands (:mod:`~movierec.cli.datasets`, :mod:`~movierec.cli.runs`,
:mod:`~movierec.cli.apps`, :mod:`~movierec.cli.content`), sharing :mod:`~movierec.cli.common`.
Heavy libraries are imported inside the commands that need them so ``movierec --help`` is quick.
"""

from __future__ import annotations

import os

from rich.markup import escape

from movierec.cli import apps, content, datasets, runs  # noqa: F401  (they register the commands)
from movierec.cli.common import app, err_console
from movierec.errors import MovierecError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: library errors become one red line and exit code 2."""
    # torch's OpenMP threads spin while they wait; on a machine where anything else runs (a
    # server, a second job), that made a training epoch about 3x slower here. Sleeping waiters
    # cost little. Set before torch loads (the commands import it lazily); a user's own wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except MovierecError as e:
        # one line whatever the terminal's width (soft wrap); markup in the message is text
        err_console.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise SystemExit(2) from None
