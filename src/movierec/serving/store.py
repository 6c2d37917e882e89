"""What the server holds in memory: the model, its id maps, the catalogue, popularity and the
item vectors for similar-movie search and for the "because you liked X" reasons.

Every public method takes and returns original MovieLens ids; unknown ids raise
:class:`NotFound`. Item vectors are the model's own item factors where it has them (iALS, BPR:
``item_factors_``; GMF / MLP / NeuMF: their item embedding tables), else each item's column of
the train interactions (item-item co-occurrence cosine), plus a small genre term that breaks ties
and places movies without interactions.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.errors import MovierecError
from movierec.models.base import Recommender, top_k
from movierec.serving.catalogue import display_titles, load_catalogue

log = logging.getLogger(__name__)

GENRE_WEIGHT = 0.1
"""Weight of genre cosine added to the model's item cosine in similarity."""
DISLIKE_WEIGHT = 2.0
"""Standardised-score penalty per unit of cosine similarity to the closest disliked movie."""
VARIED_POOL = 300
"""How many of the most popular movies the browse order re-arranges for variety."""


class NotFound(MovierecError, KeyError):
    """An id the served model does not know (the API answers 404)."""

    def __str__(self) -> str:
        return str(self.args[0])


class BadRequest(MovierecError, ValueError):
    """A request that is well-formed but cannot be answered as asked (the API answers 422)."""


@dataclass(frozen=True)
class Recommendation:
    item_idx: int
    score: float
    because_idx: int | None
    reason: str


