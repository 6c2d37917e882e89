"""Classic baselines on the binary train matrix: random, popularity, item-kNN and EASE.

Every rating is an interaction (implicit feedback, as in protocols P1/P2); star values are
ignored. iALS and BPR live in :mod:`movierec.models.implicit_models`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
from numpy.typing import ArrayLike
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import SCORE_BLOCK, Cost, Recommender, Shape, register
from movierec.options import FitOptions
from movierec.progress import Progress

EASE_WARN_ITEMS = 10_000
"""EASE inverts a dense item x item matrix: above this many items it warns (memory, time)."""


def _state_vector(model: Recommender, state: np.ndarray) -> np.ndarray:
    state = np.asarray(state, dtype=np.float32)
    if state.shape != (model.n_items_,):
        raise ModelError(
            f"{type(model).__name__}.score_folded: expected the ({model.n_items_},) interaction "
            f"vector from fold_in, got shape {state.shape}"
        )
    return state


# ---------------------------------------------------------------------- random
def _hash_uniform(seed: int, user_idx: ArrayLike, item_idx: ArrayLike) -> np.ndarray:
    """Deterministic uniform [0, 1) ``float32`` per (seed, user, item): splitmix64 of the triple."""
    u = np.asarray(user_idx, dtype=np.int64).astype(np.uint64)
    i = np.asarray(item_idx, dtype=np.int64).astype(np.uint64)
    s = np.array([seed % (1 << 64)], dtype=np.uint64)
    x = (u * np.uint64(0x9E3779B97F4A7C15)) ^ (i * np.uint64(0xC2B2AE3D27D4EB4F))
    x = x ^ (s * np.uint64(0x165667B19E3779F9))
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)


@register
class Random(Recommender):
    """Uniform random scores, fixed by ``seed`` and (user, item): the sanity floor.

    ``score(u, i)`` is a hash of ``(seed, u, i)``, so scores are reproducible and consistent between
    ``score`` and ``score_all`` without storing a users x items table. A folded-in person gets the
    scores of a virtual user ``n_users``.
    """

    name: ClassVar[str] = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        pass

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        return _hash_uniform(self.seed, u[:, None], np.arange(self.n_items_)[None, :])

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        u, i = self._check_pairs(user_idx, item_idx)
        return _hash_uniform(self.seed, u, i)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        _state_vector(self, state)
        return _hash_uniform(self.seed, np.int64(self.n_users_), np.arange(self.n_items_))


# ---------------------------------------------------------------------- popularity
@register
class Popularity(Recommender):
    """Score of an item = number of train users who interacted with it (the same for everyone)."""

    name: ClassVar[str] = "popularity"
    learned: ClassVar[tuple[str, ...]] = ("popularity_",)

    def __init__(self) -> None:
        pass

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        self.popularity_ = self.item_counts_.astype(np.float32)

    def expected_shapes(self) -> dict[str, Shape]:
        return {"popularity_": (self.n_items_,)}

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        return np.broadcast_to(self.popularity_, (len(u), self.n_items_)).copy()

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        _, i = self._check_pairs(user_idx, item_idx)
        return self.popularity_[i]

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        _state_vector(self, state)
        return self.popularity_.copy()


# ---------------------------------------------------------------------- item-item, sparse
COOCCURRENCE_BYTES = 100
"""Bytes :func:`top_k_cooccurrence` holds per co-occurrence entry of a block in flight (the
sparse product, pair indices, strengths, sort order and their filtered copies)."""


def top_k_cooccurrence(
    x: sp.csr_matrix,
    k: int,
    weight: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
    budget: int = SCORE_BLOCK,
) -> sp.csr_matrix:
    """The ``k`` strongest neighbours of every item in the co-occurrence ``x' x`` of a binary
    users x items CSR ``x``, never holding a dense items x items block.

    ``weight(co, i, j)`` turns the co-occurrence counts ``co`` of item pairs ``(i, j)`` into the
    strengths ranked and stored (default: the counts). Column ``j`` of the result (a ``float32``
    CSR ``n_items x n_items``, zero diagonal) holds the ``k`` largest positive strengths of
    item ``j``'s neighbours ``i``, ties broken by ascending ``i``; only pairs that co-occur are
    candidates. Target items go in blocks whose co-occurrence holds about ``budget`` non-zeros
    (bounded by the users' activity), so memory is ``O(budget + k n_items)`` whatever the
    catalogue size, and time follows the co-occurrence's non-zeros.
    """
    n = x.shape[1]
    k = max(1, min(int(k), n - 1))
    xt = x.T.tocsr()  # items x users
    activity = np.diff(x.indptr).astype(np.float64)
    est = np.minimum(np.asarray(xt @ activity).ravel(), n) + 1  # nnz bound of each column
    cuts = np.searchsorted(np.cumsum(est), np.arange(budget, est.sum(), budget))
    edges = np.unique(np.r_[0, cuts, n])
    rows, cols, vals = [], [], []
    # ML-32M: ~1e9 co-occurring pairs, many minutes: say how far it is
    progress = Progress("item-item neighbours", n, "items", at_end=False,
                        leave=False)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        co = (xt[lo:hi] @ x).tocsr()  # row r: co-occurrence of target lo + r with every item
        co.sort_indices()
        j = np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(co.indptr))
        i = co.indices.astype(np.int64)
        w = np.asarray(co.data, dtype=np.float64)
        w = weight(w, i, j) if weight is not None else w
        keep = (i != j) & (w > 0)
        i, j, w = i[keep], j[keep], w[keep]
        # strongest first within each target; a stable sort keeps ascending i among ties
        order = np.lexsort((-w, j))
        i, j, w = i[order], j[order], w[order]
        start = np.searchsorted(j, np.arange(lo, hi))
        rank = np.arange(len(j)) - np.repeat(start, np.diff(np.r_[start, len(j)]))
        top = rank < k
        rows.append(i[top].astype(np.int32))
        cols.append(j[top].astype(np.int32))
        vals.append(w[top].astype(np.float32))
        progress.update(n=int(hi - lo))
    progress.close()
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


# ---------------------------------------------------------------------- item kNN
@register
class ItemKNN(Recommender):
    """Item-based k nearest neighbours with shrunk cosine similarity on the binary matrix
    (computed sparse, in blocks, by :func:`top_k_cooccurrence`: no dense items x items block,
    so it fits 87K-item catalogues).

    ``sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink)`` where ``U_i`` is the set of train
    users of item ``i``; for each target item ``j`` only its ``k`` most similar items are kept
    (``similarity_[:, j]``, a ``float32`` CSR ``n_items x n_items``, zero diagonal). A user's
    score for ``j`` is the sum of ``sim(i, j)`` over the items ``i`` they interacted with.
    """

    name: ClassVar[str] = "itemknn"
    learned: ClassVar[tuple[str, ...]] = ("similarity_",)
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "k": [20, 50, 100, 200],
        "shrink": [0.0, 10.0, 50.0],
    }

    def __init__(self, k: Annotated[int, Field(ge=1)] = 50,
                 shrink: Annotated[float, Field(ge=0)] = 10.0):
        self.k = k
        self.shrink = shrink

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        norms = np.sqrt(self.item_counts_.astype(np.float64))
        shrink = float(self.shrink)

        def cosine(co: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
            return co / (norms[i] * norms[j] + shrink)

        self.similarity_ = top_k_cooccurrence(self.seen_, int(self.k), cosine)

    @classmethod
    def estimate_cost(cls, n_users: int, n_items: int, n_interactions: int,
                      params: dict[str, Any]) -> Cost:
        """Sparse blocks of the co-occurrence and the top-k graph: linear in the items."""
        base = super().estimate_cost(n_users, n_items, n_interactions, params)
        k = min(int(params.get("k", 50)), max(1, n_items - 1))
        block = COOCCURRENCE_BYTES * min(SCORE_BLOCK, n_items * n_items)
        return Cost(base.memory_bytes + block + 36 * k * n_items,
                    f"the top-{k} item-item graph and co-occurrence blocks")

    def expected_shapes(self) -> dict[str, Shape]:
        return {"similarity_": (self.n_items_, self.n_items_)}

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        return np.asarray((self.seen_[u] @ self.similarity_).todense(), dtype=np.float32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        x = _state_vector(self, state)
        return np.asarray(self.similarity_.T @ x, dtype=np.float32).ravel()


# ---------------------------------------------------------------------- EASE
def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky (LAPACK potrf + potri).

    Overwrites ``a``. Single precision: about twice as fast as double, and EASE's ``l2`` keeps
    the matrix well conditioned (relative error ~1e-6 on MovieLens-sized problems).
    """
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (a,))
    chol, info = potrf(a, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ModelError(
            f"EASE: the regularised Gram matrix is not positive definite (LAPACK "
            f"info {info}); increase l2"
        )
    inv, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"EASE: inverting the Gram matrix failed (LAPACK info {info})")
    out = np.triu(inv)  # potri fills the upper triangle only
    out += np.triu(out, 1).T
    return out


