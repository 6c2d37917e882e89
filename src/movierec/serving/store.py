"""What the server holds in memory for one artifact: the model, its id maps, the catalogue,
popularity, the title search index and the item vectors for similar-movie search and for the
"because you liked X" reasons.

Every public method takes and returns original MovieLens ids; unknown ids raise
:class:`NotFound`. Item vectors are the model's own (:meth:`Recommender.item_vectors`: iALS and
BPR factors, the NCF item embeddings), else each item's column of the train interactions
(item-item co-occurrence cosine). Similar movies add a small genre term that breaks ties;
reasons use the model's item space alone (genre only breaks exact ties). A pick the model has
no train interaction for is ignored (its vector says nothing) and reported as such.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson
import polars as pl
import scipy.sparse as sp

from movierec.errors import MovierecError
from movierec.models.base import Recommender
from movierec.serving.catalogue import display_titles, load_catalogue
from movierec.serving.search import TitleSearch

log = logging.getLogger(__name__)

GENRE_WEIGHT = 0.1
"""Weight of genre cosine added to the model's item cosine in similarity."""
REASON_GENRE_WEIGHT = 1e-3
"""Genre cosine in the reason similarity: it only breaks ties of the model's item cosine."""
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


class Recommendation(NamedTuple):
    """One recommended movie (a tuple: built ten times per request)."""

    item_idx: int
    score: float
    because_idx: int | None
    reason: str


