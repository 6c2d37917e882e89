"""Content-based Recommenders: a movie is described by what it is, not by who watched it.

* ``genre``: the movie x genre matrix, binary or each row weighted by the movie's (shrunk) mean
  train rating.
* ``text``: an embedding of the movie's description (title, year, genres, user tags, top
  tag-genome tags; :mod:`movierec.content.descriptions`) by a text embedding model
  (:mod:`movierec.models.text_embeddings`; all-MiniLM-L6-v2 by default).

A user's profile is the mean vector of the movies they rated highly (rating ``>=
positive_threshold``; all their movies when none is); ``score(u, i)`` is the cosine similarity of
the profile with the movie's vector, plus ``popularity_weight * log(1 + n_i) / log(1 + max n)``
where ``n_i`` is the movie's number of train users. With ``popularity_weight=0`` the ranking is
pure content; a small weight orders the many movies of equal content score (the genre model gives
every movie of the same genre set the same score) by popularity.

Item vectors cover every movie of the item table, so a movie nobody rated still has a content
score (``recommend`` offers only trained movies, as for every model). Note that cosine similarity
ignores a row's length: the mean-rating weighting changes user profiles, not movie-to-movie
similarity.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from movierec.content.tables import POSITIVE_THRESHOLD, unit_rows, user_embeddings
from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender, register
from movierec.options import FitOptions

__all__ = [
    "GenreRecommender",
    "TextRecommender",
    "genre_item_vectors",
    "text_item_vectors",
]

WEIGHTINGS = ("binary", "mean_rating")
SHRINKAGE = 10.0
"""Prior strength (in ratings) pulling a movie's mean rating toward the global mean."""


def genre_item_vectors(dataset: Dataset, weighting: str = "binary") -> np.ndarray:
    """``float32 (n_items, n_genres)``: the movie x genre matrix (columns ``genre_names``).

    ``weighting="mean_rating"`` multiplies each row by the movie's mean rating in ``dataset``
    shrunk toward the global mean (``SHRINKAGE`` pseudo-ratings), divided by 5; movies without
    ratings get the global mean.
    """
    if weighting not in WEIGHTINGS:
        raise ModelError(f"genre weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    g = dataset.genre_matrix.toarray().astype(np.float32)
    if weighting == "mean_rating" and dataset.n_ratings:
        total = np.bincount(dataset.item_idx, weights=dataset.rating, minlength=dataset.n_items)
        count = dataset.item_counts
        mu = float(dataset.rating.mean())
        mean = (total + SHRINKAGE * mu) / (count + SHRINKAGE)
        g *= (mean / 5.0).astype(np.float32)[:, None]
    return g


def text_item_vectors(
    dataset: Dataset,
    embedder: Any = "minilm",
    *,
    max_tags: int = 10,
    genome_tags: int = 10,
    cache: Any = True,
    progress: bool = False,
) -> np.ndarray:
    """``float32 (n_items, dim)``: the embedding of each movie's description (disk-cached by
    the embedder name and the exact descriptions; see
    :func:`movierec.models.text_embeddings.embed_texts`)."""
    from movierec.content.descriptions import describe_movies
    from movierec.models.text_embeddings import embed_texts

    texts = describe_movies(dataset, max_tags=max_tags, genome_tags=genome_tags)
    label = dataset.name.split("/")[0]  # a split's parts share one movie table
    return embed_texts(texts, embedder, label=label, cache=cache, progress=progress)


class _ContentRecommender(Recommender):
    """Profile = mean item vector of the user's positives; score = cosine (+ popularity)."""

    learned: ClassVar[tuple[str, ...]] = ("item_vectors_", "user_profiles_")
    positive_threshold: float  # hyper-parameters every subclass takes
    popularity_weight: float

    def _item_vectors(self, train: Dataset, options: FitOptions) -> np.ndarray:
        raise NotImplementedError

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        if self.popularity_weight < 0:
            raise ModelError(f"popularity_weight must be >= 0, got {self.popularity_weight}")
        vectors = np.ascontiguousarray(self._item_vectors(train, options), dtype=np.float32)
        self.item_vectors_ = vectors
        self.user_profiles_ = user_embeddings(train, vectors, float(self.positive_threshold))

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"item_vectors_": (self.n_items_, None), "user_profiles_": (self.n_users_, None)}

    def _validate_learned(self) -> None:
        super()._validate_learned()
        if self.item_vectors_.shape[1] != self.user_profiles_.shape[1]:
            raise ModelError(
                f"{type(self).__name__}: item vectors have width {self.item_vectors_.shape[1]} "
                f"but user profiles {self.user_profiles_.shape[1]}"
            )

    # ------------------------------------------------------------------ scoring
    def _unit(self, attr: str) -> np.ndarray:
        """``unit_rows`` of a learned matrix, computed once per fitted (or loaded) array."""
        cache = self.__dict__.setdefault("_unit_cache", {})
        value = getattr(self, attr)
        if attr not in cache or cache[attr][0] is not value:
            cache[attr] = (value, unit_rows(value))
        return cache[attr][1]

    def _unit_items(self) -> np.ndarray:
        return self._unit("item_vectors_")

    def _popularity(self) -> np.ndarray:
        counts = np.log1p(self.item_counts_.astype(np.float32))
        top = float(counts.max()) if counts.size else 0.0
        return (float(self.popularity_weight) / top) * counts if top > 0 else counts * 0.0

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel())
        s = self._unit("user_profiles_")[u] @ self._unit_items().T
        if self.popularity_weight:
            s += self._popularity()[None, :]
        return s.astype(np.float32, copy=False)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        u, i = self._check_pairs(user_idx, item_idx)
        prof, items = self._unit("user_profiles_"), self._unit_items()
        s = np.einsum("nd,nd->n", prof[u.ravel()], items[i.ravel()])
        if self.popularity_weight:
            s += self._popularity()[i.ravel()]
        return s.astype(np.float32).reshape(u.shape)

    def item_vectors(self) -> np.ndarray:
        """The content vectors (genres or text embeddings): ``float32 (n_items, d)``."""
        self._check_fitted()
        return self.item_vectors_

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (d,)``: the mean vector of the picks rated ``>= positive_threshold`` (all
        picks when ``ratings`` is None or none is that high)."""
        items, r = self._picks(item_idx, ratings)
        if len(items) == 0:
            raise ModelError("fold_in: give at least one item")
        if ratings is not None and (r >= self.positive_threshold).any():
            items = items[r >= self.positive_threshold]
        return self.item_vectors_[items].mean(axis=0).astype(np.float32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        d = self.item_vectors_.shape[1]
        if state.shape != (d,):
            raise ModelError(f"{type(self).__name__}.score_folded: expected the ({d},) profile "
                             f"that fold_in returns, got shape {state.shape}")
        s = self._unit_items() @ unit_rows(state[None])[0]
        if self.popularity_weight:
            s += self._popularity()
        return s.astype(np.float32, copy=False)

    # ------------------------------------------------------------------ item to item
    def similar_items(self, item_idx: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` movies most similar to ``item_idx`` by cosine of item vectors (itself left
        out; rated or not). Ties: more train users first, then ascending ``item_idx``.
        Returns ``(item_idx int32[k], cosine float32[k])``."""
        self._check_fitted()
        i = int(self._check_items(np.asarray([item_idx]))[0])
        return nearest(self._unit_items(), i, k, self.item_counts_)


