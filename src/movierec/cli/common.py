"""What every command module of the CLI shares: the Typer apps, the consoles, the common options
and the JSON printer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="movierec: MovieLens from download to a running recommendation service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="List, download and describe MovieLens releases.",
                           no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
content_app = typer.Typer(help="Content-based tools: movie embeddings, user x genre tables and "
                          "heatmap, the genre-aware training set.", no_args_is_help=True)
app.add_typer(content_app, name="content")

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
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Write into an existing folder that movierec did not make (its files are "
    "kept, never deleted) or replace an existing output file.")]
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
