"""LightGCN time to quality: training time of a config's LightGCN on the fixed P1 files, then its
P1 HR@10, against RecBole's LightGCN on the same files.

Target (issue 18): RecBole's quality (P1 HR@10 0.6165 on ml-100k, 0.7497 on ml-latest-small)
within noise, in at most a fifth of its training time (140 s and 134 s here): 28 s / 27 s. The
clock covers ``fit`` (graph, training with early stopping on each user's last train
interaction, final propagation), as RecBole's training time does; data loading and torch's
import are not timed (torch is imported before the clock starts). Wall time on a shared
machine depends on the load: the process CPU seconds of the fit and the load average are
printed beside it. One JSON object per seed.

    .venv/bin/python benchmarks/bench_lightgcn_time_to_quality.py --data-dir ../shared/data \\
        --config configs/lightgcn-ml100k.yaml --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from movierec.config import TrainConfig, load_config
from movierec.data.splits import prepare_split
from movierec.evaluation.protocols import evaluate_p1, evaluate_p2
from movierec.machine import machine_info
from movierec.models.base import create
from movierec.options import FitOptions

ROOT = Path(__file__).resolve().parents[1]
RECBOLE = {"ml-100k": (0.6165, 140.0), "ml-latest-small": (0.7497, 134.0)}
"""RecBole LightGCN on the fixed files, measured here: (P1 HR@10, training seconds)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "lightgcn-ml100k.yaml"))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch  # imported before any clock starts

    from movierec.data.loading import load_dataset

    cfg = load_config(args.config, TrainConfig)
    full = load_dataset(cfg.dataset, args.data_dir)
    split = prepare_split(full, args.data_dir, cfg.split)
    torch.set_num_threads(args.threads)
    hr_target, recbole_s = RECBOLE.get(cfg.dataset, (float("nan"), float("nan")))
    for seed in (int(s) for s in args.seeds.split(",")):
        model = create(cfg.model.name, **{**cfg.model.params, "seed": seed})
        load_before = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(split.train, options=FitOptions(num_threads=args.threads))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        p1, p2 = evaluate_p1(model, split), evaluate_p2(model, split)
        history = model.training_history()[0]
        print(json.dumps({
            "benchmark": "lightgcn_time_to_quality", "config": str(args.config),
            "dataset": cfg.dataset, "seed": seed, "fit_seconds": round(seconds, 1),
            "fit_cpu_seconds": round(cpu, 1), "epochs": len(history),
            "best_epoch": history.best_epoch, "HR@10": round(p1["HR@10"], 4),
            "NDCG@10": round(p1["NDCG@10"], 4), "P2 HR@10": round(p2["HR@10"], 4),
            "target_seconds": round(recbole_s / 5, 1), "target_HR@10": hr_target,
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "machine": machine_info(),
        }), flush=True)


if __name__ == "__main__":
    main()
