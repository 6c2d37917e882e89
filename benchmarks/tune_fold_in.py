"""Choose NeuMF's fold-in shrinkage on validation users only (the P4 test users are never seen).

P4's split (seeded 20% of users held out, ``--split-seed``) leaves the training users; a second
seeded 20% of *those* (``--valid-seed``) are the validation people. A model of ``CONFIG`` is
trained on the rest; each shrinkage is scored by P4 on the validation people (NDCG@10 at every
n), and the one with the best mean over ``--choose-n`` wins.

    .venv/bin/python benchmarks/tune_fold_in.py configs/neumf-ml-latest-small.yaml \\
        --data-dir ../shared/data --shrinkage 0,1,3,10,30,100
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--shrinkage", default="0,1,3,10,30,100")
    ap.add_argument("--n", default="1,3,5,10,20")
    ap.add_argument("--choose-n", default="1,3,5")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--valid-seed", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI: before torch loads

    from movierec.config import TrainConfig, load_config
    from movierec.data.loading import load_dataset
    from movierec.evaluation.newuser import evaluate_p4, hold_out_users
    from movierec.machine import machine_info
    from movierec.models.base import create

    cfg = load_config(args.config, TrainConfig)
    full = load_dataset(cfg.dataset, args.data_dir or cfg.data_dir)
    train_users = hold_out_users(full, 0.2, args.split_seed).train  # the test users left out
    inner = hold_out_users(train_users, 0.2, args.valid_seed)  # validation people among them
    t0 = time.perf_counter()
    model = create(cfg.model.name, **cfg.model.params).fit(inner.train, options=cfg.run)
    print(f"# {cfg.dataset}: trained on {inner.train.n_ratings:,} ratings in "
          f"{time.perf_counter() - t0:.0f} s; machine {machine_info()}")
    ns = [int(x) for x in args.n.split(",")]
    choose = [int(x) for x in args.choose_n.split(",")]
    best = None
    popularity = create("popularity").fit(inner.train)
    rows = {"popularity": evaluate_p4(popularity, inner, ns)}
    for k in (float(x) for x in args.shrinkage.split(",")):
        model.set_params(fold_in_shrinkage=k)
        rows[f"shrinkage {k:g}"] = evaluate_p4(model, inner, ns)
    for label, got in rows.items():
        ndcg = {r["n"]: r["NDCG@10"] for r in got}
        score = float(np.mean([ndcg[n] for n in choose]))
        print(json.dumps({"setting": label, "NDCG@10": {n: round(v, 4) for n, v in ndcg.items()},
                          "choice_score": round(score, 4)}))
        if label != "popularity" and (best is None or score > best[1]):
            best = (label, score)
    print(f"# best on validation: {best[0]} (mean NDCG@10 over n = {args.choose_n}: "
          f"{best[1]:.4f})")


if __name__ == "__main__":
    main()
