"""NCF training throughput (samples/s) on ML-1M-shaped synthetic data, 4 negatives per positive.

Target (issue 4): NeuMF with mf and mlp embeddings 64 and MLP [128, 64] at >= 775,000 samples/s
(5x RecBole 1.2.1's 155,000 on the reference 2-core machine). Also reports the NCF paper's small
setting: 8 predictive factors, MLP [64, 32, 16, 8] in the paper's notation (the 64 is the
concatenated input: 32-dim MLP embeddings, hidden layers [32, 16, 8]).

A sample is one (user, item, label) row; each epoch includes drawing its negatives and shuffling.
Prints one JSON object per setting (wall and CPU time, threads, load average).

    .venv/bin/python benchmarks/bench_ncf_throughput.py --threads 2 --batch-size 32768
    .venv/bin/python benchmarks/bench_ncf_throughput.py --precision bf16-mixed
    .venv/bin/python benchmarks/bench_ncf_throughput.py --fused   # fused Adam, fp32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from movierec.machine import machine_info

SETTINGS = {
    "recbole-size": {"factors": 64, "mlp_factors": 64, "layers": [128, 64]},
    "paper-small": {"factors": 8, "mlp_factors": 32, "layers": [32, 16, 8]},
}


def run(setting: str, dataset, args) -> dict:
    import torch

    from movierec.data.labels import NegativeSampler
    from movierec.training.batches import EpochBuilder
    from movierec.training.loop import FitSettings, Task, train_plain
    from movierec.training.networks import NeuMF

    sizes = SETTINGS[setting]
    sampler = NegativeSampler.from_dataset(dataset)
    builder = EpochBuilder(dataset.user_idx, dataset.item_idx,
                           np.ones(dataset.n_ratings, np.float32), sampler, 4,
                           args.batch_size, seed=0)
    torch.manual_seed(0)
    net = NeuMF(dataset.n_users, dataset.n_items, sizes["factors"], sizes["mlp_factors"],
                sizes["layers"])
    settings = FitSettings(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3,
                           patience=None, num_threads=args.threads, precision=args.precision,
                           device="cpu", fused=args.fused)
    task = Task(net, builder, settings)
    warm = FitSettings(**{**settings.__dict__, "epochs": 1})
    train_plain(Task(NeuMF(dataset.n_users, dataset.n_items, sizes["factors"],
                           sizes["mlp_factors"], sizes["layers"]), builder, warm))
    cpu0, t0 = time.process_time(), time.perf_counter()
    history, _ = train_plain(task)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    samples = builder.samples_per_epoch * len(history.epochs)
    return {
        "benchmark": "ncf_throughput", "setting": setting, **sizes, "model": "neumf",
        "n_users": dataset.n_users, "n_items": dataset.n_items, "n_ratings": dataset.n_ratings,
        "negatives_per_positive": 4, "batch_size": builder.batch_size, "epochs": args.epochs,
        "precision": args.precision, "fused_optimizer": args.fused, "threads": args.threads,
        "samples": samples,
        "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "samples_per_s": round(samples / wall), "samples_per_cpu_s": round(samples / cpu),
        "final_log_loss": round(history.epochs[-1]["train loss"], 4),
        "target_samples_per_s": 775_000 if setting == "recbole-size" else None,
        "machine": machine_info(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32768)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    parser.add_argument("--settings", default="recbole-size,paper-small")
    parser.add_argument("--fused", action="store_true", help="torch's fused Adam kernel")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    args = parser.parse_args()
    from movierec.data.synthetic import generate

    dataset = generate("ml-1m", seed=args.seed).to_dataset()
    for setting in args.settings.split(","):
        print(json.dumps(run(setting, dataset, args)), flush=True)


if __name__ == "__main__":
    main()
