"""`movierec compare`: every model of a config on every dataset under every protocol.

The protocols' building blocks live beside it: P1 / P2 selection and refits in
:mod:`movierec.evaluation.compare`, P3 in the same module, P4 / P5 (their own splits) in
:mod:`movierec.evaluation.protocol_runs`.
"""

from __future__ import annotations

from pathlib import Path

from movierec.config import CompareConfig
from movierec.data.splits import prepare_split
from movierec.errors import MovierecError
from movierec.evaluation.compare import (
    Comparison,
    Progress,
    RunResult,
    run_model,
    run_p3_model,
)
from movierec.evaluation.protocol_runs import protocol_name, run_split_protocol
from movierec.machine import machine_info

__all__ = ["run_comparison"]


def run_comparison(
    cfg: CompareConfig, data_dir: str | Path | None = None, progress: Progress | None = None
) -> Comparison:
    """Run every model of ``cfg`` on every dataset and protocol (see the module docstring)."""
    from movierec.data.loading import load_dataset

    data_dir = data_dir or cfg.data_dir
    cfg.run.check_device()  # before any data loads
    results: list[RunResult] = []
    protocols = list(dict.fromkeys(protocol_name(p) for p in cfg.protocols))
    ranking = [p for p in protocols if p in ("p1", "p2")]
    own_split = [p for p in protocols if p in ("p4", "holdout")]
    for name in cfg.datasets:
        full = load_dataset(name, data_dir)
        if ranking:
            split = prepare_split(full, data_dir, cfg.split, cfg.negatives_seed)
            if progress:
                progress(f"{name}: {split.train.n_ratings:,} train ratings, "
                         f"{split.test.n_ratings:,} test users")
            for spec in cfg.models:
                results.extend(run_model(spec, split, cfg.validation, ranking, cfg.seeds,
                                         progress, cfg.run))
        for protocol in own_split:  # P4 and P5 build their own splits and validation
            settings = cfg.p4 if protocol == "p4" else cfg.holdout
            for spec in cfg.models:
                results.extend(run_split_protocol(protocol, spec, full, settings,
                                                  cfg.validation, cfg.seeds, progress,
                                                  cfg.run))
        if "p3" in cfg.protocols:
            if full.name != "ml-100k":
                raise MovierecError(f"P3 uses ML-100K's canonical u1..u5 folds; {name!r} has "
                                    "none (drop p3 for this dataset)")
            from movierec.data.download import ensure_dataset

            folder = ensure_dataset("ml-100k", data_dir)
            for spec in cfg.models:
                results.append(run_p3_model(spec, full, folder, cfg.seeds, progress, cfg.run))
    return Comparison(cfg.name, results, machine_info())
