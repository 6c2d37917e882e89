"""Find a movie by a forgivingly typed title, and the movies most similar to it by content.

Title matching ignores case, punctuation, parenthesised alternative titles and the leading
article, which MovieLens moves to the end (``"American President, The (1995)"`` matches
``"the american president"`` and ``"American President"``); the year is optional. When several
movies match (remakes), the one with the most ratings is taken unless the year picks one. When
none matches, the error names the closest spellings (difflib).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import numpy as np
import polars as pl

from movierec.data.dataset import Dataset
from movierec.data.titles import split_title_year
from movierec.errors import MovierecError

__all__ = ["METHODS", "TitleNotFoundError", "find_movie", "normalise_title", "similar_movies"]

METHODS = ("genre", "text")
_ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "el", "das", "der", "die", "los",
             "las")


class TitleNotFoundError(MovierecError, LookupError):
    """No movie of the dataset matches a title; the message suggests close spellings."""


def normalise_title(title: str) -> str:
    """The comparison key of a title without its year: lower case, parenthesised parts removed,
    a leading article (or a trailing ``", The"``) dropped, punctuation dropped, single spaces:
    ``"American President, The (1995)"`` and ``"the american president"`` share a key."""
    t = re.sub(r"\([^)]*\)", " ", title.lower())
    t = t.strip()
    m = re.search(r",\s*([a-z']+)\s*$", t)
    if m and m.group(1) in _ARTICLES:
        t = t[: m.start()]
    words = re.sub(r"[^\w]+", " ", t).split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def _keys(dataset: Dataset) -> pl.DataFrame:
    titles = dataset.items.get_column("title").fill_null("").to_list()
    split = [split_title_year(t) for t in titles]  # once per movie, not a hot path
    keys = [normalise_title(base) for base, _ in split]
    title_year = pl.Series([y for _, y in split], dtype=pl.Int32)
    return pl.DataFrame({
        "item_idx": np.arange(dataset.n_items, dtype=np.int32),
        "key": keys,
        "year": title_year.fill_null(dataset.items.get_column("year").cast(pl.Int32)),
        "title": titles,
        "n": dataset.item_counts,
    })


def find_movie(dataset: Dataset, query: str) -> int:
    """The ``item_idx`` of the movie ``query`` names (see the module docstring for the rules).

    Raises :class:`TitleNotFoundError` with up to five close titles when nothing matches.
    """
    base, year = split_title_year(query.strip())
    key = normalise_title(base)
    if not key:
        raise TitleNotFoundError(f"empty movie title {query!r}; give a title such as "
                                 "'Toy Story (1995)'")
    table = _keys(dataset)
    exact = table.filter(pl.col("title").str.to_lowercase() == query.strip().lower())
    hits = exact if exact.height else table.filter(pl.col("key") == key)
    if year is not None and hits.height:
        same_year = hits.filter(pl.col("year") == year)
        if same_year.height == 0:
            others = ", ".join(hits.sort("n", descending=True).get_column("title").to_list()[:5])
            raise TitleNotFoundError(
                f"no movie titled {base.strip()!r} from {year} in {dataset.name}; "
                f"did you mean: {others}?"
            )
        hits = same_year
    if hits.height:
        return int(hits.sort(["n", "item_idx"], descending=[True, False])["item_idx"][0])
    raise TitleNotFoundError(_suggest(table, key, query, dataset.name))


def _suggest(table: pl.DataFrame, key: str, query: str, name: str) -> str:
    keys = table.get_column("key").unique().to_list()
    close = difflib.get_close_matches(key, keys, n=5, cutoff=0.6)
    if not close:  # a prefix or a word of a longer title: "toy stor" -> "toy story"
        close = [k for k in keys if k.startswith(key) or f" {key}" in f" {k}"][:5]
    if not close:
        return f"no movie titled {query!r} in {name} (and no close spelling)"
    rank = {k: r for r, k in enumerate(close)}
    rows = (table.filter(pl.col("key").is_in(close))
            .with_columns(pl.col("key").replace_strict(rank, return_dtype=pl.Int64).alias("r"))
            .sort(["r", "n"], descending=[False, True]))
    titles = rows.unique("key", keep="first", maintain_order=True).get_column("title").to_list()
    return f"no movie titled {query!r} in {name}; did you mean: {'; '.join(titles)}?"


def similar_movies(
    dataset: Dataset,
    query: str,
    k: int = 10,
    method: str = "genre",
    *,
    embedder: Any = "minilm",
    progress: bool = False,
) -> dict[str, Any]:
    """The ``k`` movies of ``dataset`` closest to the one ``query`` names.

    ``method="genre"``: cosine of binary genre vectors; ``"text"``: cosine of description
    embeddings (``embedder``; cached on disk). Ties: more ratings first, then ascending movie
    id. Returns ``{"query", "method", "movie": {"item_id", "title"}, "similar": [{"item_id",
    "title", "score"}, ...]}``.
    """
    from movierec.content.tables import unit_rows
    from movierec.models.content import genre_item_vectors, nearest, text_item_vectors

    if method not in METHODS:
        raise MovierecError(f"unknown similarity method {method!r}; expected one of {METHODS}")
    if k < 1:
        raise MovierecError(f"k must be at least 1, got {k}")
    item = find_movie(dataset, query)
    if method == "genre":
        vectors = genre_item_vectors(dataset)
    else:
        vectors = text_item_vectors(dataset, embedder, progress=progress)
    top, sims = nearest(unit_rows(vectors), item, k, dataset.item_counts)
    titles = dataset.items.get_column("title")
    return {
        "query": query,
        "method": method,
        "movie": {"item_id": int(dataset.item_ids[item]), "title": titles[item]},
        "similar": [
            {"item_id": int(dataset.item_ids[i]), "title": titles[int(i)],
             "score": round(float(s), 6)}
            for i, s in zip(top.tolist(), sims.tolist(), strict=True)
        ],
    }
