"""EDA report speed: the whole ``movierec eda`` page for one release.

    python benchmarks/bench_eda.py [ml-latest-small] [--data-dir ../shared/data] [--repeat 3]

Target: ml-latest-small <= 20 s. Loads the release once (timed apart, since the Parquet cache
makes later loads fast), then writes the report ``--repeat`` times into a temporary folder and
prints the best wall time and its CPU time, per figure too; also prints the machine's cores and
its load average, since other processes on the machine stretch wall time (CPU time does not).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", nargs="?", default="ml-latest-small")
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    from movierec.data.loading import load_dataset
    from movierec.eda import write_report

    ds = load_dataset(args.dataset, args.data_dir)
    print(f"{ds!r}: import + load {time.perf_counter() - t0:.2f} s")

    best = None
    for _ in range(args.repeat):
        marks: list[tuple[str, float, float]] = []

        def mark(msg: str, marks=marks) -> None:
            marks.append((msg, time.perf_counter(), time.process_time()))

        with tempfile.TemporaryDirectory() as tmp:
            w, c = time.perf_counter(), time.process_time()
            write_report(ds, Path(tmp) / "report", progress=mark)
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            marks.append(("end", w + wall, c + cpu))
        if best is None or wall < best[0]:
            best = (wall, cpu, marks)

    wall, cpu, marks = best
    print(f"report: {wall:.2f} s wall, {cpu:.2f} s CPU (best of {args.repeat}); "
          f"{len(marks) - 1} figures")
    for (msg, w0, c0), (_, w1, c1) in zip(marks, marks[1:], strict=False):
        print(f"  {w1 - w0:5.2f} s wall {c1 - c0:5.2f} s CPU  {msg.split(': ', 1)[-1]}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, load average {load[0]:.1f}")


if __name__ == "__main__":
    main()
