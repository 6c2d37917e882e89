"""The Recommender protocol: one way to fit, score, recommend, fold in and save every model.

Models follow scikit-learn's estimator contract: ``__init__`` only stores its keyword arguments
under the same names (so :meth:`Recommender.get_params`, :meth:`~Recommender.set_params` and
:meth:`~Recommender.clone` work and a grid search can copy a model); what ``fit`` learns lives in
attributes whose names end in ``_``; ``fit`` returns ``self``.

Indices are the train :class:`~movierec.data.dataset.Dataset`'s contiguous ``int32``
``user_idx`` / ``item_idx``; ``user_ids_`` / ``item_ids_`` map them back to original MovieLens ids.
A higher score means a better recommendation.

Writing a model: subclass :class:`Recommender`, set ``name``, implement ``_fit``, ``score_all`` and
``score_folded`` (override ``score`` and ``fold_in`` where a cheaper form exists), list the learned
attributes that an artifact must hold in ``learned`` with their shapes in ``expected_shapes``, and
decorate the class with :func:`register`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ModelError, NotFittedError
from movierec.models.params import Params, param_names, params_model, validate_params
from movierec.models.registry import available, create, get_class, register
from movierec.options import FitOptions
from movierec.training.history import TrainingHistory

__all__ = [
    "Cost",
    "FactorRecommender",
    "FitOptions",
    "Params",
    "Recommender",
    "available",
    "create",
    "get_class",
    "param_names",
    "register",
    "top_k",
    "validate_params",
]

SCORE_BLOCK = 1 << 23
"""Most scores (users x items) a generic batched computation holds at once (32 MiB of float32)."""

Shape = tuple[int | None, ...]
_ParamsModel = Params  # inside Recommender, the class attribute ``Params`` hides the name


def top_k(
    scores: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of one score vector.

    Args:
        scores: ``(n_items,)`` scores; NaN counts as the lowest score.
        k: how many items to return (fewer when fewer are allowed).
        allowed: optional ``bool[n_items]``; items where it is False are never returned.

    Returns:
        ``(item_idx int32[m], scores float32[m])`` with ``m = min(k, allowed items)``, sorted by
        score descending, ties broken by ascending ``item_idx``.
    """
    scores = np.asarray(scores)
    cand = np.flatnonzero(allowed) if allowed is not None else np.arange(len(scores))
    s = scores[cand].astype(np.float64)
    s[np.isnan(s)] = -np.inf
    if k <= 0 or len(cand) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    if k < len(cand):
        kth = np.partition(s, len(s) - k)[len(s) - k]
        keep = s >= kth  # every item tied with the k-th stays in, so ties break by index below
        cand, s = cand[keep], s[keep]
    order = np.lexsort((cand, -s))[:k]
    return cand[order].astype(np.int32), s[order].astype(np.float32)


@dataclass(frozen=True)
class Cost:
    """What a fit needs: ``memory_bytes`` at its peak, ``note`` what takes it ("a dense 87,585
    x 87,585 float32 matrix"), ``alternative`` what to use instead when it does not fit."""

    memory_bytes: int
    note: str = ""
    alternative: str = ""


def check_memory(cls: type[Recommender], train: Dataset, params: dict[str, Any],
                 available: int | None = None) -> None:
    """Raise a one-line :class:`ModelError` when ``cls.estimate_cost`` for ``train`` exceeds
    the memory available now (:func:`movierec.machine.available_memory` unless given); nothing
    when the estimate fits or the available memory is unknown."""
    from movierec.machine import available_memory

    cost = cls.estimate_cost(train.n_users, train.n_items, train.n_ratings, params)
    available = available_memory() if available is None else available
    if available is None or cost.memory_bytes <= available:
        return
    gib = 2.0**30
    raise ModelError(
        f"{cls.__name__} needs ~{cost.memory_bytes / gib:.1f} GiB for {cost.note} "
        f"({train.n_users:,} users, {train.n_items:,} items, {train.n_ratings:,} ratings); "
        f"{available / gib:.1f} GiB available; "
        f"{cost.alternative or 'use a smaller dataset or a model that scales'} "
        "(run.memory_check: false tries anyway)")