class Store:
    """A served artifact: model, catalogue and precomputed vectors (read-only once built)."""

    def __init__(self, model: Recommender, catalogue: pl.DataFrame, name: str = "") -> None:
        """``catalogue`` has one row per movie id (:data:`~movierec.serving.catalogue.COLUMNS`);
        it is aligned to the model's ``item_ids_`` (movies it lacks get a placeholder title)."""
        model._check_fitted()
        self.model = model
        self.name = name or model.name
        self.item_ids = np.asarray(model.item_ids_, dtype=np.int64)
        self.user_ids = np.asarray(model.user_ids_, dtype=np.int64)
        cat = (
            pl.DataFrame({"item_id": self.item_ids})
            .join(catalogue.unique("item_id", keep="first"), on="item_id", how="left",
                  maintain_order="left")
            .with_columns(pl.col("genres").fill_null(pl.lit([], dtype=pl.List(pl.String))),
                          pl.col("n_ratings").fill_null(0))
        )
        missing = cat.get_column("title").is_null()
        if missing.any():
            log.warning("%d of the model's movies are not in the catalogue", int(missing.sum()))
            cat = cat.with_columns(
                pl.when(pl.col("title").is_null())
                .then(pl.format("Movie {}", pl.col("item_id")))
                .otherwise(pl.col("title")).alias("title")
            )
        self.catalogue = cat
        self.titles: list[str] = display_titles(cat.get_column("title")).to_list()
        self.years: list[int | None] = cat.get_column("year").to_list()
        self.genres: list[list[str]] = cat.get_column("genres").to_list()
        self.n_ratings = cat.get_column("n_ratings").to_numpy().astype(np.int64)
        self.mean_rating: list[float | None] = [
            None if v is None else round(float(v), 2)
            for v in cat.get_column("mean_rating").to_list()
        ]
        self.imdb_ids: list[int | None] = cat.get_column("imdb_id").to_list()
        self.tmdb_ids: list[int | None] = cat.get_column("tmdb_id").to_list()
        self._year = cat.get_column("year").fill_null(-1).to_numpy().astype(np.int64)
        self.popularity = np.asarray(model.item_counts_, dtype=np.int64)
        self.servable = self.popularity > 0
        self._search_key = (
            pl.Series(self.titles).str.to_lowercase() + " | "
            + cat.get_column("title").str.to_lowercase()
        )
        self._build_genres()
        self.vectors = _item_vectors(model)
        self.browse_order = self._varied_order()
        self._lock = threading.Lock()
        self.timings_ms = self._warm_up()

    @classmethod
    def open(cls, artifact: str | Path, data_dir: str | Path | None = None) -> Store:
        """Load an artifact folder and its catalogue (see :mod:`movierec.serving.catalogue`)."""
        from movierec.models.artifacts import load

        model = load(artifact)
        return cls(model, load_catalogue(artifact, data_dir), name=Path(artifact).name)

    # ------------------------------------------------------------------ id maps
    def item_index(self, movie_ids) -> np.ndarray:
        """``int32`` item_idx of original movie ids; :class:`NotFound` lists unknown ids."""
        ids = np.asarray(movie_ids, dtype=np.int64).ravel()
        pos = np.searchsorted(self.item_ids, ids).clip(0, max(0, len(self.item_ids) - 1))
        bad = (len(self.item_ids) == 0) | (self.item_ids[pos] != ids) if ids.size else []
        if ids.size and np.any(bad):
            unknown = ", ".join(str(i) for i in np.unique(ids[bad])[:10])
            raise NotFound(f"unknown movie id(s): {unknown}")
        return pos.astype(np.int32)

    def user_index(self, user_id: int) -> int:
        pos = int(np.searchsorted(self.user_ids, user_id))
        if pos >= len(self.user_ids) or self.user_ids[pos] != user_id:
            raise NotFound(f"unknown user id {user_id}: the model knows {len(self.user_ids)} "
                           "users; for someone new, POST their picks to /recommendations")
        return pos

    # ------------------------------------------------------------------ movies
    def movie(self, idx: int) -> dict:
        """The public description of one movie (by item_idx)."""
        return {
            "id": int(self.item_ids[idx]),
            "title": self.titles[idx],
            "year": self.years[idx],
            "genres": self.genres[idx],
            "n_ratings": int(self.n_ratings[idx]),
            "mean_rating": self.mean_rating[idx],
            "imdb_id": self.imdb_ids[idx],
            "tmdb_id": self.tmdb_ids[idx],
            "poster_url": f"/posters/{int(self.item_ids[idx])}",
        }

    def search(self, query: str | None = None, genre: str | None = None,
               year: int | None = None, limit: int = 50, offset: int = 0
               ) -> tuple[int, list[int]]:
        """``(total matches, item_idx of the page)``. Without a query, movies come in browse
        order (popular and varied first); with one, title-prefix matches first, then by rating
        count. ``query`` matches case-insensitively anywhere in the title."""
        mask = np.ones(len(self.item_ids), dtype=bool)
        if genre is not None:
            g = self.genre_lookup.get(genre.casefold())
            if g is None:
                raise BadRequest(f"unknown genre {genre!r}; known: {', '.join(self.genre_names)}")
            mask &= self._genre_dense[:, g] > 0
        if year is not None:
            mask &= self._year == year
        q = (query or "").strip().casefold()
        if q:
            mask &= self._search_key.str.contains(q, literal=True).to_numpy()
            hits = np.flatnonzero(mask)
            prefix = pl.Series(self.titles).gather(hits).str.to_lowercase() \
                .str.starts_with(q).to_numpy() if len(hits) else np.zeros(0, bool)
            order = hits[np.lexsort((hits, -self.n_ratings[hits], ~prefix))]
        else:
            order = self.browse_order[mask[self.browse_order]]
        return len(order), order[offset: offset + limit].tolist()

    def similar(self, movie_id: int, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` movies most similar to ``movie_id``: ``(item_idx, cosine)``, best first,
        the movie itself excluded; only movies with train interactions are candidates."""
        j = int(self.item_index([movie_id])[0])
        scores = self.similarity(np.asarray([j]))[0]
        allowed = self.servable.copy()
        allowed[j] = False
        items, s = _best(scores, k, allowed)
        return list(zip(items.tolist(), s.tolist(), strict=True))

    def similarity(self, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """``float32 (len(rows), n_items or len(cols))``: item cosine plus the genre term."""
        v, g = self.vectors, self._genre_norm
        vr = v[rows]
        vc = v if cols is None else v[cols]
        gc = g if cols is None else g[cols]
        sim = vr @ vc.T
        sim = sim.toarray() if sp.issparse(sim) else np.asarray(sim)
        return (sim + GENRE_WEIGHT * (g[rows] @ gc.T)).astype(np.float32)

    # ------------------------------------------------------------------ recommendations
    def for_user(self, user_id: int, k: int = 10) -> list[Recommendation]:
        """Top ``k`` for a train user, their train movies excluded, each with the train movie
        most similar to it as the reason."""
        u = self.user_index(user_id)
        items, scores = self.model.recommend(u, k, exclude_seen=True)
        seen = self.model.seen_.indices[self.model.seen_.indptr[u]: self.model.seen_.indptr[u + 1]]
        return self._with_reasons(items, scores, seen.astype(np.int32), "you watched")

    def for_picks(self, liked: list[int], disliked: list[int] | None = None, k: int = 10
                  ) -> list[Recommendation]:
        """Top ``k`` for a new person from the movies they liked and disliked.

        The model folds the liked movies in (its own ``fold_in``); movies close to a disliked
        one are pushed down; picks are never recommended. With no likes, popular movies are
        ranked instead. Each result names the liked movie most similar to it.
        """
        disliked = disliked or []
        both = set(liked) & set(disliked)
        if both:
            raise BadRequest(f"movie(s) both liked and disliked: {sorted(both)[:10]}")
        li = np.unique(self.item_index(liked)) if liked else np.zeros(0, np.int32)
        di = np.unique(self.item_index(disliked)) if disliked else np.zeros(0, np.int32)
        allowed = self.servable.copy()
        allowed[li] = False
        allowed[di] = False
        if len(li):
            with self._lock:  # fold_in may touch shared model state (NCF: requires_grad)
                state = self.model.fold_in(li)
            scores = self.model.score_folded(state).astype(np.float64)
        else:
            scores = np.log1p(self.popularity).astype(np.float64)
        if len(di):
            cand = scores[allowed]
            std = cand.std() if cand.size else 1.0
            scores = (scores - (cand.mean() if cand.size else 0.0)) / (std if std > 0 else 1.0)
            closeness = self.similarity(di).max(axis=0) / (1.0 + GENRE_WEIGHT)
            scores -= DISLIKE_WEIGHT * np.clip(closeness, 0.0, None)
        items, s = _best(scores, k, allowed)
        return self._with_reasons(items, s, li, "you liked")

    def _with_reasons(self, items: np.ndarray, scores: np.ndarray, sources: np.ndarray,
                      verb: str) -> list[Recommendation]:
        if len(sources) == 0 or len(items) == 0:
            return [Recommendation(int(i), float(s), None,
                                   f"popular: {int(self.n_ratings[i]):,} ratings")
                    for i, s in zip(items, scores, strict=True)]
        best = sources[self.similarity(items, sources).argmax(axis=1)]
        return [Recommendation(int(i), float(s), int(b), f"because {verb} {self.titles[b]}")
                for i, s, b in zip(items, scores, best, strict=True)]

    # ------------------------------------------------------------------ setup helpers
    def _warm_up(self) -> dict[str, float]:
        """Run each model call once (models build caches on first use) and time a second run:
        ``{"fold_in": ms, "recommend": ms}`` for five picks and for one known user."""
        import time

        picks = self.browse_order[:5].astype(np.int32)
        timings = {}
        for name, call in (("fold_in", lambda: self.model.score_folded(
                self.model.fold_in(picks))),
                           ("recommend", lambda: self.model.recommend(0, 10))):
            if len(picks) == 0 or (name == "recommend" and len(self.user_ids) == 0):
                timings[name] = 0.0
                continue
            call()
            t0 = time.perf_counter()
            call()
            timings[name] = 1000 * (time.perf_counter() - t0)
        log.info("model call times (ms): %s", timings)
        return timings

    def _build_genres(self) -> None:
        names = sorted({g for gs in self.genres for g in gs})
        self.genre_names: list[str] = names
        self.genre_lookup = {g.casefold(): i for i, g in enumerate(names)}
        col = {g: i for i, g in enumerate(names)}
        rows = np.repeat(np.arange(len(self.genres)), [len(gs) for gs in self.genres])
        cols = np.fromiter((col[g] for gs in self.genres for g in gs), dtype=np.int64,
                           count=len(rows))
        dense = np.zeros((len(self.genres), max(1, len(names))), dtype=np.float32)
        dense[rows, cols] = 1.0
        self._genre_dense = dense
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        self._genre_norm = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
        self.genre_counts = dense.sum(axis=0).astype(np.int64)[: len(names)]

    def _varied_order(self) -> np.ndarray:
        """Every servable movie: the most popular ones first, re-arranged so that neighbours
        differ in genre (greedy: popularity minus genre overlap with the last few picked)."""
        by_pop = np.lexsort((self.item_ids, -self.n_ratings))
        by_pop = by_pop[self.servable[by_pop]]
        pool = by_pop[:VARIED_POOL]
        g = self._genre_norm[pool]
        pop = np.log1p(self.n_ratings[pool]).astype(np.float64)
        pop = pop / (pop.max() or 1.0)
        remaining = np.ones(len(pool), dtype=bool)
        recent = np.zeros(g.shape[1], dtype=np.float32)
        order = []
        for _ in range(len(pool)):
            score = pop - 0.35 * (g @ recent)
            score[~remaining] = -np.inf
            best = int(np.argmax(score))
            order.append(best)
            remaining[best] = False
            recent = 0.6 * recent + g[best]
        return np.concatenate([pool[order], by_pop[VARIED_POOL:]]).astype(np.int64)


def _best(scores: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best allowed items by the models' shared :func:`top_k` (ties by ascending
    index); a NaN score is never served."""
    return top_k(scores, k, allowed & ~np.isnan(scores))


def _item_vectors(model: Recommender) -> np.ndarray | sp.csr_matrix:
    """Row-normalised item vectors (``n_items`` rows; zero rows for items without any): the
    model's own (:meth:`~movierec.models.base.Recommender.item_vectors`), else each item's column
    of the train interactions (item-item co-occurrence cosine)."""
    vectors = model.item_vectors()
    if vectors is None:
        return _normalise(sp.csr_matrix(model.seen_.T, dtype=np.float32))
    return _normalise(np.asarray(vectors, dtype=np.float32))


def _normalise(v: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(v):
        v = sp.csr_matrix(v, dtype=np.float32)
        norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ v)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
