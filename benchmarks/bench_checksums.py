"""What the checksums cost: reading a parsed dataset cache back with and without verifying its
SHA256SUMS, on ml-latest-small and on a large synthetic release.

    python benchmarks/bench_checksums.py [--large-ratings 5000000] [--repeat 5]

The cache goes to a temporary folder. "verified" is what load_dataset does on a cache hit (hash
every file's bytes once, then read and check the tables); "unverified" is the same without the
hashing (what it did before checksums).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from movierec.machine import machine_info

REPO = Path(__file__).resolve().parents[1]


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(source: Path, repeat: int) -> str:
    from movierec.checksums import sha256_file
    from movierec.data import loading
    from movierec.data.dataset import Dataset

    ds = loading.load_dataset(source)
    target = loading.cache_path(source, ds.name)
    size = sum(p.stat().st_size for p in target.iterdir())
    files = [p for p in target.iterdir() if p.suffix in (".parquet", ".json", ".npz")]
    verified = _median(lambda: loading._read_cache(target, ds.name), repeat)
    plain = _median(lambda: loading._check_consistent(Dataset.load(target), ds.name), repeat)
    hashing = _median(lambda: [sha256_file(p) for p in files], repeat)
    write = _median(lambda: loading._write_cache(ds, target), max(1, repeat // 2))
    return (f"{ds.name}: {ds.n_ratings:,} ratings, cache {size / 1e6:.1f} MB | read verified "
            f"{verified * 1000:.0f} ms, unverified {plain * 1000:.0f} ms (+"
            f"{(verified - plain) * 1000:.0f} ms, {(verified / plain - 1) * 100:.0f}%) | SHA-256 "
            f"alone {hashing * 1000:.0f} ms ({size / 1e6 / hashing:.0f} MB/s) | cache write "
            f"(with checksums) {write * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MOVIEREC_TEST_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--large-ratings", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="movierec-sums-") as tmp:
        os.environ["MOVIEREC_CACHE"] = str(Path(tmp) / "cache")
        print(f"machine: {machine_info()}")
        print(measure(args.data / "ml-latest-small", args.repeat), flush=True)
        from movierec.data.release_writer import write_release
        from movierec.data.synthetic import generate

        n = args.large_ratings
        t0 = time.perf_counter()
        big = write_release(generate(n_users=max(1000, n // 150), n_items=max(2000, n // 400),
                                     n_ratings=n, seed=0), Path(tmp) / "large", "csv")
        print(f"(synthetic release of {n:,} ratings written in {time.perf_counter() - t0:.0f} s)",
              file=sys.stderr)
        print(measure(big, args.repeat))


if __name__ == "__main__":
    main()
