"""Pick explicit-model hyper-parameters on validation slices of the ML-100K ``uN.base`` files.

Never reads a ``.test`` file: each fold's ``.base`` is split into a seeded random validation slice
(``--valid-fraction``) and the rest; every grid point trains on the rest, early-stops on the slice
and is scored by its best validation RMSE, averaged over the folds asked for.

    python benchmarks/tune_explicit.py svd-sgd --grid '{"reg": [0.03, 0.05], "factors": [100]}' \
        --folds u1,u2 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--params", default="{}", help="fixed hyper-parameters (JSON)")
    ap.add_argument("--grid", default="{}", help="grid: name -> list of values (JSON)")
    ap.add_argument("--folds", default="u1,u2,u3,u4,u5")
    ap.add_argument("--valid-fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=os.environ.get("MOVIEREC_DATA", "../shared/data"))
    args = ap.parse_args()

    import numpy as np

    from movierec.data.download import ensure_dataset
    from movierec.data.loading import load_dataset
    from movierec.data.splits import ml100k_canonical
    from movierec.models.base import create
    from movierec.models.explicit import holdout

    full = load_dataset("ml-100k", args.data_dir)
    folder = Path(ensure_dataset("ml-100k", args.data_dir))
    bases = {}
    for fold in args.folds.split(","):
        train = ml100k_canonical(full, folder, fold).train  # .test is read but never used
        bases[fold] = holdout(train, args.valid_fraction, args.seed)
    fixed = json.loads(args.params)
    grid = json.loads(args.grid)
    keys = sorted(grid)
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cpus; "
          f"valid fraction {args.valid_fraction}, seed {args.seed}")
    rows = []
    for values in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        params = {**fixed, **dict(zip(keys, values, strict=True)), "seed": args.seed}
        scores, epochs, secs = [], [], 0.0
        for rest, valid in bases.values():
            model = create(args.model, **params)
            t0 = time.perf_counter()
            model.fit(rest, valid)
            secs += time.perf_counter() - t0
            histories = model.training_history()
            if histories:
                scores.append(float(np.nanmin(histories[0].series()["valid RMSE"])))
                epochs.append(histories[0].best_epoch)
            else:
                from movierec.evaluation.protocols import evaluate_p3

                scores.append(evaluate_p3(model, rest, valid)["RMSE"])
                epochs.append(0)
        rows.append((float(np.mean(scores)), params, epochs, secs))
        print(f"valid RMSE {np.mean(scores):.4f}  epochs {epochs}  {secs:6.1f}s  "
              f"{json.dumps({k: params[k] for k in keys})}", flush=True)
    best = min(rows, key=lambda r: r[0])
    print(f"best: valid RMSE {best[0]:.4f} {json.dumps(best[1])}")


if __name__ == "__main__":
    main()
