"""`movierec compare`: train models on a split, pick hyper-parameters on validation, test.

For each dataset the leave-one-out split is built once (the fixed P1 files when present); a
validation item per user is carved out of train. For each model:

1. every point of its grid is fitted on train-minus-validation and scored on the validation item
   (P1-style, sampled negatives) with the first seed; the best point by ``validation.metric`` wins;
2. with those hyper-parameters the model is refitted on the whole train part (validation item
   included, as the test protocols expect) once per seed, or once for a model without randomness,
   and evaluated on test under each protocol.

The test item is never seen before step 2's evaluation. P4 (new users) and P5 (multi-item holdout)
build their own splits and validation sets: see :mod:`movierec.evaluation.protocol_runs`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from movierec.config import ModelSpec, ValidationSpec
from movierec.data.dataset import Dataset
from movierec.data.splits import Split, with_validation
from movierec.errors import MovierecError
from movierec.models.base import Recommender, create, get_class, param_names
from movierec.options import FitOptions
from movierec.training.history import selected_epochs

Progress = Callable[[str], None]


@dataclass
class GridPoint:
    """One hyper-parameter setting scored on validation."""

    params: dict[str, Any]
    score: float
    fit_seconds: float


@dataclass
class RunResult:
    """One model on one dataset under one protocol, aggregated over seeds."""

    dataset: str
    protocol: str
    model: str
    params: dict[str, Any]
    seeds: list[int]
    metrics: dict[str, float]  # mean over seeds
    spread: dict[str, float]  # standard deviation over seeds (0 for one run)
    per_seed: list[dict[str, float]]
    train_seconds: float  # mean fit time of the final model
    eval_seconds: float  # mean evaluation time
    selection: list[GridPoint] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)  # first seed's learning curves
    variant: str = ""  # a protocol's sub-setting, e.g. P4's "n=5" (one row per n)
    validation_users: int = 0  # users whose validation items scored the grid (0: no grid)
    validation_users_total: int = 0  # users with a validation item (more: a seeded sample)


@dataclass
class Comparison:
    """Everything ``compare`` measured, ready to print or write."""

    name: str
    results: list[RunResult]
    machine: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "machine": self.machine,
                "results": [asdict(r) for r in self.results]}


# ---------------------------------------------------------------------- models
def model_class(name: str) -> type[Recommender]:
    return get_class(name)


def takes_seed(cls: type[Recommender]) -> bool:
    """Whether the model has randomness (a ``seed`` hyper-parameter)."""
    return "seed" in param_names(cls)





def grid_points(spec: ModelSpec) -> list[dict[str, Any]]:
    """Every hyper-parameter setting to try: ``params`` merged with each grid point.

    An explicit ``grid`` overrides ``params`` for its keys (``params`` may give defaults that the
    grid searches over); the model's documented ``param_grid`` (``grid: null``) leaves the keys
    fixed in ``params`` alone.
    """
    grid = spec.grid
    if grid is None:
        documented = dict(model_class(spec.name).param_grid)
        grid = {k: v for k, v in documented.items() if k not in spec.params}
    if not grid:
        return [dict(spec.params)]
    keys = sorted(grid)
    return [{**spec.params, **dict(zip(keys, values, strict=True))}
            for values in itertools.product(*(grid[k] for k in keys))]


def build(spec: ModelSpec, params: dict[str, Any], seed: int | None) -> Recommender:
    cls = model_class(spec.name)
    if seed is not None and takes_seed(cls) and "seed" not in spec.params:
        params = {**params, "seed": seed}
    return create(spec.name, **params)


def select_on_validation(
    spec: ModelSpec, split: Split, metric: str, seed: int, progress: Progress | None = None,
    options: FitOptions | None = None,
) -> tuple[dict[str, Any], list[GridPoint]]:
    """Fit every grid point on train-minus-validation; return the best by ``metric``."""
    from movierec.evaluation.protocols import evaluate_p1

    points = grid_points(spec)
    if len(points) == 1:
        return points[0], []
    tried: list[GridPoint] = []
    for params in points:
        model = build(spec, params, seed)
        t0 = time.perf_counter()
        model.fit(split.train, split.valid, options)
        fit_s = time.perf_counter() - t0
        score = evaluate_p1(model, split, part="valid")[metric]
        tried.append(GridPoint(params, float(score), fit_s))
        if progress:
            progress(f"{spec.display_name} {params}: valid {metric} {score:.4f}")
    best = max(tried, key=lambda g: g.score)  # first of equals: grid order decides ties
    return best.params, tried


# ---------------------------------------------------------------------- evaluation
CURVE_KS = tuple(range(1, 21))
"""Cut-offs reported besides 10, for the HR@K / NDCG@K curves of the model report."""


def evaluate_protocol(model: Recommender, split: Split, protocol: str, ks=()
                      ) -> dict[str, float]:
    from movierec.evaluation import protocols

    if protocol == "p1":
        return protocols.evaluate_p1(model, split, ks=ks)
    if protocol == "p2":
        return protocols.evaluate_p2(model, split, ks=ks)
    if protocol == "p3":
        return protocols.evaluate_p3(model, split.train, split.test)
    raise ValueError(f"unknown protocol {protocol!r}; expected p1, p2 or p3")


def run_model(
    spec: ModelSpec,
    split: Split,
    validation: ValidationSpec,
    protocols: Sequence[str],
    seeds: list[int],
    progress: Progress | None = None,
    options: FitOptions | None = None,
) -> list[RunResult]:
    """Select, refit per seed, evaluate: one RunResult per protocol."""
    with_valid = with_validation(split, validation.method, validation.fraction, validation.seed,
                                 validation.n_negatives)
    with_valid, used, total = sample_validation_users(with_valid, validation.max_users,
                                                      validation.seed)
    params, tried = select_on_validation(spec, with_valid, validation.metric, seeds[0], progress,
                                         options)
    run_seeds = seeds if takes_seed(model_class(spec.name)) else seeds[:1]
    per_protocol: dict[str, list[dict[str, float]]] = {p: [] for p in protocols}
    fit_times: list[float] = []
    curves: list[dict[str, Any]] = []
    eval_times: dict[str, list[float]] = {p: [] for p in protocols}
    for seed in run_seeds:
        model = build(spec, params, seed)
        t0 = time.perf_counter()
        model.fit(split.train, options=options)
        fit_times.append(time.perf_counter() - t0)
        if not curves:
            curves = learning_curves(model)
        for protocol in protocols:
            t0 = time.perf_counter()
            per_protocol[protocol].append(evaluate_protocol(model, split, protocol, CURVE_KS))
            eval_times[protocol].append(time.perf_counter() - t0)
        if progress:
            progress(f"{spec.display_name} seed {seed}: fitted in {fit_times[-1]:.1f}s")
    results = []
    for protocol in protocols:
        runs = per_protocol[protocol]
        keys = list(runs[0])
        values = {k: np.array([r[k] for r in runs], dtype=float) for k in keys}
        results.append(RunResult(
            dataset=split.train.name.split("/")[0], protocol=protocol,
            model=spec.display_name, params=params, seeds=list(run_seeds),
            metrics={k: float(v.mean()) for k, v in values.items()},
            spread={k: float(v.std()) for k, v in values.items()},
            per_seed=runs, train_seconds=float(np.mean(fit_times)),
            eval_seconds=float(np.mean(eval_times[protocol])), selection=tried, curves=curves,
            validation_users=used if tried else 0, validation_users_total=total if tried else 0,
        ))
    return results


def sample_validation_users(split: Split, max_users: int | None, seed: int
                            ) -> tuple[Split, int, int]:
    """``split`` with its validation part (and its negatives) cut to at most ``max_users``
    users, drawn uniformly with ``seed``; train is untouched (the other users' validation items
    stay out of it, as without sampling). Returns the split, the users kept and the users that
    had validation items. Grid selection on ML-20M/32M thus scores 10,000 users, not 200,000."""
    valid = split.valid
    assert valid is not None
    users = np.unique(valid.user_idx)
    if max_users is None or len(users) <= max_users:
        return split, len(users), len(users)
    chosen = np.random.default_rng(seed).choice(users, max_users, replace=False)
    rows = np.isin(valid.user_idx, chosen)
    negatives = split.valid_negatives[rows] if split.valid_negatives is not None else None
    cut = replace(split, valid=valid.subset(rows), valid_negatives=negatives)
    return cut, max_users, len(users)


def learning_curves(model: Recommender) -> list[dict[str, Any]]:
    """Every training stage's per-epoch numbers (:meth:`Recommender.training_history`), as
    ``{"name", "epochs", "series": {label: values}, "best_epoch"}`` dicts for the report; empty
    for models that do not train in epochs."""
    return [{"name": h.name, "epochs": [int(r["epoch"]) for r in h.epochs],
             "series": h.series(), "best_epoch": h.best_epoch}
            for h in model.training_history() if len(h)]


P3_FOLDS = ("u1", "u2", "u3", "u4", "u5")


def p3_folds(
    spec: ModelSpec,
    params: dict[str, Any],
    splits: dict[str, Split],
    seed: int,
    progress: Progress | None = None,
    options: FitOptions | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """Fit ``spec`` with ``params`` on each fold's train part and score its test part (P3).

    Returns one row per fold (``fold``, ``RMSE``, ``MAE``, ``fit_seconds``, ``eval_seconds``,
    ``best_epoch``) and the first fold's fitted model (for its learning curves).
    """
    from movierec.evaluation.protocols import evaluate_p3

    rows: list[dict[str, Any]] = []
    first = None
    for fold, split in splits.items():
        model = build(spec, params, seed)
        if not model.predicts_ratings:
            raise MovierecError(f"model {spec.name!r} ranks items but does not predict "
                                "ratings; P3 needs a rating model")
        t0 = time.perf_counter()
        model.fit(split.train, options=options)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = evaluate_p3(model, split.train, split.test)
        rows.append({"fold": fold, "RMSE": float(m["RMSE"]), "MAE": float(m["MAE"]),
                     "fit_seconds": fit_s, "eval_seconds": time.perf_counter() - t0,
                     "best_epoch": selected_epochs(model.training_history())})
        first = first or model
        if progress:
            progress(f"{spec.display_name} seed {seed} {fold}: RMSE {m['RMSE']:.4f}")
    return rows, first


def run_p3_model(
    spec: ModelSpec,
    full: Dataset,
    folder: str | Path,
    seeds: list[int],
    progress: Progress | None = None,
    options: FitOptions | None = None,
) -> RunResult:
    """P3 for one model: train on each ML-100K ``uN.base``, RMSE/MAE on ``uN.test``.

    A grid (if any) is searched once, by RMSE on a seeded 5% per-user slice of ``u1.base`` (never
    a ``.test`` file); the winner then runs on all five folds once per seed. Metrics are the means
    over the folds, plus ``RMSE uN`` per fold.
    """
    from movierec.data.splits import ml100k_canonical, random_holdout
    from movierec.evaluation.protocols import evaluate_p3

    points = grid_points(spec)
    tried: list[GridPoint] = []
    params = points[0]
    if len(points) > 1:
        base = ml100k_canonical(full, folder, fold="u1").train
        hold = random_holdout(base, test_fraction=0.05, seed=seeds[0])
        for point in points:
            model = build(spec, point, seeds[0])
            t0 = time.perf_counter()
            model.fit(hold.train, options=options)
            fit_s = time.perf_counter() - t0
            rmse = evaluate_p3(model, hold.train, hold.test)["RMSE"]
            tried.append(GridPoint(point, -float(rmse), fit_s))  # higher is better
            if progress:
                progress(f"{spec.display_name} {point}: validation RMSE {rmse:.4f}")
        params = max(tried, key=lambda g: g.score).params
    run_seeds = seeds if takes_seed(model_class(spec.name)) else seeds[:1]
    splits = {f: ml100k_canonical(full, folder, fold=f) for f in P3_FOLDS}
    per_seed: list[dict[str, float]] = []
    fit_times: list[float] = []
    eval_times: list[float] = []
    curves: list[dict[str, Any]] = []
    for seed in run_seeds:
        rows, first = p3_folds(spec, params, splits, seed, progress, options)
        row: dict[str, float] = {}
        for r in rows:
            row[f"RMSE {r['fold']}"], row[f"MAE {r['fold']}"] = r["RMSE"], r["MAE"]
        row["RMSE"] = float(np.mean([r["RMSE"] for r in rows]))
        row["MAE"] = float(np.mean([r["MAE"] for r in rows]))
        per_seed.append(row)
        fit_times.append(sum(r["fit_seconds"] for r in rows))
        eval_times.append(sum(r["eval_seconds"] for r in rows))
        curves = curves or learning_curves(first)
    values = {k: np.array([r[k] for r in per_seed]) for k in per_seed[0]}
    return RunResult(
        dataset=full.name, protocol="p3", model=spec.display_name, params=params,
        seeds=list(run_seeds), metrics={k: float(v.mean()) for k, v in values.items()},
        spread={k: float(v.std()) for k, v in values.items()}, per_seed=per_seed,
        train_seconds=float(np.mean(fit_times)), eval_seconds=float(np.mean(eval_times)),
        selection=tried, curves=curves,
    )
