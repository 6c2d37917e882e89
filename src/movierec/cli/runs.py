"""`movierec train / evaluate / compare / recommend / models`: train, measure and ask models."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from movierec.cli.common import (
    DataDirOption,
    ForceOption,
    JsonOption,
    SetOption,
    app,
    console,
    err_console,
    print_json,
)
from movierec.errors import MovierecError

# ---------------------------------------------------------------------- evaluate / compare
ProtocolOption = Annotated[str, typer.Option(
    "--protocol", "-p", help="p1 (leave-one-out, 99 sampled negatives), p2 (leave-one-out, full "
    "ranking), p3 (ML-100K rating folds), p4 (new users folded in from n picks) or holdout / p5 "
    "(multi-item holdout); defined in docs/evaluation.md.")]


@app.command("evaluate")
def evaluate(
    model: Annotated[str | None, typer.Option(help="Registered model to train with its "
                                              "defaults.")] = None,
    config: Annotated[Path | None, typer.Option(help="Train what this YAML config says "
                                                "(`movierec train` format).")] = None,
    artifact: Annotated[Path | None, typer.Option(help="Evaluate a saved model.")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Release name or folder; default the config's dataset, the release the artifact "
             "was trained on, or ml-100k.")] = None,
    data_dir: DataDirOption = None,
    protocol: ProtocolOption = "p1",
    negatives: Annotated[Path | None, typer.Option(help="P1 negatives file (user, then its "
                                                   "negative item ids; tab-separated).")] = None,
    split: Annotated[str, typer.Option(help="fixed: the P1 files in <data-dir>/eval when "
                                       "present; generate: build them here.")] = "fixed",
    seed: Annotated[int, typer.Option(help="Seed of the model's randomness.")] = 0,
    overrides: SetOption = None,
    split_seed: Annotated[int | None, typer.Option(
        help="p4: seed of the held-out users (default 0); holdout: seed of the split (42).")]
    = None,
    k: Annotated[int, typer.Option(help="holdout: list length of the metrics.")] = 10,
    ratio: Annotated[float, typer.Option(help="holdout: share of each user's ratings held "
                                         "out.")] = 0.25,
    holdout: Annotated[str, typer.Option(help="holdout: random or temporal (each user's "
                                         "latest ratings).")] = "random",
    as_json: JsonOption = False,
) -> None:
    """Train (or load) one model and evaluate it under one protocol (docs/evaluation.md)."""
    from movierec.evaluation.runner import evaluate_one

    result = evaluate_one(
        model=model, config=config, artifact=artifact, dataset=dataset, data_dir=data_dir,
        protocol=protocol.lower(), negatives=negatives, split_mode=split, seed=seed,
        overrides=overrides,
        progress=None if as_json else (lambda msg: err_console.print(f"[dim]{msg}[/]")),
        settings=_protocol_settings(protocol.lower(), split_seed, k, ratio, holdout),
    )
    if as_json:
        print_json(result)
        return
    if "rows" in result:  # P4: one row per number of picks
        _print_p4(result)
        return
    table = Table(title=f"{result['model']} · {result['dataset']} · {protocol.upper()}")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    console.print(table)


def _protocol_settings(protocol: str, split_seed: int | None, k: int, ratio: float,
                       method: str):
    """P4 / P5 settings from evaluate's options (None for the other protocols)."""
    from pydantic import ValidationError

    from movierec.config import HoldoutSpec, P4Spec

    seed = {} if split_seed is None else {"seed": split_seed}
    try:
        if protocol == "p4":
            return P4Spec(**seed)
        if protocol in ("holdout", "p5"):
            return HoldoutSpec(ratio=ratio, method=method, k=k, **seed)
    except ValidationError as e:
        bad = "; ".join(f"--{'-'.join(str(p) for p in err['loc'])}: {err['msg']}"
                        for err in e.errors())
        raise MovierecError(bad.replace("--method", "--holdout")) from None
    return None


