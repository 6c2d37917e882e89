"""`movierec compare`: every model of a config on every dataset under every protocol.

The protocols' building blocks live beside it: P1 / P2 selection and refits in
:mod:`movierec.evaluation.compare`, P3 in the same module, P4 / P5 (their own splits) in
:mod:`movierec.evaluation.protocol_runs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

from movierec.config import CompareConfig, ModelSpec
from movierec.data.splits import prepare_split
from movierec.errors import MovierecError
from movierec.evaluation.compare import (
    Comparison,
    Progress,
    RunResult,
    run_model,
    run_p3_model,
)
from movierec.evaluation.journal import RunJournal, run_key
from movierec.evaluation.protocol_runs import protocol_name, run_split_protocol
from movierec.machine import machine_info

__all__ = ["run_comparison"]


def selected_models(cfg: CompareConfig, names: Sequence[str] | None) -> list[ModelSpec]:
    """The models of ``cfg`` named in ``names`` (their labels), all of them for ``None``;
    an unknown name is an error that lists the config's."""
    if names is None:
        return list(cfg.models)
    labels = [m.display_name for m in cfg.models]
    unknown = [n for n in names if n not in labels]
    if unknown:
        raise MovierecError(f"--models {','.join(unknown)}: not in the config's models "
                            f"({', '.join(labels)}); give their labels")
    return [m for m in cfg.models if m.display_name in names]


def _as_list(run: Callable[..., RunResult], *args: object) -> list[RunResult]:
    return [run(*args)]


def run_comparison(
    cfg: CompareConfig, data_dir: str | Path | None = None, progress: Progress | None = None,
    journal: RunJournal | None = None, models: Sequence[str] | None = None,
) -> Comparison:
    """Run every model of ``cfg`` (or those labelled in ``models``) on every dataset and
    protocol (see the module docstring). With a ``journal``, each finished (dataset, model,
    protocol group) is recorded as it ends and one already in the journal is reused."""
    from movierec.data.loading import load_dataset

    data_dir = data_dir or cfg.data_dir
    cfg.run.check_device()  # before any data loads
    specs = selected_models(cfg, models)
    results: list[RunResult] = []

    def once(kind: str, dataset: str, spec: ModelSpec, protocols: object,
             compute: Callable[[], Iterable[RunResult]]) -> list[RunResult]:
        if journal is None:
            return list(compute())
        key = run_key(kind=kind, dataset=dataset, model=spec.model_dump(mode="json"),
                      protocols=protocols, seeds=cfg.seeds, split=cfg.split,
                      negatives_seed=cfg.negatives_seed,
                      validation=cfg.validation.model_dump(mode="json"),
                      settings=(cfg.p4.model_dump(mode="json") if kind == "p4" else
                                cfg.holdout.model_dump(mode="json") if kind == "holdout"
                                else None),
                      run={k: getattr(cfg.run, k)
                           for k in ("device", "trainer", "strategy", "devices")})
        return journal.run(key, f"{dataset} {spec.display_name} {kind}", compute, progress)

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
            for spec in specs:
                results.extend(once("ranking", name, spec, ranking, partial(
                    run_model, spec, split, cfg.validation, ranking, cfg.seeds, progress,
                    cfg.run)))
        for protocol in own_split:  # P4 and P5 build their own splits and validation
            settings = cfg.p4 if protocol == "p4" else cfg.holdout
            for spec in specs:
                results.extend(once(protocol, name, spec, protocol, partial(
                    run_split_protocol, protocol, spec, full, settings, cfg.validation,
                    cfg.seeds, progress, cfg.run)))
        if "p3" in cfg.protocols:
            if full.name != "ml-100k":
                raise MovierecError(f"P3 uses ML-100K's canonical u1..u5 folds; {name!r} has "
                                    "none (drop p3 for this dataset)")
            from movierec.data.download import ensure_dataset

            folder = ensure_dataset("ml-100k", data_dir)
            for spec in specs:
                results.extend(once("p3", name, spec, "p3", partial(
                    _as_list, run_p3_model, spec, full, folder, cfg.seeds, progress, cfg.run)))
    return Comparison(cfg.name, results, machine_info())
