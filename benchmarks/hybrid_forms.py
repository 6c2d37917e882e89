"""The genre-aware hybrid's forms beside their base NeuMF, chosen on validation, then tested.

``--stage valid`` scores every candidate setting on validation only: P2-style (each user's last
train item held out of the fixed train part, full ranking) and P4-style (the validation people of
``benchmarks/tune_fold_in.py``: a seeded 20% of the P4 training users, held out of a second
model). ``--stage test`` scores the settings named in ``--only`` on P2 (fixed files), P4 (first
n picks of the held-out users; P4 seed 0 as configs/newuser-*.yaml) and P5 (75/25 random holdout,
seed 42, as configs/holdout-ml100k.yaml). One base NeuMF (``--recipe``) is fitted per split and
seed and shared by every setting (the hybrid's base cache); scoring-time settings only change
``content_weight`` / ``content_decay`` on the fitted model.

    .venv/bin/python benchmarks/hybrid_forms.py configs/neumf-ml100k.yaml \\
        --data-dir ../shared/data --stage valid --seeds 0 --out /tmp/hyb/valid-100k.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

BLEND_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)
BLEND_DECAYS = (0.0, 3.0, 10.0)


def candidates(quick: bool) -> dict[str, dict]:
    """label -> hybrid params (on top of the base); the blend grid is weight x decay."""
    out = {"neumf (base)": {"form": "blend", "content_weight": 0.0}}
    for lr, ep in ((3e-4, 1), (1e-3, 3)):
        out[f"a finetune lr={lr:g} ep={ep}"] = {"form": "finetune", "lr": lr, "epochs": ep}
        out[f"b joint lr={lr:g} ep={ep}"] = {"form": "joint", "lr": lr, "epochs": ep}
    for content, w, k in itertools.product(("genre", "text"), BLEND_WEIGHTS, BLEND_DECAYS):
        tag = "c genre" if content == "genre" else "d text"
        out[f"{tag} w={w:g} decay={k:g}"] = {"form": "blend", "content": content,
                                              "content_weight": w, "content_decay": k}
    if quick:
        out = {k: v for k, v in out.items() if v["form"] == "blend"}
    return out


SCORING = ("fold_in_method", "fold_in_shrinkage")
"""The recipe's settings that do not change the weights: applied to a saved base as well."""


def base_source(recipe: dict, train, seed: int, options, folder: str | None) -> dict:
    """The hybrid's base arguments: ``base`` = ``folder/<train>-<fingerprint>-s<seed>`` (fitted with
    the recipe and saved there first when missing), or ``base_params`` without a folder."""
    from pathlib import Path

    from movierec.models.base import create

    if folder is None:
        return {"base_params": recipe}
    path = Path(folder) / f"{train.name.replace('/', '-')}-{train.fingerprint[:8]}-s{seed}"
    if not (path / "model.npz").exists():
        t0 = time.perf_counter()
        create("neumf", **{**recipe, "seed": seed}).fit(train, options=options).save(path)
        print(f"# base {path} fitted in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"base": str(path), "base_params": {k: recipe[k] for k in SCORING if k in recipe}}


def fitted(recipe: dict, params: dict, train, seed: int, options, models: dict,
           folder: str | None):
    """A hybrid for ``params``: blend settings reuse the fitted model of their content."""
    from movierec.models.base import create

    source = base_source(recipe, train, seed, options, folder)
    if params["form"] == "blend":
        key = (train.fingerprint, seed, params.get("content", "genre"))
        if key not in models:
            models[key] = create("hybrid", seed=seed, **source,
                                 **{**params, "content_weight": 1.0}).fit(train, options=options)
        return models[key].set_params(content_weight=params["content_weight"],
                                      content_decay=params.get("content_decay", 0.0))
    return create("hybrid", seed=seed, **source, **params).fit(train, options=options)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", help="the base NeuMF's train config (configs/neumf-*.yaml)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--stage", choices=("valid", "test"), default="valid")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--protocols", default="p2,p4")
    ap.add_argument("--only", default=None, help="labels to run, separated by ';'")
    ap.add_argument("--quick", action="store_true", help="blend settings only")
    ap.add_argument("--n", default="1,3,5")
    ap.add_argument("--out", default=None, help="append one JSON line per result here")
    ap.add_argument("--base-dir", default=None,
                    help="keep each base NeuMF here (<split>-s<seed>) and reuse it across runs")
    ap.add_argument("--bases-only", action="store_true", help="fit the missing bases and stop")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from movierec.config import TrainConfig, load_config
    from movierec.data.loading import load_dataset
    from movierec.data.splits import prepare_split, with_validation
    from movierec.evaluation.holdout import evaluate_holdout, holdout_split
    from movierec.evaluation.newuser import evaluate_p4, hold_out_users
    from movierec.evaluation.protocols import evaluate_p2
    from movierec.machine import machine_info
    from movierec.options import FitOptions

    cfg = load_config(args.recipe, TrainConfig)
    recipe = dict(cfg.model.params)
    options = FitOptions(num_threads=1, progress=False)
    full = load_dataset(cfg.dataset, args.data_dir or cfg.data_dir)
    settings = candidates(args.quick)
    if args.only:
        settings = {k: settings[k] for k in args.only.split(";")}
    ns = [int(x) for x in args.n.split(",")]
    protocols = args.protocols.split(",")
    part = "valid" if args.stage == "valid" else "test"
    print(f"# {cfg.dataset} {args.stage}: {len(settings)} settings; machine {machine_info()}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)

    p2 = prepare_split(full, args.data_dir, "fixed")
    if args.stage == "valid":
        p2 = with_validation(p2, "last")
    p4 = hold_out_users(full, 0.2, 0)
    if args.stage == "valid":
        p4 = hold_out_users(p4.train, 0.2, 1)  # the validation people, as tune_fold_in.py
    p5 = holdout_split(full, 0.25, "random", 42)

    def emit(row: dict) -> None:
        line = json.dumps(row)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")

    seeds = [int(s) for s in args.seeds.split(",")]
    if args.bases_only:
        trains = {"p2": p2.train, "p4": p4.train, "holdout": p5.train}
        for proto, seed in itertools.product(protocols, seeds):
            base_source(recipe, trains[proto], seed, options, args.base_dir)
        return
    for seed in seeds:
        models: dict = {}
        for label, params in settings.items():
            for proto in protocols:
                t0 = time.perf_counter()
                if proto == "p2":
                    m = fitted(recipe, params, p2.train, seed, options, models, args.base_dir)
                    got = {"": evaluate_p2(m, p2, part=part)}
                elif proto == "p4":
                    m = fitted(recipe, params, p4.train, seed, options, models, args.base_dir)
                    got = {f"n={r['n']}": r for r in evaluate_p4(m, p4, ns)}
                else:
                    m = fitted(recipe, params, p5.train, seed, options, models, args.base_dir)
                    got = {"": evaluate_holdout(m, p5)}
                for variant, metrics in got.items():
                    emit({"dataset": cfg.dataset, "stage": args.stage, "seed": seed,
                          "protocol": proto, "variant": variant, "setting": label,
                          "seconds": round(time.perf_counter() - t0, 1),
                          "load": round(os.getloadavg()[0], 1),
                          **{k: (round(v, 5) if isinstance(v, float) else v)
                             for k, v in metrics.items()}})


if __name__ == "__main__":
    main()
