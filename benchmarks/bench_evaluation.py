"""Evaluation speed: P2 (full ranking, every metric) at ML-1M scale and P1 on ML-100K.

    python benchmarks/bench_evaluation.py [--data ../shared/data] [--repeat 3]

Targets: P2 <= 3 s for an MF-style model (64 factors, ``score_all = U @ V.T``) on an ML-1M-shaped
synthetic leave-one-out split (6,040 users x 3,706 items, ~1M ratings); P1 on the ML-100K fixed
files <= 0.5 s. Prints the best of ``--repeat`` wall times, the machine's cores and the thread
counts the BLAS / OpenMP pools run with (set ``OPENBLAS_NUM_THREADS`` to change them).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

from movierec.data.dataset import Dataset
from movierec.data.splits import leave_one_out, load_fixed_loo
from movierec.evaluation.protocols import evaluate_p1, evaluate_p2

REPO = Path(__file__).resolve().parents[1]
GENRES = [f"g{j}" for j in range(18)]


class MatrixFactorization:
    """Scores ``U @ V.T`` from given factor matrices (what a trained MF model evaluates like)."""

    name = "mf-random"

    def __init__(self, n_users: int, n_items: int, dim: int = 64, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.user_factors_ = rng.standard_normal((n_users, dim), dtype=np.float32)
        self.item_factors_ = rng.standard_normal((n_items, dim), dtype=np.float32)

    def score(self, user_idx, item_idx):
        return np.einsum("ij,ij->i", self.user_factors_[user_idx], self.item_factors_[item_idx])

    def score_all(self, user_idx):
        return self.user_factors_[user_idx] @ self.item_factors_.T


class Popularity:
    """Most popular: score = number of train users of the item."""

    name = "popularity"

    def __init__(self, train: Dataset):
        self.counts = train.item_counts.astype(np.float32)

    def score(self, user_idx, item_idx):
        return self.counts[item_idx]

    def score_all(self, user_idx):
        return np.tile(self.counts, (len(user_idx), 1))


def ml1m_shaped(seed: int = 0, n_users: int = 6040, n_items: int = 3706,
                n_ratings: int = 1_000_209) -> Dataset:
    """ML-1M-shaped random ratings: >= 20 per user, heavy-tailed users, power-law items."""
    rng = np.random.default_rng(seed)
    per_user = 20 + rng.lognormal(0.0, 1.2, n_users)
    per_user = np.minimum(per_user / per_user.sum() * n_ratings, n_items // 2).astype(np.int64)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_p /= item_p.sum()
    users = np.repeat(np.arange(n_users), (per_user * 1.42).astype(np.int64))
    items = rng.choice(n_items, size=len(users), p=item_p)
    keys = np.unique(users.astype(np.int64) * n_items + items)  # one rating per (user, item)
    u, i = keys // n_items, keys % n_items
    ratings = pl.DataFrame({
        "user_id": u + 1, "item_id": rng.permutation(n_items)[i] + 1,
        "rating": rng.integers(1, 6, len(u)).astype(np.float32),
        "timestamp": rng.integers(956_703_932, 1_046_454_590, len(u)),
    })
    genre_sets = rng.random((n_items, len(GENRES))) < 0.1
    items_df = pl.DataFrame({
        "item_id": np.arange(1, n_items + 1),
        "genres": [[g for g, on in zip(GENRES, row, strict=True) if on] for row in genre_sets],
    }, schema_overrides={"genres": pl.List(pl.String)})
    return Dataset.from_frames("ml-1m-shaped", ratings, items_df)


def fixed_ml100k(data: Path):
    """The fixed ML-100K P1 split, over a Dataset built from its own ratings."""
    cols = {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float32,
            "timestamp": pl.Int64}
    folder = data / "eval" / "ml-100k"
    frames = [pl.read_csv(folder / f, separator="\t", has_header=False, new_columns=list(cols),
                          schema_overrides=cols) for f in ("loo_train.tsv", "loo_test.tsv")]
    return load_fixed_loo(Dataset.from_frames("ml-100k", pl.concat(frames)), folder)


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def machine() -> str:
    from threadpoolctl import threadpool_info

    pools = ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"numpy {np.__version__}, threads: {pools or 'none loaded'}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    split = leave_one_out(ml1m_shaped())
    build = time.perf_counter() - t0
    mf = MatrixFactorization(split.train.n_users, split.train.n_items)
    print(f"machine: {machine()}")
    print(f"ml-1m-shaped LOO: {split!r} (built in {build:.1f} s)")
    secs, res = best_of(args.repeat, lambda: evaluate_p2(mf, split))
    print(f"P2 mf-64  full ranking + all metrics: {secs:.2f} s (target <= 3 s)  "
          + " ".join(f"{k}={v:.4f}" for k, v in res.items()))

    if (args.data / "eval" / "ml-100k").exists():
        fixed = fixed_ml100k(args.data)
        pop = Popularity(fixed.train)
        secs, res = best_of(args.repeat, lambda: evaluate_p1(pop, fixed))
        print(f"P1 popularity ml-100k fixed files: {secs:.3f} s (target <= 0.5 s)  "
              + " ".join(f"{k}={v:.4f}" for k, v in res.items()))
        mf100 = MatrixFactorization(fixed.train.n_users, fixed.train.n_items)
        secs, _ = best_of(args.repeat, lambda: evaluate_p1(mf100, fixed))
        print(f"P1 mf-64 ml-100k fixed files: {secs:.3f} s (target <= 0.5 s)")
    else:
        print(f"P1 skipped: no fixed files under {args.data / 'eval'}")


if __name__ == "__main__":
    main()