@register
class EASE(Recommender):
    """EASE (Steck 2019): a closed-form item x item linear model with L2 regularisation ``l2``.

    ``B = argmin ||X - X B||^2 + l2 ||B||^2`` with ``diag(B) = 0``, solved as ``P = (X'X +
    l2 I)^-1``, ``B = -P / diag(P)``. The solve is over the items with train interactions
    (``active_items_``, ``item_weights_`` is ``float32 n_active x n_active``); other items score
    0, as in the full solve. Dense: memory ``~12 n_active^2`` bytes, time ``~n_active^3``; warns
    beyond ``EASE_WARN_ITEMS`` items.
    """

    name: ClassVar[str] = "ease"
    learned: ClassVar[tuple[str, ...]] = ("active_items_", "item_weights_")
    param_grid: ClassVar[dict[str, list[Any]]] = {"l2": [50.0, 200.0, 500.0, 1000.0]}

    def __init__(self, l2: Annotated[float, Field(gt=0)] = 200.0):
        self.l2 = l2

    @classmethod
    def estimate_cost(cls, n_users: int, n_items: int, n_interactions: int,
                      params: dict[str, Any]) -> Cost:
        """The dense Gram and its inverse: three ``float32`` items x items arrays at the peak
        (the Gram and the triangle copies of its inverse), ~12 n^2 bytes (measured: 0.14 GiB
        more RSS for 3,706 items, 12 n^2 = 0.15 GiB)."""
        base = super().estimate_cost(n_users, n_items, n_interactions, params)
        return Cost(base.memory_bytes + 12 * n_items * n_items,
                    f"a dense {n_items:,} x {n_items:,} item-item matrix and its inverse",
                    "use `sparse-ease` (EASE on each item's top-k neighbours, memory "
                    "~100 k n_items) or `itemknn`, or a release with fewer movies")

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        active = np.flatnonzero(self.item_counts_ > 0).astype(np.int32)
        n = len(active)
        if n > EASE_WARN_ITEMS:
            warnings.warn(
                f"EASE on {n:,} items inverts a dense {n:,} x {n:,} matrix "
                f"(~{12 * n * n / 2**30:.1f} GiB, minutes of CPU); consider ItemKNN or iALS",
                ResourceWarning,
                stacklevel=3,
            )
        x = self.seen_[:, active]
        gram = (x.T @ x).toarray().astype(np.float32)
        gram[np.diag_indices(n)] += np.float32(self.l2)
        p = _spd_inverse(gram)
        p /= -np.diag(p)[None, :]
        p[np.diag_indices(n)] = 0.0
        self.active_items_ = active
        self.item_weights_ = p

    def expected_shapes(self) -> dict[str, Shape]:
        return {"active_items_": (None,), "item_weights_": (None, None)}

    def _validate_learned(self) -> None:
        super()._validate_learned()
        a, n = self.active_items_, len(self.active_items_)
        if self.item_weights_.shape != (n, n):
            raise ModelError(
                f"EASE: item_weights_ has shape {self.item_weights_.shape}, "
                f"expected ({n}, {n}) for {n} active items"
            )
        if n and (a.min() < 0 or a.max() >= self.n_items_ or np.any(np.diff(a) <= 0)):
            raise ModelError(f"EASE: active_items_ must be ascending indices < {self.n_items_}")

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        out = np.zeros((len(u), self.n_items_), dtype=np.float32)
        out[:, self.active_items_] = self.seen_[u][:, self.active_items_] @ self.item_weights_
        return out

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        x = _state_vector(self, state)[self.active_items_]
        picked = np.flatnonzero(x)  # a person's few picks: sum their rows, not n_active^2 work
        out = np.zeros(self.n_items_, dtype=np.float32)
        out[self.active_items_] = x[picked] @ self.item_weights_[picked]
        return out