def nearest(
    unit_vectors: np.ndarray, item: int, k: int, tie_break: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most cosine-similar to row ``item`` of L2-normalised ``unit_vectors``
    (``item`` excluded), ties by larger ``tie_break`` then ascending index."""
    sims = unit_vectors @ unit_vectors[item]
    sims[item] = -np.inf
    k = min(k, len(sims) - 1)
    if k <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    kth = np.partition(sims, len(sims) - k)[len(sims) - k]
    cand = np.flatnonzero(sims >= kth)
    order = np.lexsort((cand, -tie_break[cand], -sims[cand]))[:k]
    top = cand[order]
    return top.astype(np.int32), sims[top].astype(np.float32)


@register
class GenreRecommender(_ContentRecommender):
    """Genre content model: cosine of genre profiles (mean genre vector of liked movies)."""

    name = "genre"
    param_grid: ClassVar[dict[str, list[Any]]] = {"popularity_weight": [0.0, 0.05, 0.2]}

    def __init__(self, weighting: str = "binary",
                 positive_threshold: float = POSITIVE_THRESHOLD, popularity_weight: float = 0.05):
        self.weighting = weighting
        self.positive_threshold = positive_threshold
        self.popularity_weight = popularity_weight

    def _item_vectors(self, train: Dataset, options: FitOptions) -> np.ndarray:
        return genre_item_vectors(train, self.weighting)


@register
class TextRecommender(_ContentRecommender):
    """Text content model: cosine of sentence embeddings of movie descriptions."""

    name = "text"
    param_grid: ClassVar[dict[str, list[Any]]] = {"popularity_weight": [0.0, 0.05, 0.2]}

    def __init__(self, embedder: str = "minilm", max_tags: int = 10, genome_tags: int = 10,
                 positive_threshold: float = POSITIVE_THRESHOLD, popularity_weight: float = 0.05,
                 cache: bool = True):
        self.embedder = embedder
        self.max_tags = max_tags
        self.genome_tags = genome_tags
        self.positive_threshold = positive_threshold
        self.popularity_weight = popularity_weight
        self.cache = cache

    def _item_vectors(self, train: Dataset, options: FitOptions) -> np.ndarray:
        return text_item_vectors(train, self.embedder, max_tags=self.max_tags,
                                 genome_tags=self.genome_tags, cache=self.cache,
                                 progress=options.progress)
