"""Wall time of loading ml-latest-small: parsing the files, and reading the parsed cache back.

    python benchmarks/bench_load_small.py [FOLDER] [--repeat N]

FOLDER defaults to ../shared/data/ml-latest-small (or $MOVIEREC_TEST_DATA/ml-latest-small).
The cache goes to a temporary folder that is removed afterwards. Target: both under 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from movierec.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]


def _timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def _line(label: str, times: list[float]) -> str:
    return (f"{label:<34} median {statistics.median(times):.3f} s   min {min(times):.3f} s   "
            f"max {max(times):.3f} s   ({len(times)} runs)")


def main() -> None:
    default = Path(os.environ.get("MOVIEREC_TEST_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=default / "ml-latest-small")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="movierec-bench-cache-") as cache:
        os.environ["MOVIEREC_CACHE"] = cache
        import polars as pl

        from movierec.data.loading import load_dataset
        from movierec.data.readers import read_folder

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"machine: {cpu_model()}, {cores} cores usable ({os.cpu_count()} present), "
              f"{platform.system()} {platform.machine()}")
        print(f"python {platform.python_version()}, polars {pl.__version__} "
              f"({pl.thread_pool_size()} threads)")
        print(f"folder: {args.folder}")

        read_folder(args.folder)  # warm the imports and the OS file cache
        parse_times, ds = _timed(lambda: read_folder(args.folder), args.repeat)
        print(f"dataset: {ds!r}")
        print(_line("files -> Dataset (no cache)", parse_times))

        t0 = time.perf_counter()
        load_dataset(args.folder)
        print(f"{'first load_dataset (parse + write)':<34} {time.perf_counter() - t0:.3f} s")
        cached_times, cached = _timed(lambda: load_dataset(args.folder), args.repeat)
        assert cached.fingerprint == ds.fingerprint, "cache returned different data"
        print(_line("load_dataset from the cache", cached_times))
        worst = max(statistics.median(parse_times), statistics.median(cached_times))
        print(f"target <= 1 s: {'met' if worst <= 1.0 else 'NOT met'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
