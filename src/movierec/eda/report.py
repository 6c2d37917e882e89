"""Write the exploratory report of a dataset: ``index.html`` plus one PNG per figure.

The report is built in a temporary folder beside the target and renamed into place at the end,
so a failure (bad data, full disk, interrupt) never leaves a half report; an older report in the
same folder stays until the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from movierec.data.dataset import Dataset
from movierec.eda import figures, readings, stats
from movierec.eda.page import GENERATOR, Section, render
from movierec.errors import MovierecError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_report(ds: Dataset, out: str | Path,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Write the EDA report of ``ds`` into the folder ``out`` and return the page's path.

    ``out`` is created (with its parents); if it exists it must be empty or hold an earlier
    movierec EDA report, which is replaced. Raises :class:`MovierecError` for an empty or
    malformed dataset or an unusable ``out``, before anything is written.
    """
    stats.check_reportable(ds)
    out = Path(out).expanduser().absolute()
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        sections, summary_rows = _build(ds, tmp, progress or (lambda _msg: None))
        page = render(ds.name, summary_rows, sections)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report folder is for reading
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


# ---------------------------------------------------------------------- building
def _build(ds: Dataset, folder: Path, progress: Callable[[str], None]
           ) -> tuple[list[Section], list[tuple[str, str]]]:
    summary = ds.summary()
    mean = float(ds.rating.astype(np.float64).mean())
    sections: list[Section] = []

    def add(key: str, title: str, fig, reading: str, alt: str) -> None:
        progress(f"figure {len(sections) + 1}: {title}")
        fig.savefig(folder / f"{key}.png", format="png")
        sections.append(Section(key, title, f"{key}.png", alt, reading))

    stars, counts = stats.rating_histogram(ds)
    add("rating_distribution", "Rating distribution", figures.rating_distribution(stars, counts),
        readings.rating_distribution(stars, counts), "bar chart of ratings per star value")
    for who, c in (("user", ds.user_counts), ("movie", ds.item_counts)):
        active = c[c > 0]
        add(f"ratings_per_{who}", f"Ratings per {who} (long tail, log-log)",
            figures.long_tail(active, stats.log_bins(active), who),
            readings.long_tail(c, who, ds.n_items if who == "movie" else None),
            f"log-log histogram and rank curve of ratings per {who}")
    density = stats.matrix_density(ds)
    add("rating_matrix", "Sparsity: the user x movie matrix",
        figures.rating_matrix(density, ds.n_users, int(ds.rated_items.sum())),
        readings.rating_matrix(density, summary["sparsity"]),
        "heatmap of rated cells, users and movies sorted by activity")

    if ds.genre_names:
        g = stats.genre_stats(ds)
        sd = float(ds.rating.astype(np.float64).std())
        add("genre_counts", "Rating count and mean rating per genre",
            figures.genre_counts(g, mean), readings.genre_counts(g, mean, sd),
            "bars of ratings per genre and dots of mean rating per genre")
        add("genre_boxplots", "Ratings per genre (box plots)", figures.genre_boxplots(g),
            readings.genre_boxplots(g), "box plots of star ratings per genre")
        add("genre_cooccurrence", "Genre x genre co-occurrence",
            figures.genre_heatmap(g.cooccurrence, g.names, "cooccurrence"),
            readings.genre_cooccurrence(g), "annotated heatmap of movies sharing two genres")
        add("genre_correlation", "Genre x genre correlation",
            figures.genre_heatmap(g.correlation, g.names, "correlation"),
            readings.genre_correlation(g), "annotated heatmap of genre indicator correlations")
        add("genre_vif", "Multicollinearity of the genre indicators (VIF)",
            figures.genre_vif(g), readings.genre_vif(g),
            "bar chart of variance inflation factors per genre")

    ts = stats.ratings_over_time(ds)
    add("ratings_over_time", "Ratings over time", figures.ratings_over_time(ts),
        readings.ratings_over_time(ts, summary["first_timestamp"], summary["last_timestamp"]),
        f"ratings per {ts.unit} and mean rating per {ts.unit}")
    for d in stats.demographics(ds):
        add(f"users_{d.attribute}", f"Users by {d.attribute}", figures.demographic(d, mean),
            readings.demographic(d), f"users and mean rating per {d.attribute}")
    return sections, _summary_rows(summary, ds)


def _summary_rows(s: dict, ds: Dataset) -> list[tuple[str, str]]:
    def day(t: int) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")

    def quant(q: dict) -> str:
        return (f"min {q['min']:,} · median {q['median']:g} · mean {q['mean']:.1f} · "
                f"90th percentile {q['p90']:g} · max {q['max']:,}")

    stars = ", ".join(s["rating_histogram"])
    extras = [k[4:].replace("_", " ") for k in ("has_user_table", "has_tags", "has_links",
                                                 "has_genome") if s[k]]
    return [
        ("dataset", s["name"]),
        ("users", f"{s['n_users']:,}"),
        ("movies", f"{s['n_items']:,} in the catalogue, {s['n_rated_items']:,} with a rating"),
        ("ratings", f"{s['n_ratings']:,}"),
        ("sparsity", f"{s['sparsity']:.4%} of user x rated-movie cells are empty "
                     f"(density {1 - s['sparsity']:.4%})"),
        ("star values", stars),
        ("mean rating", f"{s['mean_rating']:.3f} (standard deviation "
                        f"{float(ds.rating.astype(np.float64).std()):.3f})"),
        ("ratings per user", quant(s["ratings_per_user"])),
        ("ratings per rated movie", quant(s["ratings_per_item"])),
        ("time span", f"{day(s['first_timestamp'])} to {day(s['last_timestamp'])}"),
        ("genres", f"{len(s['genres'])}: " + ", ".join(s["genres"]) if s["genres"] else "none"),
        ("also has", ", ".join(extras) or "-"),
        ("fingerprint", s["fingerprint"]),
    ]


# ---------------------------------------------------------------------- the folder
def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise MovierecError(f"--out {out} is a file; give a folder for the report.")
    if out.is_dir() and any(out.iterdir()) and not _is_report(out):
        raise MovierecError(
            f"--out {out} already holds files that are not a movierec EDA report; give a new or "
            "empty folder (an earlier report there would be replaced)."
        )


def _is_report(folder: Path) -> bool:
    page = folder / "index.html"
    try:
        head = page.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}">' in head


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
