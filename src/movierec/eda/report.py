"""Write the exploratory report of a dataset: ``index.html`` plus one PNG per figure.

The report is built in a temporary folder beside the target and swapped into place at the end
(:func:`movierec.files.write_folder`), so a failure (bad data, full disk, interrupt, a killed
process) never leaves a half report; an older report in the same folder stays until the new one is
complete, and files there that movierec did not write are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from movierec import files
from movierec.data.dataset import Dataset
from movierec.eda import figures, readings, stats
from movierec.eda.page import GENERATOR, Section, render

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KIND = "EDA report"


def write_report(ds: Dataset, out: str | Path,
                 progress: Callable[[str], None] | None = None, *, force: bool = False,
                 inputs: tuple[str | Path, ...] = ()) -> Path:
    """Write the EDA report of ``ds`` into the folder ``out`` and return the page's path.

    ``out`` is created (with its parents); if it exists it must be empty or hold an earlier
    movierec EDA report, which is replaced; any other folder only with ``force``, and files there
    that movierec did not write are always kept. ``inputs`` (the release's folder and files) may
    not be ``out``. Raises :class:`MovierecError` for an empty or malformed dataset or an unusable
    ``out``, before anything is written.
    """
    stats.check_reportable(ds)
    out = Path(out).expanduser().absolute()
    check_target(out, force=force, inputs=inputs)

    def build(tmp: Path) -> None:
        sections, summary_rows = _build(ds, tmp, progress or (lambda _msg: None))
        page = render(ds.name, summary_rows, sections)
        (tmp / "index.html").write_text(page, encoding="utf-8")

    files.write_folder(out, build, KIND, force=force, recognise=_is_report)
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
def check_target(out: str | Path, *, force: bool = False,
                 inputs: tuple[str | Path, ...] = ()) -> None:
    """Raise :class:`MovierecError` when the report may not be written to ``out`` (see
    :func:`write_report`); call it before loading the data."""
    files.check_not_input(out, inputs)
    files.owned_names(Path(out).expanduser().absolute(), KIND, force=force, recognise=_is_report)


def _is_report(folder: Path) -> bool:
    """An EDA report of a movierec that wrote no marker."""
    page = folder / "index.html"
    try:
        head = page.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}">' in head