def _print_p4(result: dict) -> None:
    rows = result["rows"]
    keys = [key for key in rows[0] if key not in ("n", "TargetsPerUser", "TailTargets")]
    table = Table(title=f"{result['model']} · {result['dataset']} · P4 (new users, "
                  f"{result['heldout_users']} held out, seed {result['settings']['seed']})")
    table.add_column("n", justify="right", style="bold")
    for key in keys:
        table.add_column(key, justify="right")
    for row in rows:
        table.add_row(str(row["n"]), *(f"{row[key]:.4f}" if isinstance(row[key], float)
                                       else str(row[key]) for key in keys))
    (console if console.is_terminal else Console(width=200)).print(table)  # piped: room for it
    vae = result.get("vae")
    if vae:
        console.print(f"Mult-VAE form (fold in 80%, predict 20%, {vae['users']} users): "
                      f"NDCG@100 {vae['NDCG@100']:.4f}, Recall@20 {vae['Recall@20']:.4f}, "
                      f"Recall@50 {vae['Recall@50']:.4f}")
    console.print(f"fit {result['fit_seconds']:.1f}s, evaluation {result['eval_seconds']:.1f}s")


@app.command("compare")
def compare(
    config: Annotated[Path, typer.Argument(help="YAML: models (+grids), datasets, protocols, "
                                           "seeds.")],
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default results/<name>.")]
    = None,
    overrides: SetOption = None,
    force: ForceOption = False,
    resume: Annotated[bool, typer.Option("--resume", help="Reuse every run already in the "
                                         "output folder's journal (runs.jsonl) whose settings "
                                         "are unchanged; run only the rest.")] = False,
    models: Annotated[str | None, typer.Option(help="Run only these models of the config "
                                               "(labels, comma-separated) into the journal; "
                                               "no report. Several such runs may share one "
                                               "--out (with --resume); a last run without "
                                               "--models writes the report.")] = None,
) -> None:
    """Train, select on validation, test: a table per dataset and protocol, plus files.

    Every finished model is recorded at once in `<out>/runs.jsonl`: `--resume` continues a
    killed run, or one whose config gained a model, without training the others again.
    """
    from movierec.config import CompareConfig, load_config
    from movierec.evaluation.comparison import run_comparison, selected_models
    from movierec.evaluation.journal import JOURNAL_NAME, RunJournal
    from movierec.evaluation.report import rich_tables
    from movierec.evaluation.report_html import write_outputs
    from movierec.files import claimed_output_dir, write_folder

    cfg = load_config(config, CompareConfig, overrides)
    if not err_console.is_terminal and "progress" not in cfg.run.model_fields_set:
        # piped or logged: each training loop's plain lines too (a fit can run for minutes);
        # on a terminal the one spinner line stays, as bars would fight with it
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"progress": True})})
    out_dir = (out or Path(cfg.output_dir or Path("results") / cfg.name)).absolute()
    only = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
    selected_models(cfg, only)  # an unknown label fails here, before any work
    journal = RunJournal(out_dir)
    # a movierec folder from now on (checked before hours of training): the journal grows in it;
    # removed again if the run fails before any model finished
    with claimed_output_dir(out_dir, "comparison", force=force), \
            console.status("comparing...") as status:
        if resume:
            found = journal.load()
            console.print(f"{journal.path}: {found} finished run(s) to reuse where unchanged")
        comparison = run_comparison(cfg, data_dir, progress=_progress_to(status),
                                    journal=journal, models=only)
    # piped output has no terminal width: give the wide tables room instead of 80 columns
    out_console = console if console.is_terminal else Console(width=200)
    for table in rich_tables(comparison):
        out_console.print(table)
    if only is not None:
        console.print(f"recorded {', '.join(only)} in {journal.path}; a run without --models "
                      "(with --resume) writes the report")
        return

    def build(tmp: Path) -> None:
        written.update(write_outputs(comparison, tmp))
        journal.write_used(tmp)

    written: dict = {}
    write_folder(out_dir, build, "comparison", force=force, owned=[JOURNAL_NAME])
    console.print(f"wrote {written['json'].name}, {written['markdown'].name}, "
                  f"{written['html'].name}, {JOURNAL_NAME} and {len(written['charts'])} "
                  f"figures in {out_dir}")


def _progress_to(status):
    """Progress messages: the spinner's text on a terminal; piped or logged, one timestamped
    line each on stderr (a comparison runs for hours: its log must say how far it is)."""
    if err_console.is_terminal:
        return lambda message: status.update(message)
    import time

    start = time.monotonic()
    return lambda message: err_console.print(f"[{time.monotonic() - start:7.0f} s] {message}",
                                             highlight=False, soft_wrap=True)


