"""Sequential models (issue 17): one fit per seed of a `movierec train` config on the fixed
leave-one-out split, then P1 and P2 of that same fit, and the per-epoch training times.

Target (issue 17): on ml-100k the best sequential model's P2 HR@10 >= 0.19 (RecBole's GRU4Rec CE
0.1750, SASRec CE 0.1633; movierec's best non-sequential model NeuMF 0.1124); on ml-latest-small
above EASE's P2 HR@10 0.0885. Prints one JSON line per seed, then the mean and spread (std).

    .venv/bin/python benchmarks/bench_sequential.py configs/sasrec-ml100k.yaml \\
        --data-dir ../shared/data --seeds 0 1 2 [--set max_len=50] [--epochs-only 3]

``--stage valid`` measures on the validation item instead, never looking at the test item: the
model fits on train minus each user's last train item (which it then early-stops on its own
second-to-last) and P1 / P2 rank that last train item; settings (``--set``) are chosen on this.

``--epochs-only N`` trains N epochs without validation and prints only the epoch times (the
speed figure; ``--set`` gives the size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="change a hyper-parameter (YAML value)")
    ap.add_argument("--epochs-only", type=int, default=0)
    ap.add_argument("--stage", choices=["test", "valid"], default="test",
                    help="valid: fit without each user's last train item and rank it (P1, P2)")
    args = ap.parse_args()

    from movierec.config import TrainConfig, load_config
    from movierec.data.loading import load_dataset
    from movierec.data.splits import prepare_split, with_validation
    from movierec.evaluation.protocols import evaluate_p1, evaluate_p2
    from movierec.models.base import create

    cfg = load_config(args.config, TrainConfig)
    params = dict(cfg.model.params)
    for text in args.set:
        key, value = text.split("=", 1)
        params[key] = yaml.safe_load(value)
    if args.epochs_only:
        params.update(epochs=args.epochs_only, holdout=False)
    full = load_dataset(cfg.dataset, args.data_dir)
    split = prepare_split(full, args.data_dir, cfg.split)
    if args.stage == "valid":
        split = with_validation(split, "last", n_negatives=99)
    rows = []
    for seed in args.seeds:
        model = create(cfg.model.name, **{**params, "seed": seed})
        t0 = time.perf_counter()
        model.fit(split.train, options=cfg.run.model_copy(update={"progress": True}))
        fit_s = time.perf_counter() - t0
        record = model.training_history()[0] if model.training_history() else None
        row = {"model": cfg.model.name, "dataset": cfg.dataset, "seed": seed,
               "fit_s": round(fit_s, 1), "load": os.getloadavg()[0]}
        if record is not None:
            secs = [r["seconds"] for r in record.epochs]
            cpu = [r["cpu seconds"] for r in record.epochs if "cpu seconds" in r]
            best = record.epochs[record.best_epoch - 1] if record.best_epoch else {}
            row.update({k: round(best[k], 4) for k in ("valid HR@10", "valid NDCG@10")
                        if k in best})  # what settings are chosen on (never the test item)
            row.update(epochs=len(record), best_epoch=record.best_epoch,
                       epoch_s_median=round(statistics.median(secs), 2),
                       epoch_s_min=round(min(secs), 2))
            if cpu:  # with num_threads 1: the epoch's cost on an idle core, whatever the load
                row["epoch_cpu_s_median"] = round(statistics.median(cpu), 2)
        if not args.epochs_only:
            part = args.stage  # "valid": the last train item, the model never saw it
            p2, p1 = evaluate_p2(model, split, part=part), evaluate_p1(model, split, part=part)
            row["stage"] = part
            row.update({f"P2 {k}": round(p2[k], 4) for k in ("HR@10", "NDCG@10")})
            row.update({f"P1 {k}": round(p1[k], 4) for k in ("HR@10", "NDCG@10")})
        rows.append(row)
        print(json.dumps(row), flush=True)
    if len(rows) > 1 and not args.epochs_only:
        summary = {k: (round(statistics.mean(r[k] for r in rows), 4),
                       round(statistics.pstdev(r[k] for r in rows), 4))
                   for k in rows[0] if k.startswith(("P1", "P2", "valid"))}
        print("mean, std over seeds:", json.dumps(summary))
        if args.stage == "valid":
            return
        target = 0.19 if cfg.dataset == "ml-100k" else 0.0885
        print(f"target P2 HR@10 >= {target}: "
              f"{'met' if summary['P2 HR@10'][0] >= target else 'NOT met'}")


if __name__ == "__main__":
    main()
