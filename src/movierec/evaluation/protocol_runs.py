"""`movierec compare` and `evaluate` for the protocols with their own splits: P4 and P5.

P1/P2 share one leave-one-out split (``compare.run_model``); P4 holds whole users out and P5
holds out a share of every user's ratings, so each builds its own split and its own validation:

- P4: when a model has a grid, a seeded ``fraction`` of the *training* users is held out again
  (seed ``validation.seed``) and each grid point is fitted on the rest and scored by P4 on them;
  the winner has the best mean of ``validation.metric`` over the ``n`` values. The test users are
  never seen before the final evaluation.
- P5: when a model has a grid, the same per-user holdout is applied to the train part (seed
  ``validation.seed``); grid points are scored by P5 on that validation part.

A model without a grid (``grid: {}`` or fixed params) is fitted once per seed with its config's
hyper-parameters, as every other protocol does.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from movierec.config import HoldoutSpec, ModelSpec, P4Spec, ValidationSpec
from movierec.data.dataset import Dataset
from movierec.errors import EvaluationError
from movierec.evaluation.compare import (
    GridPoint,
    Progress,
    RunResult,
    build,
    grid_points,
    learning_curves,
    model_class,
    takes_seed,
)
from movierec.options import FitOptions

HOLDOUT = "holdout"
ALIASES = {"p5": HOLDOUT}


def protocol_name(name: str) -> str:
    """The canonical name of a protocol (``p5`` is ``holdout``)."""
    return ALIASES.get(name.lower(), name.lower())


# ---------------------------------------------------------------------- one model, one protocol
def p4_metrics(model, split, spec: P4Spec) -> dict[str, Any]:
    """``{"rows": one dict per n, "vae": the Mult-VAE form or None}`` for a fitted model."""
    from movierec.evaluation.newuser import evaluate_p4, evaluate_p4_vae

    return {"rows": evaluate_p4(model, split, spec.n),
            "vae": evaluate_p4_vae(model, split) if spec.vae else None}


def holdout_metrics(model, split, spec: HoldoutSpec) -> dict[str, float]:
    from movierec.evaluation.holdout import evaluate_holdout

    return evaluate_holdout(model, split, spec.k, ks=(10,) if spec.k != 10 else ())


def p4_split(full: Dataset, spec: P4Spec):
    from movierec.evaluation.newuser import hold_out_users

    return hold_out_users(full, spec.fraction, spec.seed)


def holdout_split(full: Dataset, spec: HoldoutSpec):
    from movierec.evaluation.holdout import holdout_split as split_of

    return split_of(full, spec.ratio, spec.method, spec.seed)


# ---------------------------------------------------------------------- selection
def _select(spec: ModelSpec, fit_on: Dataset, score, metric: str, seed: int,
            progress: Progress | None, options: FitOptions | None = None
            ) -> tuple[dict[str, Any], list[GridPoint]]:
    points = grid_points(spec)
    if len(points) == 1:
        return points[0], []
    tried = []
    for params in points:
        model = build(spec, params, seed)
        t0 = time.perf_counter()
        model.fit(fit_on, options=options)
        fit_s = time.perf_counter() - t0
        value = score(model)
        tried.append(GridPoint(params, value, fit_s))
        if progress:
            progress(f"{spec.display_name} {params}: valid {metric} {value:.4f}")
    return max(tried, key=lambda g: g.score).params, tried


def _metric(values: dict[str, float], metric: str, where: str) -> float:
    if metric not in values:
        raise EvaluationError(f"validation metric {metric!r} is not measured by {where}; "
                              f"choose one of {sorted(values)}")
    return float(values[metric])


def select_p4(spec: ModelSpec, split, p4: P4Spec, validation: ValidationSpec,
              seed: int, progress: Progress | None = None, options: FitOptions | None = None):
    """Grid search on new users carved from the training users (see the module docstring)."""
    from movierec.evaluation.newuser import evaluate_p4, hold_out_users

    if len(grid_points(spec)) == 1:
        return grid_points(spec)[0], []
    inner = hold_out_users(split.train, p4.fraction, validation.seed)

    def score(model):
        rows = [r for r in evaluate_p4(model, inner, p4.n) if r["users"]]
        return float(np.mean([_metric(r, validation.metric, "P4") for r in rows]))

    return _select(spec, inner.train, score, validation.metric, seed, progress, options)


def select_holdout(spec: ModelSpec, split, holdout: HoldoutSpec, validation: ValidationSpec,
                   seed: int, progress: Progress | None = None,
                   options: FitOptions | None = None):
    """Grid search on a per-user holdout of the train part (see the module docstring)."""
    from movierec.evaluation.holdout import validation_split

    if len(grid_points(spec)) == 1:
        return grid_points(spec)[0], []
    inner = validation_split(split, holdout.ratio, holdout.method, validation.seed)

    def score(model):
        return _metric(holdout_metrics(model, inner, holdout), validation.metric, "holdout")

    return _select(spec, inner.train, score, validation.metric, seed, progress, options)


# ---------------------------------------------------------------------- compare
def _aggregate(runs: list[dict[str, float]]) -> tuple[dict, dict]:
    keys = list(runs[0])
    values = {k: np.array([r[k] for r in runs], dtype=float) for k in keys}
    return ({k: float(v.mean()) for k, v in values.items()},
            {k: float(v.std()) for k, v in values.items()})


def run_split_protocol(
    protocol: str,
    spec: ModelSpec,
    full: Dataset,
    settings: P4Spec | HoldoutSpec,
    validation: ValidationSpec,
    seeds: list[int],
    progress: Progress | None = None,
    options: FitOptions | None = None,
) -> list[RunResult]:
    """P4 or P5 for one model on one dataset: select, refit per seed, evaluate.

    P4 gives one RunResult per ``n`` (``variant="n=N"``) plus one for the Mult-VAE form
    (protocol ``p4-vae``); P5 gives one RunResult.
    """
    protocol = protocol_name(protocol)
    if protocol == "p4":
        assert isinstance(settings, P4Spec)
        split = p4_split(full, settings)
        params, tried = select_p4(spec, split, settings, validation, seeds[0], progress, options)
    elif protocol == HOLDOUT:
        assert isinstance(settings, HoldoutSpec)
        split = holdout_split(full, settings)
        params, tried = select_holdout(spec, split, settings, validation, seeds[0], progress,
                                       options)
    else:
        raise EvaluationError(f"run_split_protocol handles p4 and holdout, not {protocol!r}")
    run_seeds = seeds if takes_seed(model_class(spec.name)) else seeds[:1]
    outcomes: dict[tuple[str, str], list[dict[str, float]]] = {}
    fit_times: list[float] = []
    eval_times: list[float] = []
    curves: list[dict[str, Any]] = []
    for seed in run_seeds:
        model = build(spec, params, seed)
        t0 = time.perf_counter()
        model.fit(split.train, options=options)
        fit_times.append(time.perf_counter() - t0)
        curves = curves or learning_curves(model)
        t0 = time.perf_counter()
        if isinstance(settings, P4Spec):
            got = p4_metrics(model, split, settings)
            for row in got["rows"]:
                values = {k: float(v) for k, v in row.items() if k != "n"}
                outcomes.setdefault(("p4", f"n={row['n']}"), []).append(values)
            if got["vae"] is not None:
                outcomes.setdefault(("p4-vae", ""), []).append(got["vae"])
        else:
            outcomes.setdefault((HOLDOUT, ""), []).append(holdout_metrics(model, split, settings))
        eval_times.append(time.perf_counter() - t0)
        if progress:
            progress(f"{spec.display_name} {protocol} seed {seed}: fitted in {fit_times[-1]:.1f}s")
    results = []
    for (name, variant), runs in outcomes.items():
        mean, spread = _aggregate(runs)
        results.append(RunResult(
            dataset=full.name, protocol=name, model=spec.display_name, params=params,
            seeds=list(run_seeds), metrics=mean, spread=spread, per_seed=runs,
            train_seconds=float(np.mean(fit_times)), eval_seconds=float(np.mean(eval_times)),
            selection=tried, curves=curves, variant=variant,
        ))
    return results
