"""User x genre similarity tables for an ML-20M-shaped dataset (138,493 users, 20M ratings).

Target (issue 6): <= 10 s for the user x genre similarities on the 2-core machine.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_content_tables.py

The dataset comes from :mod:`movierec.data.synthetic` (preset ``ml-20m``; generation is not
timed). Item vectors: random unit vectors of the text model's width (384; the timing does not
depend on their values) and the binary movie x genre matrix. Timed: everything
:func:`movierec.content.tables.build_genre_tables` does (positive matrix, user embeddings by sparse
matrix product, genre embeddings, user x genre cosine, per-user medians, liked / interacted genre
masks), and the user embeddings alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ml-20m")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from movierec.content.tables import build_genre_tables, user_embeddings
    from movierec.data.synthetic import generate

    t0 = time.perf_counter()
    ds = generate(args.preset, seed=0).to_dataset()
    print(f"generated {ds!r} in {time.perf_counter() - t0:.1f} s (not timed below)")
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((ds.n_items, args.dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    genre_vectors = ds.genre_matrix.toarray()
    _ = ds.genre_matrix, ds.csr  # cached dataset views, as a fitted pipeline would have them

    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for label, vectors in ((f"text-like {args.dim}-d", emb),
                           (f"genre {genre_vectors.shape[1]}-d", genre_vectors)):
        times, emb_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            user_embeddings(ds, vectors)
            emb_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            tables = build_genre_tables(ds, vectors)
            times.append(time.perf_counter() - t0)
        print(f"{label}: user x genre tables {tables.user_genre.shape} best {min(times):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in times)}); user embeddings alone best "
              f"{min(emb_times):.2f} s")


if __name__ == "__main__":
    main()