@app.command("train")
def train(
    config: Annotated[Path, typer.Argument(help="YAML with dataset, model (name, params), "
                                           "seed, split, artifact.")],
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option(help="Artifact folder (overrides the config's "
                                             "`artifact`).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the model's randomness (overrides "
                                             "the config's `seed`; `evaluate --seed N` "
                                             "trains the same model).")] = None,
    overrides: SetOption = None,
    force: ForceOption = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a killed run of the same "
                                         "config from its checkpoints (`<out>.checkpoints`); "
                                         "the weights end as an uninterrupted run's.")] = False,
) -> None:
    """Train one model and write it as an artifact folder.

    Training shows its progress (a bar on a terminal, a line every few seconds in a log)
    unless the config's `run: {progress: false}` turns it off. NCF models are checkpointed after
    every epoch beside the artifact (`<out>.checkpoints`, removed once the artifact is saved):
    `--resume` continues a killed run; without it an earlier run's checkpoints are removed.
    """
    from movierec.config import TrainConfig, load_config
    from movierec.evaluation.runner import train_artifact
    from movierec.models.artifacts import claimed

    cfg = load_config(config, TrainConfig, overrides)
    if out is not None:
        cfg = cfg.model_copy(update={"artifact": str(out)})
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    if "progress" not in cfg.run.model_fields_set:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"progress": True})})
    target = Path(cfg.artifact or Path("artifacts") / cfg.model.display_name)  # as train_artifact
    # checked and made a movierec folder before training: a log_dir inside it is kept by the save
    rank0 = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes
    claim = claimed(target, force=force) if rank0 else contextlib.nullcontext()
    if resume:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"resume": True})})
    with claim:
        path, seconds = train_artifact(
            cfg, data_dir, say=lambda line: console.print(line, markup=False, soft_wrap=True))
    if rank0:
        console.print(f"trained {cfg.model.display_name} in {seconds:.1f}s -> [bold]{path}[/]")


@app.command("recommend")
def recommend(
    artifact: Annotated[Path, typer.Option(help="A trained artifact folder (`movierec train "
                                           "... --out DIR`).")],
    user: Annotated[int | None, typer.Option(help="A MovieLens user id the model was trained "
                                             "on.")] = None,
    liked: Annotated[str | None, typer.Option(help="Or: comma-separated movie ids someone "
                                              "likes, oldest first (folded in, no retraining; "
                                              "a sequential model recommends what comes "
                                              "after the last).")] = None,
    k: Annotated[int, typer.Option(help="How many movies.")] = 10,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Top-k movies for a known user (their rated movies left out) or for a list of liked ones."""
    from movierec.serving.store import Store

    if (user is None) == (liked is None):
        raise MovierecError("say who to recommend for: --user ID or --liked ID,ID,...")
    if not 1 <= k <= 1000:
        raise MovierecError(f"--k must be between 1 and 1000, got {k}")
    store = Store.open(artifact, data_dir)
    if user is not None:
        recs = store.for_user(user, k)
        who = f"user {user}"
    else:
        assert liked is not None  # exactly one of --user and --liked, checked above
        try:
            ids = [int(x) for x in liked.split(",") if x.strip()]
        except ValueError:
            raise MovierecError(f"--liked: expected comma-separated movie ids, got {liked!r}") \
                from None
        recs = store.for_picks(ids, [], k)
        who = f"someone who likes {len(ids)} movie(s)"
    rows = [{**store.movie(r.item_idx), "score": r.score, "reason": r.reason} for r in recs]
    if as_json:
        print_json({"artifact": str(artifact), "user": user, "recommendations": rows})
        return
    table = Table(title=f"{store.name}: top {k} for {who}")
    for column in ("#", "movie", "genres", "score", "why"):
        table.add_column(column, justify="right" if column in ("#", "score") else "left")
    for rank, row in enumerate(rows, 1):
        table.add_row(str(rank), f"{row['title']} ({row['year']})" if row["year"] else row["title"],
                      "|".join(row["genres"]), f"{row['score']:.3f}", row["reason"])
    console.print(table)


@app.command("models")
def models() -> None:
    """The registered models and their default hyper-parameter grids."""
    from movierec.models.base import available, get_class

    table = Table(title="models")
    table.add_column("name", style="bold")
    table.add_column("what")
    table.add_column("default grid")
    for name in available():
        cls = get_class(name)
        # the docstring's first sentence, without reST markup
        doc = " ".join((cls.__doc__ or "").split()).split(". ")[0].replace("``", "")
        table.add_row(name, doc, str(getattr(cls, "param_grid", {}) or "-"))
    console.print(table)


# ---------------------------------------------------------------------- eda
