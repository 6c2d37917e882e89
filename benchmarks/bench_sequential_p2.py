"""P2 (leave-one-out, full ranking) of a sequential model over every user of an ML-20M-shaped
release: wall, CPU and peak memory, to show the full sort never holds users x items at once.

    flock /work/wt/heavy.lock python benchmarks/bench_sequential_p2.py --preset ml-20m \
        [--model sasrec] [--max-len 50] [--fit-last 1] [--threads 1]

The release is synthetic (:func:`movierec.data.synthetic.generate`; ML-20M preset: 138,493 users,
26,744 items, 20M ratings), split leave-one-out (each user's last rating is the test item). The
model is fitted through its public ``fit`` on each user's last ``--fit-last`` train ratings only:
with the default 1 no user has a next item to learn, so the epoch takes no step and the network
keeps its **random initial weights**; ``--fit-last 4`` trains one epoch on three targets per user
(about 5 CPU minutes more). The point is the evaluation's cost, not its quality (the metrics are
near chance, printed only as a check that the run is real). The stored sequences are those few
items, but scoring pads every window to ``max_len``, so a fully trained model costs the same to
evaluate. Then :func:`movierec.evaluation.protocols.evaluate_p2` ranks every catalogue
item for every user in blocks of users (``CELLS_PER_BLOCK`` float32 scores per ``score_all``
call; 15 GB of float32 were the 138K x 27K matrix built at once).

Prints one JSON object: the sizes, generation / split / fit / P2 wall and CPU seconds, the RSS
before P2, the peak RSS during P2 (``VmHWM`` after resetting it through ``/proc/self/clear_refs``)
and the process's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), the users per
``score_all`` block and the largest block seen, threads and ``uptime`` load.
Needs the ``seq`` models (``sasrec``/``gru4rec``/``bert4rec``) registered.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def rss_mb(field: str = "VmRSS") -> float:
    """This process's ``field`` line of /proc/self/status in MiB (VmRSS: now; VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Timer:
    def __enter__(self) -> Timer:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = round(time.perf_counter() - self.t0, 2)
        self.cpu = round(time.process_time() - self.c0, 2)


def last_ratings(user_idx: np.ndarray, n: int) -> np.ndarray:
    """``bool`` mask of each user's last ``n`` rows (rows grouped by user, in time order)."""
    counts = np.bincount(user_idx)
    ends = np.cumsum(counts)
    from_end = ends[user_idx] - 1 - np.arange(len(user_idx))
    return from_end < n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ml-20m")
    ap.add_argument("--model", default="sasrec", choices=["sasrec", "gru4rec", "bert4rec"])
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--fit-last", type=int, default=1,
                    help="Train ratings per user the one training epoch sees (1: none to "
                    "learn, random weights).")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from movierec.data.splits import leave_one_out
    from movierec.data.synthetic import generate
    from movierec.evaluation import protocols
    from movierec.models.base import create
    from movierec.options import FitOptions

    out: dict = {"preset": args.preset, "model": args.model, "max_len": args.max_len,
                 "hidden": args.hidden, "threads": args.threads,
                 "load_before": list(os.getloadavg())}
    with Timer() as t:
        ds = generate(args.preset, seed=0).to_dataset()
    out.update(users=ds.n_users, items=ds.n_items, ratings=ds.n_ratings, generate_s=t.wall)
    with Timer() as t:
        split = leave_one_out(ds)
        del ds
    out["split_s"] = t.wall
    fit_on = split.train.subset(last_ratings(split.train.user_idx, args.fit_last))
    params = {"max_len": args.max_len, "hidden": args.hidden, "epochs": 1, "patience": None,
              "holdout": False}
    with Timer() as t:
        model = create(args.model, **params).fit(
            fit_on, options=FitOptions(num_threads=args.threads, progress=False))
    out.update(fit_s=t.wall, fit_cpu_s=t.cpu, fit_ratings=fit_on.n_ratings)
    del fit_on

    blocks: list[int] = []
    score_all = model.score_all

    def counted(user_idx):  # records the block sizes P2 asks for
        blocks.append(len(user_idx))
        return score_all(user_idx)

    model.score_all = counted
    out["rss_before_p2_mb"] = round(rss_mb(), 1)
    out["peak_reset"] = reset_peak_rss()
    with Timer() as t:
        metrics = protocols.evaluate_p2(model, split, args.k)
    out.update(p2_s=t.wall, p2_cpu_s=t.cpu, p2_users=int(sum(blocks)),
               block_users=max(blocks), blocks=len(blocks),
               block_mb=round(max(blocks) * split.train.n_items * 4 / 2**20, 1),
               peak_rss_during_p2_mb=round(rss_mb("VmHWM"), 1),
               peak_rss_process_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                         / 1024, 1),
               **{m: round(metrics[m], 5) for m in (f"HR@{args.k}", f"NDCG@{args.k}")},
               load_after=list(os.getloadavg()))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
