"""One model, one protocol: what ``movierec evaluate`` and ``movierec train`` do.

Kept out of the CLI so that every step a command takes is reachable from a test.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from movierec.config import ModelSpec, TrainConfig, check_model_spec, load_config
from movierec.data.dataset import Dataset
from movierec.data.splits import Split
from movierec.errors import MovierecError
from movierec.models.base import Recommender
from movierec.options import FitOptions

PROTOCOLS = ("p1", "p2", "p3", "p4", "holdout", "p5")  # p5 = holdout


def run_spec(model: str | None, config: Path | None, overrides: list[str] | None = None
             ) -> tuple[ModelSpec, FitOptions, TrainConfig | None]:
    """What to train and how: the config's model and ``run:`` options (``overrides`` applied),
    or a registered model with its defaults. Checked before any data loads."""
    if config is not None:
        cfg = load_config(config, TrainConfig, overrides)
        return cfg.model, cfg.run, cfg
    if model is None:
        raise MovierecError("say what to evaluate: --model NAME, --config FILE or --artifact DIR")
    if overrides:
        raise MovierecError("--set changes a config file's values; give --config FILE with it")
    spec = ModelSpec(name=model)
    check_model_spec(spec)
    return spec, FitOptions(), None


def default_dataset(cfg: TrainConfig | None, artifact: Path | None) -> str:
    """The dataset a run means when none is named: the config's, the artifact's release, or
    ml-100k."""
    if cfg is not None:
        return cfg.dataset
    if artifact is not None:
        from movierec.data.registry import RELEASES
        from movierec.models.artifacts import dataset_name_of

        name = dataset_name_of(artifact)
        if name in RELEASES:
            return name
    return "ml-100k"


def load_split(
    dataset: str, data_dir: str | Path | None, split_mode: str, negatives: Path | None,
    before_split: Callable[[Dataset], None] | None = None,
) -> tuple[Dataset, Split]:
    """The full dataset and its leave-one-out split (optionally with another negatives file);
    ``before_split(full)`` runs first (a check that should refuse before the split's work)."""
    from movierec.data.loading import load_dataset
    from movierec.data.splits import prepare_split

    full = load_dataset(dataset, data_dir)
    if before_split is not None:
        before_split(full)
    split = prepare_split(full, data_dir, split_mode)
    if negatives is not None:
        from movierec.data.splits import with_negatives_file

        split = with_negatives_file(split, negatives)
    return full, split


def evaluate_one(
    *,
    model: str | None = None,
    config: Path | None = None,
    artifact: Path | None = None,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    protocol: str = "p1",
    negatives: Path | None = None,
    split_mode: str = "fixed",
    seed: int = 0,
    overrides: list[str] | None = None,
    progress=None,
    settings: Any = None,
) -> dict[str, Any]:
    """Train (or load) a model and evaluate it: a flat dict of metrics plus what was run.

    ``dataset=None`` means the config's dataset, else the release an artifact was trained on,
    else ml-100k. ``overrides`` (``key.path=value``) change the config's values. ``settings``: a
    :class:`~movierec.config.P4Spec` or :class:`~movierec.config.HoldoutSpec` for P4 / P5
    (default: the protocol's defaults); P4's result has ``rows`` (one per n) and ``vae`` (the
    Mult-VAE form) instead of flat metrics.
    """
    from movierec.evaluation.compare import build, evaluate_protocol

    if protocol not in PROTOCOLS:
        raise MovierecError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    spec, options, cfg = (None, FitOptions(), None) if artifact is not None else run_spec(
        model, config, overrides)
    dataset = dataset or default_dataset(cfg, artifact)
    options.check_device()  # before any data loads
    if protocol == "p3":
        if spec is None:
            raise MovierecError("P3 trains one model per fold; pass --model or --config, "
                                "not --artifact")
        return _evaluate_p3(spec, options, dataset, data_dir, seed, progress)
    if protocol in ("p4", "holdout", "p5"):
        return _evaluate_own_split(protocol, spec, options, artifact, dataset, data_dir, seed,
                                   settings, progress)
    _, split = load_split(dataset, data_dir, split_mode, negatives,
                          _memory_check(spec, options))
    fit_seconds = 0.0
    if artifact is not None:
        from movierec.models.artifacts import load

        recommender = load(artifact)
        _check_artifact_matches(recommender, split.train, artifact)
        label = f"{type(recommender).__name__} ({artifact})"
    else:
        assert spec is not None
        recommender = build(spec, dict(spec.params), seed)
        if progress:
            progress(f"fitting {spec.display_name} on {split.train.n_ratings:,} ratings")
        t0 = time.perf_counter()
        recommender.fit(split.train, options=options)
        fit_seconds = time.perf_counter() - t0
        label = spec.display_name
    t0 = time.perf_counter()
    metrics = evaluate_protocol(recommender, split, protocol)
    eval_seconds = time.perf_counter() - t0
    return {"model": label, "dataset": split.train.name.split("/")[0], "protocol": protocol,
            **metrics, "fit_seconds": fit_seconds, "eval_seconds": eval_seconds, "seed": seed,
            "n_test_users": int(split.test.n_ratings)}


def _memory_check(spec: ModelSpec | None, options: FitOptions
                  ) -> Callable[[Dataset], None] | None:
    """The model's memory check on the full dataset (a bound for its train part), so a model
    that cannot fit is refused before the split is built."""
    if spec is None or not options.memory_check:
        return None
    from movierec.models.base import check_memory, get_class

    return lambda full: check_memory(get_class(spec.name), full, dict(spec.params))


def _check_artifact_matches(recommender: Recommender, train: Dataset, where: Path) -> None:
    """Refuse an artifact whose item space differs; warn when it saw other training data."""
    if recommender.n_items_ != train.n_items:
        raise MovierecError(f"{where}: artifact has {recommender.n_items_} items but the "
                            f"dataset has {train.n_items}; was it trained on another dataset?")
    if recommender.dataset_fingerprint_ != train.fingerprint:
        warnings.warn(f"{where}: artifact was trained on other data than this split's train "
                      "part; if that data held the test items, the figures are optimistic",
                      stacklevel=2)


def _evaluate_own_split(protocol: str, spec: ModelSpec | None, options: FitOptions,
                        artifact: Path | None, dataset: str, data_dir: str | Path | None,
                        seed: int, settings: Any, progress) -> dict[str, Any]:
    """P4 (new users) or P5 (multi-item holdout): each builds its own split of the dataset."""
    from movierec.config import HoldoutSpec, P4Spec
    from movierec.data.loading import load_dataset
    from movierec.evaluation import protocol_runs as runs
    from movierec.evaluation.compare import build

    protocol = runs.protocol_name(protocol)
    settings = settings or (P4Spec() if protocol == "p4" else HoldoutSpec())
    full = load_dataset(dataset, data_dir)
    split = runs.p4_split(full, settings) if protocol == "p4" else runs.holdout_split(full,
                                                                                      settings)
    fit_seconds = 0.0
    if artifact is not None:
        from movierec.models.artifacts import load

        recommender = load(artifact)
        if recommender.dataset_fingerprint_ != split.train.fingerprint:
            raise MovierecError(
                f"{artifact}: not trained on this {protocol} split's train part, so it may have "
                "seen the users or ratings held out for testing; evaluate with --model or "
                "--config, which train on the right part")
        label = f"{type(recommender).__name__} ({artifact})"
    else:
        assert spec is not None
        recommender = build(spec, dict(spec.params), seed)
        if progress:
            progress(f"fitting {spec.display_name} on {split.train.n_ratings:,} ratings "
                     f"({protocol} train part)")
        t0 = time.perf_counter()
        recommender.fit(split.train, options=options)
        fit_seconds = time.perf_counter() - t0
        label = spec.display_name
    t0 = time.perf_counter()
    if protocol == "p4":
        metrics = runs.p4_metrics(recommender, split, settings)
        extra = {"heldout_users": len(split.users)}
    else:
        metrics = runs.holdout_metrics(recommender, split, settings)
        extra = {"test_ratings": int(split.test.n_ratings)}
    return {"model": label, "dataset": full.name, "protocol": protocol, **metrics,
            "settings": settings.model_dump(), **extra, "fit_seconds": fit_seconds,
            "eval_seconds": time.perf_counter() - t0, "seed": seed}


def _evaluate_p3(spec: ModelSpec, options: FitOptions, dataset: str,
                 data_dir: str | Path | None, seed: int, progress) -> dict[str, Any]:
    """P3: train on each ML-100K ``u1..u5.base``, RMSE/MAE on the matching ``.test``."""
    from movierec.data.download import ensure_dataset
    from movierec.data.loading import load_dataset
    from movierec.data.splits import ml100k_canonical
    from movierec.evaluation.compare import P3_FOLDS, p3_folds

    if dataset != "ml-100k":
        raise MovierecError(f"P3 uses ML-100K's canonical u1..u5 folds; got {dataset!r}")
    folder = ensure_dataset("ml-100k", data_dir)
    full = load_dataset("ml-100k", data_dir)
    splits = {f: ml100k_canonical(full, folder, fold=f) for f in P3_FOLDS}
    per_fold, _ = p3_folds(spec, dict(spec.params), splits, seed, progress, options)
    mean = {k: sum(f[k] for f in per_fold) / len(per_fold) for k in ("RMSE", "MAE")}
    return {"model": spec.display_name, "dataset": "ml-100k", "protocol": "p3", **mean,
            "folds": per_fold, "fit_seconds": sum(f["fit_seconds"] for f in per_fold),
            "seed": seed}


def train_artifact(cfg: TrainConfig, data_dir: str | Path | None = None,
                   say: Callable[[str], None] | None = None) -> tuple[Path, float]:
    """Train ``cfg.model`` and save it with its movie table (``catalogue.parquet``, so that
    ``movierec serve`` needs no data folder); returns the artifact folder and the fit time.

    Training stages are checkpointed after every epoch in ``cfg.run.checkpoint_dir``, by default
    ``<artifact>.checkpoints`` beside the artifact folder; ``cfg.run.resume`` continues from them
    (the same weights as an uninterrupted run), otherwise an earlier run's are removed first.
    The folder is removed once the artifact is saved. ``say`` gets a line about what was found.
    """
    from movierec.data.loading import load_dataset
    from movierec.data.splits import train_part
    from movierec.evaluation.compare import build
    from movierec.serving.catalogue import write_catalogue
    from movierec.training.checkpoints import open_folder, remove_folder

    data_dir = data_dir or cfg.data_dir
    cfg.run.check_device()  # before any data loads
    path = Path(cfg.artifact or Path("artifacts") / cfg.model.display_name)
    options = cfg.run
    folder = Path(options.checkpoint_dir or checkpoints_beside(path))
    options = options.model_copy(update={"checkpoint_dir": str(folder)})
    if is_rank_zero():
        said = open_folder(folder, options.resume)
        if said and say is not None:
            say(said)
    full = load_dataset(cfg.dataset, data_dir)
    train = train_part(full, data_dir, cfg.split)
    model = build(cfg.model, dict(cfg.model.params), cfg.seed)
    t0 = time.perf_counter()
    model.fit(train, options=options)
    seconds = time.perf_counter() - t0
    saved = model.save(path)  # the model's save: NCF writes on DDP rank 0 only
    if is_rank_zero():  # the artifact is whole: the checkpoints have served
        write_catalogue(full, saved)
        remove_folder(folder)
    return saved, seconds


def checkpoints_beside(artifact: Path) -> Path:
    """Where ``movierec train`` keeps the checkpoints of a run writing ``artifact``."""
    return artifact.parent / f"{artifact.name}.checkpoints"


def is_rank_zero() -> bool:
    """False in the processes of a DDP run other than the first (they write nothing): torchrun
    sets ``RANK``; the processes Lightning starts itself have ``LOCAL_RANK`` / ``NODE_RANK``."""
    import os

    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    return int(env.get("LOCAL_RANK", "0")) == 0 and int(env.get("NODE_RANK", "0")) == 0
