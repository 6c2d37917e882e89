"""P3 benchmark of the explicit rating models: RMSE / MAE on ML-100K ``u1..u5`` (per fold, mean).

Each model is built, fitted on ``uN.base`` (the model picks its epochs on a seeded validation
slice of the base and refits; hyper-parameters come from the config, chosen beforehand by
``benchmarks/tune_explicit.py`` on validation slices) and scored on ``uN.test`` - the same
steps as ``movierec evaluate --protocol p3``. Learning curves go to ``--curves-dir``.

    python benchmarks/bench_explicit.py --config configs/explicit-ml100k.yaml \
        --data-dir ../shared/data
    python benchmarks/bench_explicit.py --models svd-sgd,autorec --folds u1,u2
    python benchmarks/bench_explicit.py --ablation          # neural-side, each side feature off

Prints the machine and thread count; timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

FEATURES = ("age", "gender", "occupation", "genres", "year")


def ablation_specs(base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """neural-side with every side feature, without each one, and without any."""
    rows = [("all side features", dict(base))]
    rows += [(f"- {f}", {**base, f"use_{f}": False}) for f in FEATURES]
    rows.append(("no side features", {**base, **{f"use_{f}": False for f in FEATURES}}))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="a compare config (models: name, label, params)")
    ap.add_argument("--models", help="comma-separated model names (default params)")
    ap.add_argument("--ablation", action="store_true", help="side-feature ablation of "
                    "neural-side (params from --config's neural-side entry when given)")
    ap.add_argument("--folds", default="u1,u2,u3,u4,u5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--curves-dir", default="results/explicit-ml100k/curves")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--data-dir", default=os.environ.get("MOVIEREC_DATA", "../shared/data"))
    args = ap.parse_args()

    import numpy as np
    import torch

    from movierec.config import CompareConfig, ModelSpec, load_config
    from movierec.data.download import ensure_dataset
    from movierec.data.loading import load_dataset
    from movierec.data.splits import ml100k_canonical
    from movierec.evaluation.compare import p3_folds
    from movierec.options import FitOptions

    torch.set_num_threads(args.threads)
    specs: list[ModelSpec] = []
    if args.config:
        specs = list(load_config(args.config, CompareConfig).models)
    if args.models:
        specs += [ModelSpec(name=n) for n in args.models.split(",")]
    if args.ablation:
        base = next((dict(s.params) for s in specs if s.name == "neural-side"), {})
        specs = [ModelSpec(name="neural-side", label=label, params=params)
                 for label, params in ablation_specs(base)]
    if not specs:
        ap.error("give --config, --models or --ablation")

    full = load_dataset("ml-100k", args.data_dir)
    folder = Path(ensure_dataset("ml-100k", args.data_dir))
    folds = args.folds.split(",")
    splits = {f: ml100k_canonical(full, folder, f) for f in folds}
    print(f"# P3, ML-100K {','.join(folds)}; {platform.node()} {platform.processor() or ''} "
          f"{platform.machine()}, {os.cpu_count()} cpus, torch threads {args.threads}, "
          f"seed {args.seed}; timings noisy (shared machine)")
    results = []
    for spec in specs:
        params = dict(spec.params)
        # ablation variants share a name: their curves would collide
        curves = None if args.ablation else args.curves_dir
        per_fold, _ = p3_folds(spec, params, splits, args.seed,
                               options=FitOptions(curves_dir=curves or None))
        for f in per_fold:
            print(f"  {spec.display_name:<22} {f['fold']}: RMSE {f['RMSE']:.4f}  "
                  f"MAE {f['MAE']:.4f}  fit {f['fit_seconds']:6.1f}s  epochs {f['best_epoch']}",
                  flush=True)
        rmse = np.array([f["RMSE"] for f in per_fold])
        mae = np.array([f["MAE"] for f in per_fold])
        results.append({"model": spec.display_name, "name": spec.name, "params": params,
                        "RMSE": float(rmse.mean()), "MAE": float(mae.mean()),
                        "RMSE_std": float(rmse.std()),
                        "fit_seconds": float(sum(f["fit_seconds"] for f in per_fold)),
                        "folds": per_fold})
    print()
    head = " | ".join(folds)
    print(f"| model | {head} | mean RMSE | mean MAE | fit s (all folds) |")
    print("|---" * (len(folds) + 4) + "|")
    ref = results[0]
    for r in results:
        cells = " | ".join(f"{f['RMSE']:.4f}" for f in r["folds"])
        line = (f"| {r['model']} | {cells} | {r['RMSE']:.4f} | {r['MAE']:.4f} | "
                f"{r['fit_seconds']:.0f} |")
        if args.ablation and r is not ref:
            d = np.array([a["RMSE"] - b["RMSE"] for a, b in zip(r["folds"], ref["folds"],
                                                                 strict=True)])
            line += f" diff vs all: {d.mean():+.4f} (fold sd {d.std(ddof=1):.4f})"
        print(line)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": platform.platform(),
                                               "threads": args.threads, "seed": args.seed,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
