"""`movierec serve / quickstart / eda`: the web app and the exploratory report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from movierec.cli.common import (
    DataDirOption,
    ForceOption,
    app,
    console,
    err_console,
)

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



@app.command("eda")
def eda(
    dataset: Annotated[str, typer.Argument(help="Release name (ml-100k, ...) or a folder path.")],
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (index.html + PNG figures); "
                                             "default reports/eda-<dataset>.")] = None,
    download: Annotated[bool, typer.Option(help="Download the release if it is missing.")] = True,
    force: ForceOption = False,
) -> None:
    """Exploratory data analysis: one HTML page with the figures of a release."""
    from movierec.eda import report_dataset

    target = out or Path("reports") / f"eda-{Path(dataset).name}"
    with console.status("writing the report...") as status:
        page = report_dataset(dataset, target, data_dir, download=download,
                              progress=lambda m: status.update(m), force=force)
    console.print(f"wrote [bold]{page}[/] and its figures")
