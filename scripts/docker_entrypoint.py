"""The Docker image's first process: ``movierec`` with SIGTERM honoured from its first instant.

The kernel drops a signal that PID 1 has no handler for, and Python installs none for SIGTERM,
so a ``docker stop`` that came while the server was still loading its model was lost: the
container ran on until the SIGKILL 10 s later. Here SIGTERM exits at once until uvicorn, once
serving, puts its own graceful handler in place (and hands the signal back on its way out).
"""

import signal
import sys


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


signal.signal(signal.SIGTERM, _stop)

from movierec.cli import main  # noqa: E402  (after the handler: imports take seconds)

sys.argv[0] = "movierec"
sys.exit(main())
