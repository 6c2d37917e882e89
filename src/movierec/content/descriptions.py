"""One short text per movie, built from what the dataset knows about it.

``"Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun.
About: toys, computer animation, pixar animation."`` -- the title (with its year; the year is
added when the title lacks it), the genres, up to ``max_tags`` user tags (ml-latest, ML-20M and
later) and the ``genome_tags`` most relevant tag-genome tags (where the release has a genome).
Parts the dataset lacks are left out; a movie with no metadata at all gets an empty text.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from movierec.data.dataset import Dataset
from movierec.data.titles import title_year

__all__ = ["describe_movies", "genome_top_tags"]


def genome_top_tags(dataset: Dataset, n: int = 10) -> list[list[str]]:
    """Per ``item_idx``, the ``n`` tag-genome tags most relevant to the movie (most relevant
    first); empty lists without a genome or for movies the genome does not cover."""
    out: list[list[str]] = [[] for _ in range(dataset.n_items)]
    g = dataset.genome
    if g is None or n <= 0 or len(g.tags) == 0:
        return out
    n = min(n, len(g.tags))
    rel = np.asarray(g.relevance, dtype=np.float32)
    top = np.argpartition(-rel, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(rel, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    known = np.isin(g.item_ids, dataset.item_ids)
    rows = dataset.item_index(g.item_ids[known])
    tags = np.asarray(g.tags, dtype=object)
    for r, t in zip(rows.tolist(), tags[top[known]].tolist(), strict=True):
        out[r] = t
    return out


def describe_movies(dataset: Dataset, max_tags: int = 10, genome_tags: int = 10) -> list[str]:
    """The description of every movie, in ``item_idx`` order (see the module docstring)."""
    items = dataset.items
    title = pl.col("title").fill_null("")
    has_year = title_year(title).is_not_null()
    with_year = (
        pl.when(pl.col("year").is_not_null() & ~has_year)
        .then(pl.concat_str(title, pl.lit(" ("), pl.col("year").cast(pl.String), pl.lit(")")))
        .otherwise(title)
    )
    genres = pl.col("genres").list.join(", ")
    parts = [
        with_year.alias("t"),
        pl.when(genres != "").then(pl.lit("Genres: ") + genres).alias("g"),
    ]
    if "tags" in items.columns and max_tags > 0:
        tags = pl.col("tags").list.head(max_tags).list.join(", ")
        parts.append(pl.when(tags != "").then(pl.lit("Tags: ") + tags).alias("u"))
    frame = items.select(parts)
    if dataset.genome is not None and genome_tags > 0:
        about = pl.Series("a", genome_top_tags(dataset, genome_tags), dtype=pl.List(pl.String))
        frame = frame.with_columns(
            pl.when(about.list.len() > 0).then(pl.lit("About: ") + about.list.join(", "))
            .alias("a")
        )
    text = pl.concat_str(
        [pl.when(pl.col(c).is_not_null() & (pl.col(c) != "")).then(pl.col(c) + pl.lit("."))
         for c in frame.columns],
        separator=" ", ignore_nulls=True,
    )
    return frame.select(text.alias("text")).get_column("text").fill_null("").to_list()