class Recommender(ABC):
    """Base class of every movierec model (see the module docstring for the contract).

    Attributes set by ``fit`` (and by ``load``):
        user_ids_, item_ids_: ``int64`` original ids of each train ``user_idx`` / ``item_idx``.
        seen_: binary ``float32`` CSR ``n_users x n_items`` of the train interactions.
        item_counts_: ``int64[n_items]``, number of train users of each item.
        dataset_name_, dataset_fingerprint_: the train Dataset's name and fingerprint.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params] | None] = None
    """The typed hyper-parameters of a model family; None: derived from ``__init__``'s keyword
    arguments (see :mod:`movierec.models.params`)."""
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    """A small default hyper-parameter grid, searched on validation by ``movierec compare``."""
    learned: ClassVar[tuple[str, ...]] = ()
    """Learned attributes (numpy arrays or CSR matrices) that an artifact stores."""
    predicts_ratings: ClassVar[bool] = False
    """Whether :meth:`predict` gives star ratings (P3 and RMSE need such a model)."""

    # ------------------------------------------------------------------ estimator contract
    def __init__(self, **params: Any) -> None:
        """Store the checked hyper-parameters (every one, defaults filled in) under their own
        names; models with a scikit-learn style ``__init__`` of their own do not call this."""
        for key, value in validate_params(type(self), params).items():
            setattr(self, key, value)

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The hyper-parameters, as passed to ``__init__`` (``deep`` is accepted for sklearn)."""
        return {p: getattr(self, p) for p in param_names(type(self))}

    def typed_params(self) -> _ParamsModel:
        """The hyper-parameters as the model's :class:`Params` object (typed attributes); kept
        while they do not change (a request path reads them on every call)."""
        values = self.get_params()
        cached = self.__dict__.get("_typed_params")
        if cached is None or cached[0] != values:
            cached = (values, params_model(type(self))(**values))
            self.__dict__["_typed_params"] = cached
        return cached[1]

    def set_params(self, **params: Any) -> Self:
        """Change hyper-parameters (checked like ``create``'s: unknown names and bad values are a
        :class:`ModelError`). Returns ``self``."""
        checked = validate_params(type(self), {**self.get_params(), **params})
        for key in params:
            setattr(self, key, checked[key])
        return self

    def clone(self) -> Self:
        """A new unfitted model with a copy of the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self, train: Dataset, valid: Dataset | None = None, options: FitOptions | None = None
    ) -> Self:
        """Learn from ``train`` (every rating is an interaction); returns ``self``.

        ``valid`` may be used for early stopping by models that train iteratively; it never
        changes which users and items the model knows. ``options`` say how the fit runs
        (threads, device, progress, logs): never what is learned, and never saved.
        """
        if train.n_ratings == 0:
            raise ModelError(f"{type(self).__name__}.fit: {train.name!r} has no ratings")
        validate_params(type(self), self.get_params())  # before any work: a clear error
        options = options or FitOptions()
        if options.memory_check:
            check_memory(type(self), train, self.get_params())
        self.set_train_state(
            train.user_ids, train.item_ids, _binary(train.csr), train.name, train.fingerprint
        )
        self._fit(train, valid, options)
        return self

    @classmethod
    def estimate_cost(cls, n_users: int, n_items: int, n_interactions: int,
                      params: dict[str, Any]) -> Cost:
        """Peak memory that fitting this model on data of that size needs, beyond the train
        data itself. The default is for models whose memory grows with the interactions and
        the id maps (copies of the sparse train matrix, per-user and per-item arrays); a model
        that is quadratic in the items or users overrides it (EASE: a dense items x items
        matrix), with the alternative that scales. ``fit`` refuses up front what does not fit
        in the memory available (``FitOptions.memory_check``)."""
        return Cost(48 * n_interactions + 256 * (n_users + n_items), "the sparse train matrix")

    @abstractmethod
    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        """Learn the model's own attributes; ``seen_`` and the id maps are already set."""

    def training_history(self) -> list[TrainingHistory]:
        """What an iteratively trained model recorded per epoch (one history per training stage,
        e.g. NeuMF's GMF and MLP pre-training, then NeuMF); empty for models fitted in one go.
        Comparison reports draw their learning curves from it."""
        return list(getattr(self, "history_", None) or [])

    def set_train_state(
        self,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        seen: sp.csr_matrix,
        dataset_name: str,
        fingerprint: str,
    ) -> None:
        """Set what every fitted model knows about its train data: the id maps, the binary
        ``seen_`` interactions (``n_users x n_items`` CSR), their item counts and the train
        Dataset's name and fingerprint. ``fit`` calls it before ``_fit``; ``load`` and models
        built from another model's weights (the hybrid, NeuMF pre-training) call it directly."""
        self.user_ids_ = np.asarray(user_ids, dtype=np.int64)
        self.item_ids_ = np.asarray(item_ids, dtype=np.int64)
        self.seen_ = seen
        self.item_counts_ = np.bincount(seen.indices, minlength=seen.shape[1]).astype(np.int64)
        self.dataset_name_ = dataset_name
        self.dataset_fingerprint_ = fingerprint

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return len(self.user_ids_)

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return len(self.item_ids_)

    def expected_shapes(self) -> dict[str, Shape]:
        """Shape of each ``learned`` attribute for the fitted sizes (None: any length)."""
        return {}

    def _validate_learned(self) -> None:
        """Check that the learned attributes are there and agree with each other (run by
        ``load``; subclasses extend it); raise :class:`ModelError` when they do not."""
        missing = [a for a in self.learned if not hasattr(self, a)]
        if missing:
            raise ModelError(f"{type(self).__name__}: learned attribute(s) {missing} not set")

    # ------------------------------------------------------------------ scoring
    @abstractmethod
    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        """``float32 (len(user_idx), n_items)``: every item's score for each user (their train
        items included)."""

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """``float32`` score of each ``(user_idx, item_idx)`` pair (arrays broadcast together).

        Equal to ``score_all(user_idx)[:, item_idx]`` pair by pair. This generic form computes
        ``score_all`` for the distinct users in blocks; factor models override it with row-wise
        dot products.
        """
        u, i = self._check_pairs(user_idx, item_idx)
        out = np.empty(u.size, dtype=np.float32)
        order = np.argsort(u.ravel(), kind="stable")
        us, its = u.ravel()[order], i.ravel()[order]
        users, starts = np.unique(us, return_index=True)
        starts = np.append(starts, len(us))
        per_block = max(1, SCORE_BLOCK // max(1, self.n_items_))
        for b in range(0, len(users), per_block):
            block_users = users[b : b + per_block]
            lo, hi = starts[b], starts[min(b + per_block, len(users))]
            block = self.score_all(block_users)
            rows = np.searchsorted(block_users, us[lo:hi])
            out[order[lo:hi]] = block[rows, its[lo:hi]]
        return out.reshape(u.shape)

    def recommend(
        self, user_idx: int, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for a train user: ``(item_idx int32[k], scores float32[k])``.

        Sorted by score descending, ties by ascending ``item_idx``. Only items with at least one
        train interaction are candidates; ``exclude_seen`` also leaves out the user's own train
        items. Fewer than ``k`` come back when fewer candidates exist.
        """
        u = self._check_users(np.asarray([user_idx]))
        allowed = self.item_counts_ > 0
        if exclude_seen:
            lo, hi = self.seen_.indptr[u[0]], self.seen_.indptr[u[0] + 1]
            allowed[self.seen_.indices[lo:hi]] = False
        return top_k(self.score_all(u)[0], k, allowed)

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """``float32`` predicted star rating of each ``(user_idx, item_idx)`` pair.

        Only models with ``predicts_ratings`` implement it; the others raise
        :class:`ModelError` (their scores rank items but are not ratings).
        """
        raise ModelError(f"{type(self).__name__} ranks items but does not predict ratings; "
                         "use a rating model (see `movierec models`)")

    def item_vectors(self) -> np.ndarray | None:
        """``float32 (n_items, d)``: each item in the model's own space (similar-item search and
        "because you liked" reasons compare rows by cosine), or None for a model without one
        (callers then fall back to co-occurrence in ``seen_``)."""
        return None

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """The state of a person who is not in train, from the items they picked.

        ``item_idx`` are train item indices (duplicates ignored); ``ratings`` (same length) are
        accepted for models that weight by rating; implicit models treat every pick as an
        interaction. The default state is the ``float32 (n_items,)`` interaction vector; factor
        models return a user factor vector. Pass the state to :meth:`score_folded`.
        """
        items, _ = self._picks(item_idx, ratings)
        state = np.zeros(self.n_items_, dtype=np.float32)
        state[items] = 1.0
        return state

    @abstractmethod
    def score_folded(self, state: np.ndarray) -> np.ndarray:
        """``float32 (n_items,)``: every item's score for the person :meth:`fold_in` described."""

    def recommend_folded(
        self, state: np.ndarray, k: int = 10, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`recommend` for a folded-in person; ``exclude``: item_idx to leave out
        (normally their picks)."""
        self._check_fitted()
        allowed = self.item_counts_ > 0
        if exclude is not None and len(exclude):
            allowed[self._check_items(np.asarray(exclude))] = False
        return top_k(self.score_folded(state), k, allowed)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write this fitted model as an artifact folder (see :mod:`movierec.models.artifacts`)."""
        from movierec.models import artifacts

        return artifacts.save(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Read an artifact folder written by :meth:`save`; ``SomeModel.load`` also checks the
        class."""
        from movierec.models import artifacts

        model = artifacts.load(path)
        if cls is not Recommender and not isinstance(model, cls):
            raise ModelError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # ------------------------------------------------------------------ checks
    def _check_fitted(self) -> None:
        if not hasattr(self, "seen_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(train) first")

    def _check_users(self, user_idx: np.ndarray) -> np.ndarray:
        return _check_index(user_idx, self.n_users_, "user_idx")

    def _check_items(self, item_idx: np.ndarray) -> np.ndarray:
        return _check_index(item_idx, self.n_items_, "item_idx")

    def _check_pairs(self, user_idx, item_idx) -> tuple[np.ndarray, np.ndarray]:
        u, i = np.broadcast_arrays(np.asarray(user_idx), np.asarray(item_idx))
        return self._check_users(u), self._check_items(i)

    def _picks(
        self, item_idx: np.ndarray, ratings: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validated picks of a new person: unique ``int32`` items and ``float32`` ratings."""
        self._check_fitted()
        item_idx = np.asarray(item_idx).ravel()
        if ratings is None:
            ratings = np.ones(len(item_idx), dtype=np.float32)
        ratings = np.asarray(ratings, dtype=np.float32).ravel()
        if len(ratings) != len(item_idx):
            raise ModelError(
                f"fold_in: {len(item_idx)} items but {len(ratings)} ratings; give one per item"
            )
        if not np.all(np.isfinite(ratings)):
            raise ModelError("fold_in: ratings must be finite numbers")
        items = self._check_items(item_idx)
        items, first = np.unique(items, return_index=True)
        return items, ratings[first]


class FactorRecommender(Recommender):
    """A model whose score is a dot product: ``user_factors_[u] @ item_factors_[i]``.

    Subclasses fit ``user_factors_`` (``float32 n_users x d``) and ``item_factors_``
    (``float32 n_items x d``) and give ``d`` in :meth:`factor_dim`; their ``fold_in`` returns a
    ``float32 (d,)`` user vector.
    """

    learned: ClassVar[tuple[str, ...]] = ("user_factors_", "item_factors_")
    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def factor_dim(self) -> int | None:
        """Width ``d`` of the factor matrices for the current hyper-parameters (None: any)."""
        return None

    def expected_shapes(self) -> dict[str, Shape]:
        d = self.factor_dim()
        return {"user_factors_": (self.n_users_, d), "item_factors_": (self.n_items_, d)}

    def _validate_learned(self) -> None:
        super()._validate_learned()
        if self.user_factors_.shape[1] != self.item_factors_.shape[1]:
            raise ModelError(
                f"{type(self).__name__}: user factors have width "
                f"{self.user_factors_.shape[1]}, item factors "
                f"{self.item_factors_.shape[1]}"
            )

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        return (self.user_factors_[u] @ self.item_factors_.T).astype(np.float32, copy=False)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        u, i = self._check_pairs(user_idx, item_idx)
        uf, itf = u.ravel(), i.ravel()
        out = np.empty(uf.size, dtype=np.float32)
        step = max(1, SCORE_BLOCK // max(1, self.item_factors_.shape[1]))
        for lo in range(0, uf.size, step):
            hi = lo + step
            out[lo:hi] = np.einsum(
                "ij,ij->i", self.user_factors_[uf[lo:hi]], self.item_factors_[itf[lo:hi]]
            )
        return out.reshape(u.shape)

    def item_vectors(self) -> np.ndarray:
        """The item factors: ``float32 (n_items, d)``."""
        self._check_fitted()
        return np.asarray(self.item_factors_, dtype=np.float32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (self.item_factors_.shape[1],):
            raise ModelError(
                f"{type(self).__name__}.score_folded: expected a user vector of shape "
                f"({self.item_factors_.shape[1]},) from fold_in, got {state.shape}"
            )
        return (self.item_factors_ @ state).astype(np.float32, copy=False)


def _check_index(idx: np.ndarray, n: int, what: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ModelError(f"{what} must be integers, got dtype {idx.dtype}")
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        raise ModelError(
            f"{what} {int(idx[bad].flat[0])} is out of range: the model knows {n} (0..{n - 1})"
        )
    return idx.astype(np.int32, copy=False)


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    """A binary ``float32`` copy of a CSR matrix: 1 at every stored position (a rating)."""
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
