"""What ``movierec serve`` and ``movierec quickstart`` do, kept out of the CLI so tests reach it.

``prepare_quickstart`` gets ml-latest-small (an existing folder, else a download), trains the
default model on every rating unless a matching artifact exists, and writes the catalogue beside
it; ``serve`` loads an artifact and runs the app with uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from movierec.errors import MovierecError

QUICKSTART_DATASET = "ml-latest-small"
QUICKSTART_MODEL = "ials"
QUICKSTART_PARAMS: dict[str, dict] = {
    # iALS: about 2 s on 2 cores for ml-latest-small, exact closed-form fold-in (~4 ms), and
    # item factors for similar-movie search. NeuMF fits in ~1 min but folds a new person in by
    # 100 gradient steps (~200 ms), too slow for instant answers under load.
    "ials": {"factors": 64, "regularization": 0.1, "alpha": 20.0, "iterations": 15},
    "ease": {"l2": 200.0},
    "neumf": {"epochs": 10, "num_threads": 2},
}
DEFAULT_ARTIFACT = Path("artifacts") / "quickstart"

Progress = Callable[[str], None]


def prepare_quickstart(
    data_dir: str | Path | None = None,
    artifact: str | Path = DEFAULT_ARTIFACT,
    model: str = QUICKSTART_MODEL,
    retrain: bool = False,
    progress: Progress | None = None,
) -> Path:
    """An artifact of ``model`` trained on all of ml-latest-small, ready to serve.

    Reuses ``artifact`` when it already holds a ``model`` trained on ml-latest-small (unless
    ``retrain``); else trains and saves it. Returns the artifact folder.
    """
    from movierec.config import ModelSpec, TrainConfig
    from movierec.data.download import ensure_dataset
    from movierec.data.loading import load_dataset
    from movierec.evaluation.runner import train_artifact
    from movierec.serving.catalogue import CATALOGUE_FILE, write_catalogue

    say = progress or (lambda message: None)
    artifact = Path(artifact)
    folder = ensure_dataset(QUICKSTART_DATASET, data_dir)
    say(f"{QUICKSTART_DATASET}: {folder}")
    if not retrain and _matches(artifact, model):
        say(f"using the model already trained in {artifact} (--retrain trains it again)")
        if not (artifact / CATALOGUE_FILE).is_file():
            write_catalogue(load_dataset(QUICKSTART_DATASET, data_dir), artifact)
        return artifact
    dataset = load_dataset(QUICKSTART_DATASET, data_dir)
    say(f"training {model} on {dataset.n_ratings:,} ratings of {dataset.n_users:,} users "
        f"and {dataset.n_items:,} movies...")
    cfg = TrainConfig(
        dataset=QUICKSTART_DATASET,
        model=ModelSpec(name=model, params=QUICKSTART_PARAMS.get(model, {})),
        split="none",
        artifact=str(artifact),
    )
    path, seconds = train_artifact(cfg, data_dir)
    write_catalogue(dataset, path)
    say(f"trained {model} in {seconds:.1f} s -> {path}")
    return path


def _matches(artifact: Path, model: str) -> bool:
    import json

    try:
        config = json.loads((artifact / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    dataset = str(config.get("dataset", {}).get("name", "")).split("/")[0]
    return config.get("model") == model and dataset == QUICKSTART_DATASET


def serve(
    artifact: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: str | Path | None = None,
    access_log: bool = False,
    progress: Progress | None = None,
) -> None:
    """Load ``artifact`` and serve the API and web page until interrupted."""
    try:
        import uvicorn
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise MovierecError("serving needs the serve extra: pip install 'movierec[serve]'") from e
    from movierec.serving.app import create_app
    from movierec.serving.posters import TmdbPosters
    from movierec.serving.store import Store

    say = progress or (lambda message: None)
    store = Store.open(artifact, data_dir)
    posters = TmdbPosters.from_env()
    say(f"serving {store.model.name} ({len(store.item_ids):,} movies, posters: "
        f"{'TMDB' if posters else 'generated'}) at http://{_url_host(host)}:{port}/ "
        "(Ctrl+C stops)")
    logging.getLogger("movierec").setLevel(logging.INFO)
    uvicorn.run(create_app(store, posters), host=host, port=port, access_log=access_log,
                log_level="info")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
