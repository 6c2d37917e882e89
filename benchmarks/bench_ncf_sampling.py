"""Training-negative sampling speed: 4 negatives per positive for 1M positives.

Target (issue 4): >= 10M negatives/s, i.e. 4M negatives in <= 0.4 s, each excluding the user's
rated items (``movierec.data.labels.NegativeSampler``). Data: ML-1M-shaped synthetic ratings
(``movierec.data.synthetic``). Prints one JSON object.

    .venv/bin/python benchmarks/bench_ncf_sampling.py
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from movierec.machine import machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from movierec.data.labels import NegativeSampler
    from movierec.data.synthetic import generate

    ds = generate("ml-1m", seed=args.seed).to_dataset()
    t0 = time.perf_counter()
    sampler = NegativeSampler.from_dataset(ds)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        neg = sampler.sample(ds.user_idx, args.negatives, rng)
        times.append(time.perf_counter() - t0)
    ok = not sampler.is_rated(np.repeat(ds.user_idx, args.negatives), neg.ravel()).any()
    best = min(times)
    print(json.dumps({
        "benchmark": "ncf_sampling", "positives": ds.n_ratings, "negatives": int(neg.size),
        "build_s": round(build, 3), "best_s": round(best, 3),
        "median_s": round(float(np.median(times)), 3),
        "negatives_per_s": round(neg.size / best), "excludes_rated": ok,
        "target_negatives_per_s": 10_000_000,
        "machine": machine_info(),
    }))


if __name__ == "__main__":
    main()
