"""The corrupt-file suite at full size (issue 14's bar): 100 seeded offsets per file kind.

    python benchmarks/bench_corrupt_files.py [--release ml-100k] [--offsets 100] [--seed 14]

Builds every file kind movierec writes and reads back from the real release (its dataset cache,
an iALS artifact with its serving catalogue, leave-one-out split files, a text-embedding cache),
flips 8 bytes (seeded masks) at each seeded offset of each file and reads it back as movierec
does. Prints one row per file: recovered (a cache rebuilt with one warning, same result), refused
(a one-line error naming the file), unnoticed but same, silently different and traceback (the
bar: 0 and 0).
``tests/test_corrupt_files.py`` runs a small sample of the same suite in CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import corrupt_suite  # noqa: E402

from movierec.machine import machine_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", default="ml-100k")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MOVIEREC_TEST_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--offsets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    logging_quiet()
    with tempfile.TemporaryDirectory(prefix="movierec-corrupt-") as tmp:
        work = Path(tmp)
        source = work / "data" / args.release
        shutil.copytree(args.data / args.release, source)
        t0 = time.perf_counter()
        kinds = corrupt_suite.build_kinds(source, work)
        results = corrupt_suite.run(kinds, args.offsets, work / "trials", seed=args.seed)
        seconds = time.perf_counter() - t0
    print(f"corrupt-file suite: {args.release}, {args.offsets} offsets x {len(kinds)} files, "
          f"8 bytes flipped each (seeded XOR masks), seed {args.seed}; {seconds:.0f} s")
    print(f"machine: {machine_info()}")
    print(corrupt_suite.table(results))


def logging_quiet() -> None:
    import logging

    logging.getLogger("movierec").propagate = False  # the suite counts the warnings itself


if __name__ == "__main__":
    main()
