"""`movierec similar` and `movierec content ...`: content-based tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from movierec.cli.common import (
    ContentSplitOption,
    DataDirOption,
    ForceOption,
    JsonOption,
    app,
    console,
    content_app,
    print_json,
)

# ---------------------------------------------------------------------- content
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
    force: ForceOption = False,
) -> None:
    """User and genre embeddings, user x genre and genre x genre similarity, heatmap."""
    from movierec.content.runs import GenreTablesRecipe, write_tables

    recipe = GenreTablesRecipe(dataset, data_dir, split, method, embedder)
    result = write_tables(recipe, out, progress=not as_json, force=force)
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
    force: ForceOption = False,
) -> None:
    """The genre-aware training rows (user, movie, interaction, genre, title)."""
    from movierec.content.runs import GenreTablesRecipe, write_training_set

    recipe = GenreTablesRecipe(dataset, data_dir, split, method, embedder)
    result = write_training_set(recipe, out, ratio=ratio, seed=seed, progress=not as_json,
                                force=force)
    if as_json:
        print_json(result)
        return
    console.print(f"{result['dataset']}: {result['positive']:,} positive and "
                  f"{result['negative']:,} negative rows for {result['users']:,} of "
                  f"{result['users_in_train']:,} users -> [bold]{result['path']}[/]")


# ---------------------------------------------------------------------- entry point
