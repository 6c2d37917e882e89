"""``movierec quickstart``: the models the app serves out of the box, trained once and kept.

ml-latest-small (an existing folder, else a download) trains two artifacts on every rating, each
in its own folder under ``artifacts/quickstart``: the tuned NeuMF recipe (the hero model, served
by default: the best on the new-user protocol P4 at five picks, see ``docs/evaluation.md``) and
iALS (seconds to train; exact closed-form fold-in). An artifact whose model, dataset and
hyper-parameters match is reused; anything else is trained again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUICKSTART_DATASET = "ml-latest-small"
DEFAULT_FOLDER = Path("artifacts") / "quickstart"
RECIPES: dict[str, dict[str, Any]] = {
    # configs/neumf-ml-latest-small.yaml (a test keeps them equal), trained on every rating
    "neumf": {"factors": 64, "mlp_factors": 64, "layers": [128, 64], "dropout": 0.2,
              "l2": 0.003, "n_negatives": 8, "batch_size": 8192, "recency_boost": 3.0,
              "recency_half_life": 10.0, "pretrain": True, "pretrain_lr": 0.003,
              "pretrain_epochs": [17, 10], "alpha": 0.7, "lr": 0.0003, "epochs": 1,
              "fold_in_shrinkage": 1.0},
    "ials": {"factors": 64, "regularization": 0.1, "alpha": 20.0, "iterations": 15},
    "ease": {"l2": 200.0},
}
"""Hyper-parameters of each model quickstart can train; the first served is the default."""
QUICKSTART_MODELS = ("neumf", "ials")

Progress = Callable[[str], None]


def prepare_quickstart(
    data_dir: str | Path | None = None,
    folder: str | Path = DEFAULT_FOLDER,
    models: tuple[str, ...] | list[str] = QUICKSTART_MODELS,
    retrain: bool = False,
    progress: Progress | None = None,
) -> list[tuple[str, Path]]:
    """``[(model name, artifact folder)]`` of ``models`` trained on all of ml-latest-small,
    each with its catalogue, ready to serve (the first is the default). Reuses a matching
    artifact unless ``retrain``; training shows its progress on stderr."""
    from movierec.config import ModelSpec, TrainConfig
    from movierec.data.download import ensure_dataset
    from movierec.data.loading import load_dataset
    from movierec.errors import MovierecError
    from movierec.evaluation.runner import train_artifact
    from movierec.options import FitOptions
    from movierec.serving.catalogue import CATALOGUE_FILE, write_catalogue

    say = progress or (lambda message: None)
    unknown = [m for m in models if m not in RECIPES]
    if unknown or not models:
        raise MovierecError(f"quickstart trains {', '.join(RECIPES)}; got {list(models)}")
    say(f"{QUICKSTART_DATASET}: {ensure_dataset(QUICKSTART_DATASET, data_dir)}")
    dataset = None
    out: list[tuple[str, Path]] = []
    for model in models:
        artifact = Path(folder) / model
        if not retrain and _matches(artifact, model):
            say(f"{model}: using the model already trained in {artifact} (--retrain trains it "
                "again)")
            if not (artifact / CATALOGUE_FILE).is_file():
                dataset = dataset or load_dataset(QUICKSTART_DATASET, data_dir)
                write_catalogue(dataset, artifact)
            out.append((model, artifact))
            continue
        dataset = dataset or load_dataset(QUICKSTART_DATASET, data_dir)
        say(f"{model}: training on {dataset.n_ratings:,} ratings of {dataset.n_users:,} users "
            f"and {dataset.n_items:,} movies (once; kept in {artifact})...")
        cfg = TrainConfig(dataset=QUICKSTART_DATASET, split="none", artifact=str(artifact),
                          model=ModelSpec(name=model, params=RECIPES[model]),
                          run=FitOptions(progress=True))
        path, seconds = train_artifact(cfg, data_dir)  # with its catalogue
        say(f"{model}: trained in {seconds:.1f} s -> {path}")
        out.append((model, path))
    return out


def _matches(artifact: Path, model: str) -> bool:
    """Whether ``artifact`` holds ``model`` trained on ml-latest-small with today's recipe."""
    try:
        config = json.loads((artifact / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    from movierec.models.params import validate_params
    from movierec.models.registry import get_class

    dataset = str(config.get("dataset", {}).get("name", "")).split("/")[0]
    if config.get("model") != model or dataset != QUICKSTART_DATASET:
        return False
    cls = get_class(model)
    try:
        return validate_params(cls, config.get("params", {})) == validate_params(
            cls, RECIPES[model])
    except Exception:  # an artifact of another version: train again
        return False
