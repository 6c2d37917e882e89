"""iALS and BPR matrix factorisation, trained by the ``implicit`` library (CPU).

``implicit`` is imported only inside ``fit``; the learned factors are kept as plain ``float32``
numpy arrays, so scoring, folding in and saving never need it. Fits run with one BLAS thread
(``threadpoolctl``), as ``implicit`` asks: its own threads (run option ``num_threads``)
parallelise instead.
Every rating is an interaction: the train matrix is binary.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, cast

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.models.base import FactorRecommender, Params, register
from movierec.options import FitOptions

PositiveInt = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class _FactorParams(Params):
    factors: PositiveInt = Field(64, description="Latent dimensions.")
    seed: int = 0


@register
class IALS(FactorRecommender):
    """Implicit ALS (Hu, Koren & Volinsky 2008) through ``implicit.cpu.als``.

    Each train interaction has confidence ``alpha`` (unobserved pairs: 1, target 0), as in
    ``implicit`` 0.7. ``fold_in`` is ``implicit``'s ``recalculate_user``: the exact regularised
    least-squares user vector with the item factors fixed.
    """

    name: ClassVar[str] = "ials"
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64],
        "regularization": [0.01, 0.1, 1.0],
        "alpha": [5.0, 20.0, 40.0],
    }

    _fold_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    class Params(_FactorParams):
        regularization: NonNegative = 0.1
        alpha: Positive = Field(20.0, description="Confidence of an observed interaction.")
        iterations: PositiveInt = 15

    def typed_params(self) -> IALS.Params:
        return cast("IALS.Params", super().typed_params())

    def factor_dim(self) -> int:
        p = self.typed_params()
        return int(p.factors)

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        p = self.typed_params()
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(
                factors=int(p.factors),
                regularization=float(p.regularization),
                alpha=float(p.alpha),
                iterations=int(p.iterations),
                random_state=p.seed,
                num_threads=options.num_threads or 0,  # 0: implicit uses every core
            )
            als.fit(self.seen_, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(als.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(als.item_factors, dtype=np.float32)
        self._fold_cache = None

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (factors,)``: ``x = (Y'Y + (alpha - 1) Y_p'Y_p + reg I)^-1 alpha Y_p'1``,
        ``Y_p`` the factors of the picked items (ratings are ignored: picks are binary)."""
        p = self.typed_params()
        items, _ = self._picks(item_idx, ratings)
        # float64 factors and Y'Y are the same for every new person: cached, and rebuilt when
        # the factors change (a refit or a load replaces the array)
        cache = getattr(self, "_fold_cache", None)
        if cache is None or cache[0] is not self.item_factors_:
            y = self.item_factors_.astype(np.float64)
            cache = self._fold_cache = (self.item_factors_, y, y.T @ y)
        _, y, gram = cache
        yp = y[items]
        a = gram + (p.alpha - 1.0) * (yp.T @ yp)
        a[np.diag_indices_from(a)] += p.regularization
        x = np.linalg.solve(a, p.alpha * yp.sum(axis=0))
        return x.astype(np.float32)


