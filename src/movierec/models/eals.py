"""eALS: element-wise ALS with popularity-weighted missing data (He, Zhang, Kan & Chua, SIGIR
2016, "Fast Matrix Factorization for Online Recommendation with Implicit Feedback").

The loss over all ``M x N`` cells (observed ``R`` with target 1, the rest with target 0)::

    L = sum_{(u,i) in R} w (1 - p_ui)^2 + sum_{(u,i) not in R} c_i p_ui^2
        + reg (||P||^2 + ||Q||^2),            p_ui = P_u . Q_i

with item ``i``'s missing-data weight ``c_i = c0 f_i^alpha / sum_j f_j^alpha`` (``f_i``: its
share of the train interactions; items nobody rated get 0). Each sweep updates every user
factor, then every item factor, one coordinate at a time, each the exact minimiser of ``L`` in
that coordinate (so ``L`` never increases); the missing-data sum is never formed: the caches
``S^q = Q' diag(c) Q`` and ``S^p = P'P`` (``K x K``) stand for it, as in the authors' Java code
(github:hexiangnan/sigir16-eals, ``MF_fastALS``). A sweep costs ``O(K (|R| + (M + N) K))``.

Vectorised in numpy: a user's coordinates depend on the other users only through ``S^q``, which
is fixed during the user half-sweep (and ``S^p`` during the item half-sweep), so coordinate
``f`` of every user is updated at once, in the same order as the Java loops; the result is the
same as their per-user loops. (The PyPI ``eals`` package was not used: no release installs on
this project's Python 3.11, and it needs numba, not a dependency here.)
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.models.base import FactorRecommender, Params, register
from movierec.options import FitOptions

PositiveInt = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


def missing_weights(item_counts: np.ndarray, c0: float, alpha: float) -> np.ndarray:
    """``float64 (n_items,)``: ``c_i = c0 f_i^alpha / sum_j f_j^alpha`` (the paper's eq. 8),
    ``f_i`` the item's share of the interactions; 0 for items nobody rated."""
    counts = np.asarray(item_counts, dtype=np.float64)
    share = counts / max(1.0, counts.sum())
    powered = np.where(counts > 0, share ** alpha, 0.0)
    total = powered.sum()
    return c0 * powered / total if total > 0 else powered


class EALSState:
    """The training state of one eALS fit: factors, the interactions in row and column order,
    and the predictions on the observed cells (kept up to date by every coordinate update)."""

    def __init__(self, seen: sp.csr_matrix, c: np.ndarray, w: float, reg: float,
                 p: np.ndarray, q: np.ndarray):
        coo = seen.tocoo()
        order = np.lexsort((coo.col, coo.row))
        self.rows, self.cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
        self.by_item = np.argsort(self.cols, kind="stable")
        self.c, self.w, self.reg = c, float(w), float(reg)
        self.p, self.q = p, q
        self.pred = np.einsum("ij,ij->i", p[self.rows], q[self.cols])

    def sweep(self) -> None:
        """One eALS iteration: every user factor, then every item factor."""
        self.user_sweep()
        self.item_sweep()

    def user_sweep(self) -> None:
        """Update every coordinate of every user (items fixed), ``S^q = Q' diag(c) Q``."""
        sq = self.q.T @ (self.c[:, None] * self.q)
        self.p[:] = _half_sweep(self.p, self.q, self.rows, self.cols, self.pred,
                                self.w - self.c[self.cols], sq, np.ones(len(self.p)), self.w,
                                self.reg)

    def item_sweep(self) -> None:
        """Update every coordinate of every item (users fixed), ``S^p = P'P``."""
        sp_ = self.p.T @ self.p
        b = self.by_item
        pred = self.pred[b]
        self.q[:] = _half_sweep(self.q, self.p, self.cols[b], self.rows[b], pred,
                                self.w - self.c[self.cols[b]], sp_, self.c, self.w, self.reg)
        self.pred[b] = pred

    def loss(self) -> float:
        """``L`` above, through the cache: the observed cells' terms minus their missing-data
        term, plus ``sum_u P_u' S^q P_u`` for every cell as missing."""
        c_obs = self.c[self.cols]
        observed = np.sum(self.w * (1.0 - self.pred) ** 2 - c_obs * self.pred ** 2)
        sq = self.q.T @ (self.c[:, None] * self.q)
        missing = np.einsum("uf,fk,uk->", self.p, sq, self.p)
        return float(observed + missing + self.reg * (np.sum(self.p ** 2) + np.sum(self.q ** 2)))


def _half_sweep(x: np.ndarray, y: np.ndarray, own: np.ndarray, other: np.ndarray,
                pred: np.ndarray, extra: np.ndarray, cache: np.ndarray, scale: np.ndarray,
                w: float, reg: float) -> np.ndarray:
    """Element-wise updates of every row of ``x`` (``y`` fixed), coordinate by coordinate.

    ``own`` / ``other``: for each observed cell (sorted by ``own``), the row of ``x`` and of
    ``y`` it joins; ``pred`` their predictions (updated in place); ``extra = w - c`` of each
    cell; ``cache``: ``Y' diag(c) Y`` (user side) or ``Y'Y`` (item side); ``scale``: the missing
    weight that multiplies ``cache`` per row of ``x`` (1 for users, ``c_i`` for items).
    Returns the updated ``x`` (a new array).
    """
    xt = np.ascontiguousarray(x.T)  # (K, n): coordinate f of every row is contiguous
    yt = np.ascontiguousarray(y[other].T)  # (K, cells)
    n = len(x)
    for f in range(len(xt)):
        yf = yt[f]
        pred -= xt[f][own] * yf  # predictions without coordinate f
        # missing-data part through the cache: -scale * sum_{k != f} x_k cache[f, k]
        numer = -scale * (cache[f] @ xt - cache[f, f] * xt[f])
        numer += np.bincount(own, (w - extra * pred) * yf, minlength=n)
        denom = scale * cache[f, f] + reg + np.bincount(own, extra * yf * yf, minlength=n)
        xt[f] = numer / denom
        pred += xt[f][own] * yf
    return np.ascontiguousarray(xt.T)


@register
class EALS(FactorRecommender):
    """eALS (He et al. 2016): matrix factorisation of the binary train matrix with every
    unobserved cell a weighted negative, the weight ``c_i`` growing with the item's popularity
    (``popularity_exponent`` alpha, total weight ``missing_weight`` c0); observed cells have
    weight ``positive_weight`` w. See the module docstring for the loss and the updates.

    ``fold_in`` is exact: the new person's vector is the minimiser of the same loss with the item
    factors fixed, the fixed point of the element-wise user updates (solved directly: the
    ``K x K`` system ``(S^q + sum_picks (w - c_i) q_i q_i' + reg I) x = w sum_picks q_i``).
    """

    name: ClassVar[str] = "eals"
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "missing_weight": [128.0, 512.0, 2048.0],
        "regularization": [0.1, 10.0],
    }

    _fold_cache: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    class Params(Params):
        factors: PositiveInt = Field(64, description="Latent dimensions K.")
        iterations: PositiveInt = Field(10, description="Sweeps over users then items.")
        regularization: NonNegative = Field(10.0, description="L2 weight on both factor sets.")
        missing_weight: NonNegative = Field(
            512.0, description="c0: the missing-data weights sum to this over the items.")
        popularity_exponent: NonNegative = Field(
            0.4, description="alpha: c_i grows as popularity^alpha (0: uniform weights).")
        positive_weight: Positive = Field(1.0, description="w: weight of an observed cell.")
        init_std: Positive = Field(0.01, description="Std of the Gaussian initial factors.")
        seed: int = 0

    def typed_params(self) -> EALS.Params:
        return cast("EALS.Params", super().typed_params())

    def factor_dim(self) -> int:
        return int(self.typed_params().factors)

    def missing_weights(self) -> np.ndarray:
        """``float64 (n_items,)``: each item's missing-data weight ``c_i`` for the train data."""
        p = self.typed_params()
        return missing_weights(self.item_counts_, p.missing_weight, p.popularity_exponent)

    def new_state(self) -> EALSState:
        """A fresh training state (Gaussian factors from ``seed``) on the train interactions."""
        p = self.typed_params()
        rng = np.random.default_rng(p.seed)
        k = int(p.factors)
        users = rng.normal(0.0, p.init_std, (self.n_users_, k))
        items = rng.normal(0.0, p.init_std, (self.n_items_, k))
        items[self.item_counts_ == 0] = 0.0  # never updated towards anything else
        return EALSState(self.seen_, self.missing_weights(), p.positive_weight,
                         p.regularization, users, items)

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        p = self.typed_params()
        from threadpoolctl import threadpool_limits

        from movierec.training.history import TrainingHistory

        state = self.new_state()
        history = TrainingHistory(self.name)
        bar = None
        if options.progress:  # training.loop imports torch: only when progress is shown
            from movierec.training.loop import Progress

            bar = Progress(self.name, p.iterations, "sweep")
        with threadpool_limits(options.num_threads or None, "blas"):
            for _ in range(p.iterations):
                state.sweep()
                row = history.add(**{"train loss": state.loss()})
                if bar is not None:
                    bar.update(row)
        if bar is not None:
            bar.close()
        self.history_ = [history]
        self.user_factors_ = state.p.astype(np.float32)
        self.item_factors_ = state.q.astype(np.float32)
        self._fold_cache = None

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (factors,)``: the exact eALS user vector for the picks, item factors fixed
        (ratings are ignored: picks are binary)."""
        p = self.typed_params()
        items, _ = self._picks(item_idx, ratings)
        cache = getattr(self, "_fold_cache", None)
        if cache is None or cache[0] is not self.item_factors_:
            q = self.item_factors_.astype(np.float64)
            c = self.missing_weights()
            cache = self._fold_cache = (self.item_factors_, q, c, q.T @ (c[:, None] * q))
        _, q, c, sq = cache
        qp = q[items]
        a = sq + (qp * (p.positive_weight - c[items])[:, None]).T @ qp
        a[np.diag_indices_from(a)] += p.regularization
        x = np.linalg.solve(a, p.positive_weight * qp.sum(axis=0))
        return x.astype(np.float32)
