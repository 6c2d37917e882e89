"""The ``movierec`` command line: thin wrappers that parse options, call the library and print.

Heavy libraries are imported inside the commands that need them so ``movierec --help`` is quick.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from movierec.errors import MovierecError

app = typer.Typer(
    help="movierec: MovieLens from download to a running recommendation service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="List, download and describe MovieLens releases.",
                           no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

console = Console()
err_console = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding (or receiving) the release folders; default $MOVIEREC_DATA or "
        "~/.cache/movierec. A folder that already holds the files is used as it is.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Change a config value: KEY.PATH=VALUE (YAML value), e.g. "
    "model.params.lr=0.01 or run.num_threads=1; repeat for several.")]
ContentSplitOption = Annotated[str, typer.Option(
    "--split", help="fixed / generate: the leave-one-out train part (test items left out); "
    "none: every rating.")]


def print_json(obj) -> None:
    """Plain JSON on stdout (no rich markup), so other programs can parse it."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------- datasets
@datasets_app.command("list")
def datasets_list(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Every MovieLens release movierec knows, and whether it is on disk."""
    from movierec.data.download import find_local
    from movierec.data.registry import RELEASES

    rows = []
    for r in RELEASES.values():
        local = find_local(r.name, data_dir)
        rows.append({
            "name": r.name, "ratings": r.n_ratings, "users": r.n_users, "movies": r.n_movies,
            "scale": r.rating_scale, "zip_mb": r.size_mb, "local": str(local) if local else None,
            "description": r.description, "url": r.url,
        })
    if as_json:
        print_json(rows)
        return
    table = Table(title="MovieLens releases")
    for col in ("name", "ratings", "users", "movies", "scale", "zip MB", "on disk", "description"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"], f"{row['ratings']:,}", f"{row['users']:,}", f"{row['movies']:,}",
            row["scale"], f"{row['zip_mb']:g}", row["local"] or "-", row["description"],
        )
    console.print(table)


@datasets_app.command("download")
def datasets_download(
    name: Annotated[str, typer.Argument(help="Release name, e.g. ml-100k.")],
    data_dir: DataDirOption = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
) -> None:
    """Download, verify (MD5) and extract a release into the data folder."""
    from movierec.data.download import download, find_local

    local = None if force else find_local(name, data_dir)
    if local is not None:
        console.print(f"{name} is already at [bold]{local}[/]")
        return
    folder = download(name, data_dir, force=force)
    console.print(f"{name} downloaded and verified: [bold]{folder}[/]")


@datasets_app.command("info")
def datasets_info(
    name: Annotated[str, typer.Argument(help="Release name (ml-100k, ...) or a folder path.")],
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    download: Annotated[bool, typer.Option(help="Download the release if it is missing.")] = True,
) -> None:
    """Users, items, ratings, sparsity, rating histogram and genres of a release."""
    from movierec.data.loading import load_dataset

    ds = load_dataset(name, data_dir, download=download)
    summary = ds.summary()
    if as_json:
        print_json(summary)
        return
    _print_summary(summary)


@datasets_app.command("labels")
def datasets_labels(
    name: Annotated[str, typer.Argument(help="Release name (ml-100k, ...) or a folder path.")],
    out: Annotated[Path, typer.Option(help="Output file: .csv, .tsv or .parquet.")],
    data_dir: DataDirOption = None,
    mode: Annotated[str, typer.Option(help="binary (every rating positive), hard or soft "
                                      "(rating thresholds; see movierec.data.labels).")]
    = "binary",
    negatives: Annotated[int, typer.Option(help="Sampled unrated items per rating.")] = 4,
    split: ContentSplitOption = "fixed",
    seed: Annotated[int, typer.Option(help="Seed of the negative sampling.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """One epoch of NCF training labels: index | userid | movieid | interaction | rating."""
    from movierec.data.labels import LABEL_MODES, labelled_table, write_labelled_table
    from movierec.data.loading import load_dataset
    from movierec.data.splits import train_part

    if mode not in LABEL_MODES:
        raise MovierecError(f"unknown --mode {mode!r}; expected one of {', '.join(LABEL_MODES)}")
    ds = train_part(load_dataset(name, data_dir), data_dir, split)
    table = labelled_table(ds, mode, negatives, seed)
    path = write_labelled_table(table, out)
    counts = {"rows": table.height,
              "observed": int(table["rating"].is_not_null().sum()),
              "positive_targets": float(table["interaction"].sum()),
              "path": str(path)}
    if as_json:
        print_json(counts)
        return
    console.print(f"{counts['rows']:,} rows ({counts['observed']:,} observed ratings, "
                  f"{counts['rows'] - counts['observed']:,} sampled negatives) -> [bold]{path}[/]")


def _print_summary(s: dict) -> None:
    table = Table(title=f"{s['name']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("users", f"{s['n_users']:,}")
    table.add_row("items", f"{s['n_items']:,} ({s['n_rated_items']:,} rated)")
    table.add_row("ratings", f"{s['n_ratings']:,}")
    table.add_row("sparsity", f"{s['sparsity']:.4%}")
    table.add_row("mean rating", f"{s['mean_rating']:.3f}")
    per_user = s["ratings_per_user"]
    table.add_row("ratings per user", f"min {per_user['min']}, median {per_user['median']:g}, "
                  f"max {per_user['max']:,}")
    extras = [k[4:] for k in ("has_user_table", "has_tags", "has_links", "has_genome") if s[k]]
    table.add_row("also has", ", ".join(extras) or "-")
    console.print(table)

    hist = Table(title="rating histogram")
    hist.add_column("stars", justify="right")
    hist.add_column("ratings", justify="right")
    hist.add_column("")
    top = max(s["rating_histogram"].values())
    for stars, n in s["rating_histogram"].items():
        hist.add_row(stars, f"{n:,}", "█" * max(1, round(40 * n / top)))
    console.print(hist)

    genres = Table(title="genres (movies)")
    genres.add_column("genre")
    genres.add_column("movies", justify="right")
    for g, n in sorted(s["genres"].items(), key=lambda kv: -kv[1]):
        genres.add_row(g, f"{n:,}")
    console.print(genres)


# ---------------------------------------------------------------------- evaluate / compare
ProtocolOption = Annotated[str, typer.Option("--protocol", "-p", help="p1, p2 or p3 "
                                             "(../shared/EVALUATION.md).")]


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
    as_json: JsonOption = False,
) -> None:
    """Train (or load) one model and evaluate it under one protocol."""
    from movierec.evaluation.runner import evaluate_one

    result = evaluate_one(
        model=model, config=config, artifact=artifact, dataset=dataset, data_dir=data_dir,
        protocol=protocol.lower(), negatives=negatives, split_mode=split, seed=seed,
        overrides=overrides,
        progress=None if as_json else (lambda msg: err_console.print(f"[dim]{msg}[/]")),
    )
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{result['model']} · {result['dataset']} · {protocol.upper()}")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    console.print(table)


@app.command("compare")
def compare(
    config: Annotated[Path, typer.Argument(help="YAML: models (+grids), datasets, protocols, "
                                           "seeds.")],
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default results/<name>.")]
    = None,
    overrides: SetOption = None,
) -> None:
    """Train, select on validation, test: a table per dataset and protocol, plus files."""
    from movierec.config import CompareConfig, load_config
    from movierec.evaluation.compare import run_comparison
    from movierec.evaluation.report import rich_tables
    from movierec.evaluation.report_html import write_outputs

    cfg = load_config(config, CompareConfig, overrides)
    with console.status("comparing...") as status:
        comparison = run_comparison(cfg, data_dir, progress=lambda m: status.update(m))
    # piped output has no terminal width: give the wide tables room instead of 80 columns
    out_console = console if console.is_terminal else Console(width=200)
    for table in rich_tables(comparison):
        out_console.print(table)
    out_dir = out or Path(cfg.output_dir or Path("results") / cfg.name)
    written = write_outputs(comparison, out_dir)
    console.print(f"wrote {written['json']}, {written['markdown']}, {written['html']} and "
                  f"{len(written['charts'])} figures in {out_dir}")


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

    cfg = load_config(config, TrainConfig, overrides)
    if out is not None:
        cfg = cfg.model_copy(update={"artifact": str(out)})
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    if "progress" not in cfg.run.model_fields_set:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"progress": True})})
    if resume:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"resume": True})})
    path, seconds = train_artifact(
        cfg, data_dir, say=lambda line: console.print(line, markup=False, soft_wrap=True))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes the artifact
        from movierec.serving.catalogue import ensure_catalogue

        ensure_catalogue(path, data_dir or cfg.data_dir)  # `serve` needs no data folder then
        console.print(f"trained {cfg.model.display_name} in {seconds:.1f}s -> [bold]{path}[/]")


@app.command("recommend")
def recommend(
    artifact: Annotated[Path, typer.Option(help="A trained artifact folder (`movierec train "
                                           "... --out DIR`).")],
    user: Annotated[int | None, typer.Option(help="A MovieLens user id the model was trained "
                                             "on.")] = None,
    liked: Annotated[str | None, typer.Option(help="Or: comma-separated movie ids someone "
                                              "likes (folded in, no retraining).")] = None,
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
@app.command("eda")
def eda(
    dataset: Annotated[str, typer.Argument(help="Release name (ml-100k, ...) or a folder path.")],
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (index.html + PNG figures); "
                                             "default reports/eda-<dataset>.")] = None,
    download: Annotated[bool, typer.Option(help="Download the release if it is missing.")] = True,
) -> None:
    """Exploratory data analysis: one HTML page with the figures of a release."""
    from movierec.eda import report_dataset

    target = out or Path("reports") / f"eda-{Path(dataset).name}"
    with console.status("writing the report...") as status:
        page = report_dataset(dataset, target, data_dir, download=download,
                              progress=lambda m: status.update(m))
    console.print(f"wrote [bold]{page}[/] and its figures")


# ---------------------------------------------------------------------- serving
HostOption = Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every "
                                         "interface).")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.")]


@app.command("serve")
def serve(
    artifact: Annotated[list[str], typer.Option(
        help="Artifact folder to serve (`movierec train --out DIR`); repeat it to serve several "
        "(requests choose with ?model=NAME, NAME being the folder's name, or NAME=DIR).")],
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    data_dir: DataDirOption = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    default: Annotated[str | None, typer.Option(help="Name of the artifact that answers "
                                                "requests naming none (default: the first).")]
    = None,
    workers: Annotated[int, typer.Option(help="Server processes, each with the models loaded "
                                         "once: about one per core.")] = 1,
    user_cache_size: Annotated[int, typer.Option(help="Known-user answers kept in memory "
                                                 "(0: off).")] = 4096,
    compute_threads: Annotated[int, typer.Option(help="BLAS / OpenMP / torch threads per "
                                                 "process (requests run side by side; more "
                                                 "oversubscribes the cores).")] = 1,
) -> None:
    """Serve trained models: the REST API (docs at /docs) and the poster-picking web page."""
    from movierec.serving.launch import serve as run_server

    run_server(artifact, host, port, data_dir, access_log,
               progress=lambda msg: console.print(f"[bold green]{msg}[/]"), workers=workers,
               default=default, user_cache_size=user_cache_size,
               compute_threads=compute_threads)


@app.command("quickstart")
def quickstart(
    data_dir: DataDirOption = None,
    folder: Annotated[Path, typer.Option(
        "--folder", help="Where the trained models are kept (one folder each).")]
    = Path("artifacts/quickstart"),
    models: Annotated[list[str] | None, typer.Option(
        "--model", help="Models to train and serve (repeat); the first is the default. "
        "Default: neumf, then ials.")] = None,
    retrain: Annotated[bool, typer.Option(help="Train again even if the artifacts exist.")]
    = False,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (about one per core).")] = 1,
    serve_app: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the app "
                                            "afterwards.")] = True,
) -> None:
    """Get ml-latest-small, train NeuMF and iALS once (kept), and serve the web app."""
    from movierec.serving.launch import serve as run_server
    from movierec.serving.quickstart import QUICKSTART_MODELS, prepare_quickstart

    named = prepare_quickstart(data_dir, folder, tuple(models or QUICKSTART_MODELS), retrain,
                               progress=lambda msg: err_console.print(f"[dim]{msg}[/]"))
    if serve_app:
        run_server([f"{name}={path}" for name, path in named], host, port, data_dir,
                   workers=workers,
                   progress=lambda msg: console.print(f"[bold green]{msg}[/]"))


# ---------------------------------------------------------------------- content
content_app = typer.Typer(help="Content-based tools: movie embeddings, user x genre tables and "
                          "heatmap, the genre-aware training set.", no_args_is_help=True)
app.add_typer(content_app, name="content")
MethodOption = Annotated[str, typer.Option("--method", help="genre: binary genre vectors; "
                                           "text: sentence embeddings of descriptions.")]
EmbedderOption = Annotated[str, typer.Option(help="Text embedder: minilm (all-MiniLM-L6-v2) "
                                             "or hashing.")]
@app.command("similar")
def similar(
    title: Annotated[str, typer.Argument(help="Movie title; case and year optional, e.g. "
                                         "'toy story'.")],
    dataset: Annotated[str, typer.Option(help="Release name or folder.")] = "ml-latest-small",
    data_dir: DataDirOption = None,
    method: MethodOption = "genre",
    k: Annotated[int, typer.Option("-k", help="How many movies.")] = 10,
    embedder: EmbedderOption = "minilm",
    as_json: JsonOption = False,
) -> None:
    """The movies most similar to one movie, by genres or by text embeddings."""
    from movierec.content.similar import similar_movies
    from movierec.data.loading import load_dataset

    ds = load_dataset(dataset, data_dir)
    out = similar_movies(ds, title, k=k, method=method, embedder=embedder, progress=not as_json)
    if as_json:
        print_json(out)
        return
    table = Table(title=f"like {out['movie']['title']} ({method})")
    table.add_column("movie id", justify="right")
    table.add_column("title")
    table.add_column("score", justify="right")
    for row in out["similar"]:
        table.add_row(str(row["item_id"]), row["title"], f"{row['score']:.3f}")
    console.print(table)


@content_app.command("embed")
def content_embed(
    dataset: Annotated[str, typer.Argument(help="Release name or folder.")],
    data_dir: DataDirOption = None,
    embedder: EmbedderOption = "minilm",
) -> None:
    """Embed every movie's description (or find the cached embeddings)."""
    import time

    from movierec.data.loading import load_dataset
    from movierec.models.content import text_item_vectors

    ds = load_dataset(dataset, data_dir)
    t0 = time.perf_counter()
    vectors = text_item_vectors(ds, embedder, progress=True)
    console.print(f"{ds.name}: {vectors.shape[0]:,} movies x {vectors.shape[1]} dims in "
                  f"{time.perf_counter() - t0:.1f}s (cached for the next run)")


@content_app.command("tables")
def content_tables(
    dataset: Annotated[str, typer.Argument(help="Release name or folder.")],
    out: Annotated[Path, typer.Option(help="Folder for genre_genre.csv, genre_heatmap.png, "
                                      "user_genre.parquet, user_genres.parquet.")],
    data_dir: DataDirOption = None,
    method: MethodOption = "text",
    embedder: EmbedderOption = "minilm",
    split: ContentSplitOption = "fixed",
    as_json: JsonOption = False,
) -> None:
    """User and genre embeddings, user x genre and genre x genre similarity, heatmap."""
    from movierec.content.runs import GenreTablesRecipe, write_tables

    recipe = GenreTablesRecipe(dataset, data_dir, split, method, embedder)
    result = write_tables(recipe, out, progress=not as_json)
    if as_json:
        print_json(result)
        return
    console.print(f"{result['dataset']}: {result['users']:,} users x {result['genres']} genres; "
                  f"on average {result['mean_positive_genres']:.1f} positive and "
                  f"{result['mean_negative_genres']:.1f} negative genres per user")
    for path in result["files"].values():
        console.print(f"wrote [bold]{path}[/]")


@content_app.command("training-set")
def content_training_set(
    dataset: Annotated[str, typer.Argument(help="Release name or folder.")],
    out: Annotated[Path, typer.Option(help="Output file: .csv, .tsv or .parquet.")],
    data_dir: DataDirOption = None,
    method: MethodOption = "text",
    embedder: EmbedderOption = "minilm",
    ratio: Annotated[int, typer.Option(help="Negative rows per positive row.")] = 3,
    split: ContentSplitOption = "fixed",
    seed: Annotated[int, typer.Option(help="Seed of the negative sampling.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """The genre-aware training rows (user, movie, interaction, genre, title)."""
    from movierec.content.runs import GenreTablesRecipe, write_training_set

    recipe = GenreTablesRecipe(dataset, data_dir, split, method, embedder)
    result = write_training_set(recipe, out, ratio=ratio, seed=seed, progress=not as_json)
    if as_json:
        print_json(result)
        return
    console.print(f"{result['dataset']}: {result['positive']:,} positive and "
                  f"{result['negative']:,} negative rows for {result['users']:,} of "
                  f"{result['users_in_train']:,} users -> [bold]{result['path']}[/]")


# ---------------------------------------------------------------------- entry point
def main() -> None:
    """Console entry point: library errors become one red line and exit code 2."""
    # torch's OpenMP threads spin while they wait; on a machine where anything else runs (a
    # server, a second job), that made a training epoch about 3x slower here. Sleeping waiters
    # cost little. Set before torch loads (the commands import it lazily); a user's own wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except MovierecError as e:
        # one line whatever the terminal's width (soft wrap); markup in the message is text
        err_console.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