@dataclass(frozen=True)
class PicksAnswer:
    """Recommendations for picks, the picks the model knew nothing about (original ids, in the
    order given), and whether the answer is popular movies because no liked pick was usable."""

    recommendations: list[Recommendation]
    ignored: list[int]
    popular: bool


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
        self._item_pos = {int(m): i for i, m in enumerate(self.item_ids)}
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
        self._titles = TitleSearch(self.titles, cat.get_column("title").to_list(), self.years)
        self._build_genres()
        self.movie_json = [orjson.Fragment(orjson.dumps(self.movie(i)))
                           for i in range(len(self.item_ids))]
        """Each movie's :meth:`movie` payload as JSON, serialised once."""
        self.vectors = _item_vectors(model)
        self.browse_order = self._varied_order()
        self._lock = threading.Lock()
        self.timings_ms = self._warm_up()

    @classmethod
    def open(cls, artifact: str | Path, data_dir: str | Path | None = None,
             name: str | None = None) -> Store:
        """Load an artifact folder and its catalogue (see :mod:`movierec.serving.catalogue`);
        ``name`` defaults to the folder's name."""
        from movierec.models.artifacts import load

        model = load(artifact)
        return cls(model, load_catalogue(artifact, data_dir), name=name or Path(artifact).name)

    # ------------------------------------------------------------------ id maps
    def item_index(self, movie_ids) -> np.ndarray:
        """``int32`` item_idx of original movie ids; :class:`NotFound` lists unknown ids."""
        index = self._item_pos
        try:
            return np.fromiter((index[int(i)] for i in movie_ids), dtype=np.int32,
                               count=len(movie_ids))
        except KeyError:
            unknown = sorted({int(i) for i in movie_ids if int(i) not in index})
            raise NotFound("unknown movie id(s): "
                           + ", ".join(str(i) for i in unknown[:10])) from None

    def knows_movie(self, movie_id: int) -> bool:
        return movie_id in self._item_pos

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
        order (popular and varied first); with one, best matches first (see
        :mod:`movierec.serving.search`), then by rating count. Only movies the model has train
        interactions for are listed."""
        mask = self.servable.copy()
        if genre is not None:
            g = self.genre_lookup.get(genre.casefold())
            if g is None:
                raise BadRequest(f"unknown genre {genre[:50]!r}; known: "
                                 f"{', '.join(self.genre_names)}")
            mask &= self._genre_dense[:, g] > 0
        if year is not None:
            mask &= self._year == year
        match = self._titles.scores(query or "")
        if match is not None:
            hits = np.flatnonzero(mask & (match > 0))
            order = hits[np.lexsort((hits, -self.n_ratings[hits], -np.round(match[hits], 3)))]
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
        """The recommendations of :meth:`answer_picks`."""
        return self.answer_picks(liked, disliked, k).recommendations

    def answer_picks(self, liked: list[int], disliked: list[int] | None = None, k: int = 10
                     ) -> PicksAnswer:
        """Top ``k`` for a new person from the movies they liked and disliked.

        ``liked`` is in the order the person picked, oldest first: the model's ``fold_in`` gets
        the usable likes in that order (a sequential model answers "what next" after the last
        one; a movie liked twice counts at its last place). Picks the model has no train
        interaction for, and movies both liked and disliked, are ignored (and listed in the
        answer, in the order given). Movies close to a disliked one are pushed down;
        picks are never recommended. With no usable like, popular movies are ranked instead.
        Each result names the usable liked movie closest to it in the model's item space.
        """
        disliked = disliked or []
        li_of, di_of = self._usable(liked), self._usable(disliked)  # {movie id: item_idx}
        ignored: list[int] = []
        for both in set(li_of) & set(di_of):  # contradictory: says nothing either way
            del li_of[both], di_of[both]
        for pick in [*liked, *disliked]:
            if pick not in li_of and pick not in di_of and pick not in ignored:
                ignored.append(pick)
        li = np.fromiter(li_of.values(), dtype=np.int32, count=len(li_of))
        di = np.fromiter(di_of.values(), dtype=np.int32, count=len(di_of))
        allowed = self.servable.copy()
        allowed[li] = False
        allowed[di] = False
        if len(li):
            with self._lock:  # fold_in may touch shared model state (NCF: requires_grad)
                state = self.model.fold_in(li)
            if not len(di):  # the model's own top k (NeuMF scores a short list exactly)
                items, s = self.model.recommend_folded(state, k, exclude=li)
                return PicksAnswer(self._with_reasons(items, s, li, "you liked"), ignored,
                                   popular=False)
            scores = self.model.score_folded(state)
        else:
            scores = np.log1p(self.popularity).astype(np.float64)
        if len(di):
            scores = scores.astype(np.float64)
            cand = scores[allowed]
            std = cand.std() if cand.size else 1.0
            scores = (scores - (cand.mean() if cand.size else 0.0)) / (std if std > 0 else 1.0)
            closeness = self.similarity(di).max(axis=0) / (1.0 + GENRE_WEIGHT)
            scores -= DISLIKE_WEIGHT * np.clip(closeness, 0.0, None)
        items, s = _best(scores, k, allowed)
        return PicksAnswer(self._with_reasons(items, s, li, "you liked"), ignored,
                           popular=len(li) == 0)

    def _usable(self, movie_ids: list[int]) -> dict[int, int]:
        """``{movie id: item_idx}`` of the given movies that have train interactions (unknown
        ids raise :class:`NotFound`), in the order given. A movie given twice keeps its *last*
        place: picks are oldest first, and a sequential model reads the most recent pick last
        (``[a, b, a]`` is folded in as ``[b, a]``)."""
        idx = self.item_index(movie_ids) if movie_ids else ()
        servable = self.servable
        usable: dict[int, int] = {}
        for m, i in zip(movie_ids, idx, strict=True):
            if servable[i]:
                usable.pop(int(m), None)  # re-inserted at the end: its latest place
                usable[int(m)] = int(i)
        return usable

    def _with_reasons(self, items: np.ndarray, scores: np.ndarray, sources: np.ndarray,
                      verb: str) -> list[Recommendation]:
        if len(sources) == 0 or len(items) == 0:
            return [Recommendation(int(i), float(s), None,
                                   f"popular: {int(self.n_ratings[i]):,} ratings")
                    for i, s in zip(items, scores, strict=True)]
        best = sources[self.reason_similarity(items, sources).argmax(axis=1)]
        return [Recommendation(int(i), float(s), int(b), f"because {verb} {self.titles[b]}")
                for i, s, b in zip(items, scores, best, strict=True)]

    def reason_similarity(self, items: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """``float (len(items), len(sources))``: cosine in the model's item space (genre cosine
        only breaks ties), what a "because you liked X" reason is chosen by."""
        sim = self.vectors[items] @ self.vectors[sources].T
        sim = sim.toarray() if sp.issparse(sim) else np.asarray(sim)
        genre = self._genre_norm[items] @ self._genre_norm[sources].T
        return sim + REASON_GENRE_WEIGHT * genre

    # ------------------------------------------------------------------ setup helpers
    def _warm_up(self) -> dict[str, float]:
        """Run each model call once (models build caches on first use), then time it:
        ``{"fold_in": ms, "recommend": ms}`` for ten popular picks (as :meth:`answer_picks` asks:
        fold-in, then the model's own top 10) and for one known user, the
        least CPU time of five runs (CPU time, so a busy machine does not inflate it)."""
        import time

        picks = self.browse_order[:10].astype(np.int32)
        timings = {}
        for name, call in (("fold_in", lambda: self.model.recommend_folded(
                self.model.fold_in(picks), 10, exclude=picks)),
                           ("recommend", lambda: self.model.recommend(0, 10))):
            if len(picks) == 0 or (name == "recommend" and len(self.user_ids) == 0):
                timings[name] = 0.0
                continue
            call()
            runs = []
            for _ in range(5):
                t0 = time.process_time()
                call()
                runs.append(time.process_time() - t0)
            timings[name] = 1000 * min(runs)
        log.info("%s: model call times (ms CPU): %s", self.name, timings)
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
    """The ``k`` best allowed items as :func:`movierec.models.base.top_k` orders them (score
    descending, ties by ascending index; a NaN score is never served), with one partial sort
    over the whole score vector instead of a gather of the allowed ones first."""
    valid = allowed & ~np.isnan(scores)
    m = min(k, int(np.count_nonzero(valid)))
    if m <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    masked = np.where(valid, scores, -np.inf)
    kth = masked[np.argpartition(masked, len(masked) - m)[len(masked) - m]]
    cand = np.flatnonzero(valid & (masked >= kth))  # every item tied with the m-th
    order = np.lexsort((cand, -masked[cand].astype(np.float64)))[:m]
    best = cand[order]
    return best.astype(np.int32), masked[best].astype(np.float32)


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
