"""The fault-injection suite at full size (issue 14's bar): 50 seeded SIGKILLs per case.

    python benchmarks/bench_faults.py [--trials 50] [--seed 14] [--case NAME ...]

Cases: download (throttled local HTTP server, --force over an older copy), artifact save, eda,
dataset cache (first parse of a release), train (movierec train --out over an older artifact).
Each kill lands at a seeded moment drawn uniformly from [0, 1.1 x the operation's duration]; the
output must then be the old one or the new one, whole, with the user's file beside it intact, and
the next run must succeed and leave no temporary file. Prints one row per case: how many kills
left the old output, the new one (or none, for a first write), and the failures (the bar: 0).
``tests/test_fault_injection.py`` runs two kills per case in CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import fault_suite  # noqa: E402

from movierec.machine import machine_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--case", action="append", choices=list(fault_suite.CASES))
    args = parser.parse_args()
    import logging
    import os

    logging.getLogger("movierec").propagate = False
    results = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="movierec-faults-") as tmp:
        os.environ["MOVIEREC_CACHE"] = str(Path(tmp) / "cache")
        for name in args.case or list(fault_suite.CASES):
            results[name] = fault_suite.run_case(name, args.trials, Path(tmp) / name,
                                                 seed=args.seed)
            print(f"  {name}: done", file=sys.stderr, flush=True)
    print(f"fault-injection suite: {args.trials} SIGKILLs per case, seed {args.seed}; "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"machine: {machine_info()}")
    print(fault_suite.table(results, args.trials))


if __name__ == "__main__":
    main()