@register
class IALSImplicitFoldIn(IALS):
    """iALS as ``ials`` trains it, with ``implicit``'s own fold-in: the reference for P4.

    Same hyper-parameters, training and factors as ``ials`` (same seed, same model); only
    ``fold_in`` differs: it hands the picks to ``implicit``'s ``recalculate_user``, the machinery
    behind ``AlternatingLeastSquares.recommend(..., recalculate_user=True)`` (``implicit`` 0.7:
    Cholesky solve of the regularised least squares with confidence ``alpha`` per pick, item
    factors fixed). P4 figures of ``ials`` and of this model must agree to float rounding; a gap
    means our closed-form fold-in drifted from the library's.
    """

    name: ClassVar[str] = "ials-implicit"

    def _library_model(self):
        """An ``implicit`` ALS model holding our item factors (built once per factor array)."""
        cache = getattr(self, "_library_cache", None)
        if cache is not None and cache[0] is self.item_factors_:
            return cache[1]
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit warns about threaded BLAS otherwise
            als = AlternatingLeastSquares(
                factors=int(self.factors), regularization=float(self.regularization),
                alpha=float(self.alpha), dtype=np.float32, num_threads=1,
            )
        als.item_factors = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        als.user_factors = np.zeros((1, als.item_factors.shape[1]), dtype=np.float32)
        self._library_cache = (self.item_factors_, als)
        return als

    def picks_row(self, item_idx: np.ndarray) -> sp.csr_matrix:
        """The picks as the ``1 x n_items`` binary CSR row ``implicit`` takes as ``user_items``."""
        items, _ = self._picks(item_idx, None)
        return sp.csr_matrix(
            (np.ones(len(items), dtype=np.float32), items, [0, len(items)]),
            shape=(1, self.n_items_),
        )

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (factors,)`` from ``implicit``'s ``recalculate_user(0, picks_row)``
        (ratings are ignored: picks are binary, as for ``ials``)."""
        row = self.picks_row(item_idx)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            x = self._library_model().recalculate_user(0, row)
        return np.asarray(x, dtype=np.float32)

    def recommend_with_library(self, item_idx: np.ndarray, k: int = 10):
        """``implicit``'s own ``recommend(0, picks, N=k, recalculate_user=True)`` with the picks
        filtered out: ``(item_idx, scores)``, for checking :meth:`recommend_folded` against it."""
        row = self.picks_row(item_idx)
        untrained = np.flatnonzero(self.item_counts_ == 0)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            return self._library_model().recommend(
                0, row, N=k, filter_already_liked_items=True, recalculate_user=True,
                filter_items=untrained if len(untrained) else None,
            )


@register
class BPR(FactorRecommender):
    """Bayesian personalised ranking (Rendle et al. 2009) through ``implicit.cpu.bpr``.

    ``implicit`` appends a bias column: ``user_factors_`` and ``item_factors_`` are
    ``n x (factors + 1)``, the users' last column is 1 and the items' last column their bias.
    Training runs on one thread unless the run option ``num_threads`` says more: one thread is
    deterministic for a given ``seed``, several are not (Hogwild updates).

    ``fold_in`` learns a fresh user vector with the item factors frozen: it minimises the BPR
    loss averaged over every (picked item, other trained item) pair plus
    ``regularization / 2 * ||x||^2`` (the per-pair objective ``implicit``'s SGD follows), a
    convex problem solved exactly by L-BFGS from zero; the bias component stays 1.
    """

    name: ClassVar[str] = "bpr"
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64],
        "learning_rate": [0.01, 0.05],
        "regularization": [0.001, 0.01],
    }

    class Params(_FactorParams):
        learning_rate: Positive = 0.01
        regularization: NonNegative = 0.01
        iterations: PositiveInt = 100

    def typed_params(self) -> BPR.Params:
        return cast("BPR.Params", super().typed_params())

    def factor_dim(self) -> int:
        p = self.typed_params()
        return int(p.factors) + 1

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        p = self.typed_params()
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            bpr = BayesianPersonalizedRanking(
                factors=int(p.factors),
                learning_rate=float(p.learning_rate),
                regularization=float(p.regularization),
                iterations=int(p.iterations),
                random_state=p.seed,
                num_threads=options.num_threads or 1,
            )
            bpr.fit(self.seen_, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(bpr.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(bpr.item_factors, dtype=np.float32)

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (factors + 1,)`` user vector (last entry 1) for the picked items."""
        p = self.typed_params()
        items, _ = self._picks(item_idx, ratings)
        y = self.item_factors_.astype(np.float64)
        d = y.shape[1]
        negatives = np.flatnonzero(self.item_counts_ > 0)
        negatives = negatives[~np.isin(negatives, items)]
        if len(items) == 0 or len(negatives) == 0:
            x = np.zeros(d)
            x[-1] = 1.0
            return x.astype(np.float32)
        yp, yn = y[items], y[negatives]
        n_pairs = len(items) * len(negatives)
        reg = float(p.regularization)

        def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
            x = np.append(w, 1.0)
            diff = (yp @ x)[:, None] - (yn @ x)[None, :]  # (picks, negatives)
            loss = np.logaddexp(0.0, -diff).sum() / n_pairs + 0.5 * reg * (w @ w)
            g = 0.5 * (1.0 - np.tanh(0.5 * diff))  # sigmoid(-diff), overflow-free
            grad = (yn.T @ g.sum(axis=0) - yp.T @ g.sum(axis=1)) / n_pairs
            return float(loss), grad[:-1] + reg * w

        result = scipy.optimize.minimize(
            loss_and_grad,
            np.zeros(d - 1),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 200},
        )
        return np.append(result.x, 1.0).astype(np.float32)
