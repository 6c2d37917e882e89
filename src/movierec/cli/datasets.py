"""`movierec datasets ...`: list, download, describe and export the MovieLens releases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from movierec.cli.common import (
    ContentSplitOption,
    DataDirOption,
    ForceOption,
    JsonOption,
    console,
    datasets_app,
    print_json,
)
from movierec.errors import MovierecError


# ---------------------------------------------------------------------- datasets
@datasets_app.command("list")
def datasets_list(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Every MovieLens release movierec knows, and whether it is on disk."""
    from movierec.data.download import find_local
    from movierec.data.registry import RELEASES

    rows: list[dict[str, Any]] = []
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
    from movierec.data.download import download_release, find_local

    local = None if force else find_local(name, data_dir)
    if local is not None:
        console.print(f"{name} is already at [bold]{local}[/]")
        return
    got = download_release(name, data_dir, force=force)
    checked = "verified" if got.verified else got.how
    console.print(f"{name} downloaded ({checked}): [bold]{got.folder}[/]")


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
    force: ForceOption = False,
) -> None:
    """One epoch of NCF training labels: index | userid | movieid | interaction | rating."""
    from movierec.data.labels import LABEL_MODES, labelled_table, write_labelled_table
    from movierec.data.loading import input_files, load_dataset
    from movierec.data.splits import train_part
    from movierec.files import check_output_file

    if mode not in LABEL_MODES:
        raise MovierecError(f"unknown --mode {mode!r}; expected one of {', '.join(LABEL_MODES)}")
    check_output_file(out, force=force, inputs=input_files(name, data_dir))
    ds = train_part(load_dataset(name, data_dir), data_dir, split)
    table = labelled_table(ds, mode, negatives, seed)
    path = write_labelled_table(table, out)
    counts: dict[str, Any] = {"rows": table.height,
                              "observed": int(table["rating"].is_not_null().sum()),
                              "positive_targets": float(table["interaction"].sum()),
                              "path": str(path)}
    if as_json:
        print_json(counts)
        return
    console.print(f"{counts['rows']:,} rows ({counts['observed']:,} observed ratings, "
                  f"{counts['rows'] - counts['observed']:,} sampled negatives) -> [bold]{path}[/]")


@datasets_app.command("synthesize")
def datasets_synthesize(
    preset: Annotated[str, typer.Argument(help="Shape to copy: ml-100k, ml-1m, ml-20m or "
                                          "ml-32m (users x movies x ratings, star scale, dates).")],
    out: Annotated[Path, typer.Option(help="Release folder to write (new or empty, or one "
                                      "written by this command).")],
    layout: Annotated[str | None, typer.Option(help="File layout: csv (ml-20m/25m/32m), dat "
                                               "(ml-1m) or ml-100k; default: the preset's "
                                               "release's.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same "
                                      "files.")] = 0,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic MovieLens-shaped release (made-up data with planted taste structure) in
    the real release's file layout; movierec names it '<folder> (synthetic, seed N)' wherever
    it is shown."""
    import time

    from movierec.data.registry import RELEASES
    from movierec.data.synthetic import PRESETS, generate, write_release
    from movierec.files import owned_names, write_folder

    if preset not in PRESETS:
        raise MovierecError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    layout = layout or RELEASES[preset].layout
    if layout not in ("csv", "dat", "ml-100k"):
        raise MovierecError(f"unknown --layout {layout!r}; layouts: csv, dat, ml-100k")
    if layout == "ml-100k" and PRESETS[preset].half_stars:
        raise MovierecError(f"--layout ml-100k holds whole stars only; {preset} has half stars. "
                            "Use --layout csv or dat")
    owned_names(out, SYNTHETIC_KIND, force=force)  # refuse a folder of other files before work
    started = time.monotonic()
    with _StageProgress(f"synthesize {preset}") as bar:
        data = generate(preset, seed=seed, progress=lambda s, f: bar.update(s, 0.85 * f))
        folder = write_folder(out, lambda tmp: write_release(
            data, tmp, layout, progress=lambda s, f: bar.update(s, 0.85 + 0.15 * f)),  # type: ignore[arg-type]
            SYNTHETIC_KIND, force=force)
    result = {"folder": str(folder), "preset": preset, "layout": layout, "seed": seed,
              "users": data.users.height, "movies": data.items.height,
              "ratings": data.ratings.height, "seconds": round(time.monotonic() - started, 1)}
    if as_json:
        print_json(result)
        return
    console.print(f"{result['ratings']:,} synthetic ratings of {result['movies']:,} movies by "
                  f"{result['users']:,} users ({layout} layout, seed {seed}) in "
                  f"{result['seconds']:g} s -> [bold]{folder}[/]")


SYNTHETIC_KIND = "synthetic release"


class _StageProgress:
    """Progress of a job in named stages: a bar on a terminal; elsewhere (a log, CI, nohup) one
    line on stderr at most every ``every`` seconds, and at the end."""

    def __init__(self, desc: str, every: float = 5.0):
        import sys
        import time

        self.desc, self.every, self.clock = desc, every, time.monotonic
        self.started = self.last = self.clock()
        self.stream, self.bar = sys.stderr, None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=100, desc=desc, unit="%", leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")

    def update(self, stage: str, fraction: float) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc}: {stage}", refresh=False)
            self.bar.update(round(100 * fraction) - self.bar.n)
            return
        now = self.clock()
        if now - self.last >= self.every or fraction >= 1.0:
            self.last = now
            print(f"{self.desc}: {stage}, {100 * fraction:.0f}% ({now - self.started:.0f} s)",
                  file=self.stream, flush=True)

    def __enter__(self) -> _StageProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


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
