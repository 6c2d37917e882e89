"""Hyper-parameter search for a `movierec train` config on the validation item only.

Each user's last train interaction (the second-to-last overall under leave-one-out) becomes a
validation item; every grid point is fitted on what remains of train and scored on those items,
P1-style (99 sampled unrated items, ``--negative-sets`` different draws averaged) and P2-style
(full ranking). The test item is never loaded into a model or a metric. Prints one JSON object per
(grid point, seed), then a table sorted by ``--metric``.

    .venv/bin/python benchmarks/tune_ncf.py configs/neumf-ml-latest-small.yaml \\
        --data-dir ../shared/data --set negative_exponent=0,0.5 --set epochs=1,2 --seeds 0,1

``--set key=v1,v2`` values are YAML (``--set layers=[64,32],[128,64]`` needs quoting: use ``;``
between values that hold commas: ``--set "layers=[64,32];[128,64]"``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import yaml

from movierec.machine import machine_info


def parse_set(text: str) -> tuple[str, list]:
    """``key=v1,v2`` (or ``key=v1;v2`` when values hold commas) -> ``(key, [v1, v2])``."""
    key, _, values = text.partition("=")
    if not key or not values:
        raise SystemExit(f"--set {text!r}: expected key=value[,value...]")
    sep = ";" if ";" in values else ","
    return key.strip(), [yaml.safe_load(v) for v in values.split(sep)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", action="append", default=[], dest="sets",
                        help="key=v1,v2: a grid axis over the config's model params")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--negative-sets", type=int, default=3,
                        help="P1 validation: average over this many seeded draws of 99 negatives")
    parser.add_argument("--metric", default="p2_NDCG@10",
                        help="sort key: p1_HR@10, p1_NDCG@10, p2_HR@10, p2_NDCG@10, ...")
    args = parser.parse_args()

    from movierec.config import TrainConfig, load_config
    from movierec.data.loading import load_dataset
    from movierec.data.splits import prepare_split, with_validation
    from movierec.evaluation.compare import build
    from movierec.evaluation.protocols import evaluate_p1, evaluate_p2

    cfg = load_config(args.config, TrainConfig)
    data_dir = args.data_dir or cfg.data_dir
    full = load_dataset(cfg.dataset, data_dir)
    base = prepare_split(full, data_dir, "fixed")
    # the same validation items (each user's last train one), other draws of their negatives
    splits = [with_validation(base, method="last", n_negatives=99, seed=s)
              for s in range(args.negative_sets)]
    split = splits[0]
    axes = [parse_set(s) for s in args.sets]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for values in itertools.product(*(v for _, v in axes)):
        point = dict(zip((k for k, _ in axes), values, strict=True))
        params = {**cfg.model.params, **point}
        for seed in seeds:
            model = build(cfg.model, params, seed)
            t0 = time.perf_counter()
            model.fit(split.train, options=cfg.run)
            fit_s = time.perf_counter() - t0
            row: dict = {"point": point, "seed": seed, "fit_s": round(fit_s, 1)}
            p1 = [evaluate_p1(model, one, part="valid") for one in splits]
            for key in ("HR@10", "NDCG@10"):
                row[f"p1_{key}"] = round(sum(m[key] for m in p1) / len(p1), 4)
            p2 = evaluate_p2(model, split, part="valid")
            for key in ("HR@10", "NDCG@10", "Coverage@10", "Diversity@10"):
                row[f"p2_{key}"] = round(p2[key], 4)
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary: dict[str, dict] = {}
    for row in rows:
        key = json.dumps(row["point"])
        s = summary.setdefault(key, {"n": 0})
        s["n"] += 1
        for k, v in row.items():
            if k.startswith(("p1_", "p2_", "fit_s")):
                s[k] = s.get(k, 0.0) + v
    print(f"\n# {cfg.dataset}, base {args.config}, seeds {seeds}, validation item only; "
          f"machine {machine_info()}")
    metrics = [k for k in rows[0] if k.startswith(("p1_", "p2_"))] if rows else []
    print("| point | " + " | ".join(metrics) + " | fit s |")
    print("|---|" + "---|" * (len(metrics) + 1))
    for key, s in sorted(summary.items(), key=lambda kv: -kv[1][args.metric]):
        cells = " | ".join(f"{s[m] / s['n']:.4f}" for m in metrics)
        print(f"| {key} | {cells} | {s['fit_s'] / s['n']:.1f} |")


if __name__ == "__main__":
    main()
