"""Explicit rating prediction: from the global mean to biased matrix factorisation.

Every model here predicts star ratings (:meth:`RatingModel.predict`, clipped to the train
ratings' range) and ranks items by the predicted rating (``score = predict``). The models, in the
order the story goes:

- ``global-mean``: one number, the mean train rating;
- ``biases``: ``mu + b_u + b_i``, regularised, by alternating closed-form sweeps;
- ``svd-sgd``: biased MF ``mu + b_u + b_i + p_u . q_i`` (Funk-SVD) by vectorised minibatch SGD;
- ``mf-als``: the same model by alternating least squares (batched ridge solves);
- ``neural-mf`` / ``neural-side`` live in :mod:`movierec.models.explicit_neural` (PyTorch).

Users or items without a train rating get zero bias and a zero factor vector, so their
prediction falls back to the item's (user's) bias and then to the global mean.

Model selection never looks at test ratings: an iterative model given no ``valid`` set carves a
seeded random ``valid_fraction`` of its train ratings, trains until validation RMSE stops
improving (``patience`` epochs), then refits on all train ratings for the best epoch count.
With a ``valid`` set it early-stops on it and keeps the best epoch's parameters. Learning curves
(train / validation RMSE per epoch) are the model's :meth:`training_history`, and go to the run
option ``curves_dir`` as CSV and PNG when it is set.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from pathlib import Path
from typing import Annotated, Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.data.splits import carve_validation
from movierec.errors import ModelError
from movierec.evaluation.metrics import rmse
from movierec.models.base import Params, Recommender, register
from movierec.options import FitOptions
from movierec.training.curves import save_curve
from movierec.training.history import EarlyStopping, TrainingHistory

__all__ = ["Biases", "GlobalMean", "MFALS", "RatingModel", "SVDSGD", "holdout"]

PAIRS_PER_BLOCK = 1 << 20
"""Most (user, item) pairs one raw-prediction call handles at once."""


def holdout(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """``(rest, validation)``: a seeded random slice of ``train``'s ratings (at least one), users
    not protected (:func:`movierec.data.splits.carve_validation`, ``"random"``)."""
    if not 0.0 < fraction < 1.0:
        raise ModelError(f"valid_fraction must be between 0 and 1 (exclusive), got {fraction}")
    return carve_validation(train, "random", fraction, seed, keep_every_user=False)


class RatingModel(Recommender):
    """A Recommender that predicts ratings; ``score`` is the clipped predicted rating.

    Subclasses implement ``_fit_ratings`` and ``_raw`` (unclipped predictions of pairs);
    ``score_all`` defaults to ``_raw`` over every item.
    """

    learned: ClassVar[tuple[str, ...]] = ("rating_range_", "global_mean_")
    predicts_ratings: ClassVar[bool] = True

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        self.rating_range_ = np.array([train.rating.min(), train.rating.max()], np.float32)
        self.global_mean_ = np.float32(train.rating.mean(dtype=np.float64))
        self._fit_ratings(train, valid, options)

    @abstractmethod
    def _fit_ratings(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        """Learn the model; ``rating_range_`` and ``global_mean_`` are set."""

    @abstractmethod
    def _raw(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Unclipped predictions of equally long 1-D index arrays."""

    @abstractmethod
    def fold_in_size(self) -> int:
        """Length of the :meth:`fold_in` state (a blend splits its state by it)."""

    def _clip(self, values: np.ndarray) -> np.ndarray:
        lo, hi = self.rating_range_
        return np.clip(values, lo, hi).astype(np.float32, copy=False)

    def _raw_blocks(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.empty(u.size, np.float32)
        for s in range(0, u.size, PAIRS_PER_BLOCK):
            out[s : s + PAIRS_PER_BLOCK] = self._raw(u[s : s + PAIRS_PER_BLOCK],
                                                     i[s : s + PAIRS_PER_BLOCK])
        return out

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """``float32`` predicted rating of each ``(user_idx, item_idx)`` pair (arrays broadcast),
        clipped to the train ratings' range ``rating_range_``."""
        self._check_fitted()
        u, i = self._check_pairs(user_idx, item_idx)
        return self._clip(self._raw_blocks(u.ravel(), i.ravel())).reshape(u.shape)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Same as :meth:`predict`: a higher predicted rating ranks higher."""
        return self.predict(user_idx, item_idx)

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        """``float32 (len(user_idx), n_items)`` predicted ratings (clipped) of every item."""
        u = self._check_users(np.asarray(user_idx).ravel())
        n = self.n_items_
        uu = np.repeat(u, n)
        ii = np.tile(np.arange(n, dtype=np.int32), len(u))
        return self._clip(self._raw_blocks(uu, ii)).reshape(len(u), n)

    def _rmse_on(self, data: Dataset) -> float:
        """RMSE of the clipped predictions on ``data``; NaN when a prediction is NaN (diverged)."""
        pred = self._clip(self._raw_blocks(data.user_idx, data.item_idx))
        return float("nan") if np.isnan(pred).any() else rmse(data.rating, pred)


PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class IterativeParams(Params):
    """What every rating model trained in epochs takes (subclasses change the defaults)."""

    epochs: PositiveInt = Field(10, description="Most epochs; validation picks how many.")
    valid_fraction: float = Field(
        0.05, ge=0, lt=1, description="Without a validation set, this share of train picks the "
        "epoch count, then the model refits on all of train (0: train `epochs` epochs).")
    patience: PositiveInt = Field(3, description="Epochs without a better validation RMSE "
                                  "before stopping.")
    seed: int = 0


class IterativeRatingModel(RatingModel):
    """A rating model trained epoch by epoch, with early stopping and learning curves.

    Subclasses declare their :class:`IterativeParams` and implement ``_init_params(train,
    rng)``, ``_epoch(train, rng)`` and
    ``_state`` / ``_set_state`` (a copy of the learned parameters).
    """

    epochs: int
    valid_fraction: float
    patience: int
    seed: int

    @abstractmethod
    def _init_params(self, train: Dataset, rng: np.random.Generator) -> None: ...

    @abstractmethod
    def _epoch(self, train: Dataset, rng: np.random.Generator) -> None: ...

    def _state(self) -> dict[str, Any]:
        return {k: copy.deepcopy(getattr(self, k)) for k in self.learned}

    def _set_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def _finish(self, train: Dataset) -> None:
        """Called after training (e.g. to blank users / items without train ratings)."""

    def _fit_ratings(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        refit = valid is None and self.valid_fraction > 0
        if refit:
            fit_part, valid = holdout(train, self.valid_fraction, self.seed)
        else:
            fit_part = train
        if valid is not None and valid.n_ratings == 0:
            valid = None
        stage = "select" if refit else ("early-stop" if valid is not None else "fixed")
        first = self._train(fit_part, valid, int(self.epochs), stage)
        self.history_ = [first]
        if refit:
            final = self._train(train, None, max(1, first.best_epoch or 0), "refit")
            final.best_epoch = first.best_epoch
            self.history_.append(final)
        self.best_epoch_ = first.best_epoch or len(first)
        if options.curves_dir:
            for h in self.history_:
                save_curve(h, Path(options.curves_dir))
        self._finish(train)

    def _train(self, data: Dataset, valid: Dataset | None, epochs: int, stage: str
               ) -> TrainingHistory:
        rng = np.random.default_rng(self.seed)
        self._init_params(data, rng)
        history = TrainingHistory(
            f"{self.name}_{data.name.replace('/', '-')}_seed{self.seed}_{stage}",
            monitor="valid RMSE" if valid is not None else None, mode="min")
        stopper = EarlyStopping(int(self.patience), mode="min", min_delta=1e-6)
        # the selection run only picks an epoch count (the refit trains again): no state copies
        snapshot = None if stage == "select" else self._state
        for epoch in range(1, epochs + 1):
            self._epoch(data, rng)
            tr = self._rmse_on(data)
            if not np.isfinite(tr):
                raise ModelError(f"{self.name}: training diverged at epoch {epoch} (train RMSE "
                                 f"{tr}); lower the learning rate or raise regularisation")
            numbers = {"train RMSE": tr}
            if valid is not None:
                numbers["valid RMSE"] = self._rmse_on(valid)
            history.add(**numbers)
            if stopper.update(epoch, numbers.get("valid RMSE"), snapshot):
                history.stopped_early = True
                break
        history.best_epoch = stopper.best_epoch
        if stopper.best_state is not None:
            self._set_state(stopper.best_state)
        return history


# ---------------------------------------------------------------------- factor models
class FactorModel(RatingModel):
    """``mu + b_u + b_i + p_u . q_i`` (zero factors: a bias model)."""

    learned = ("rating_range_", "global_mean_", "user_bias_", "item_bias_", "user_factors_",
               "item_factors_")

    def expected_shapes(self) -> dict:
        return {"rating_range_": (2,), "user_bias_": (self.n_users_,),
                "item_bias_": (self.n_items_,), "user_factors_": (self.n_users_, None),
                "item_factors_": (self.n_items_, None)}

    def _zero_params(self, n_users: int, n_items: int, k: int) -> None:
        self.user_bias_ = np.zeros(n_users, np.float32)
        self.item_bias_ = np.zeros(n_items, np.float32)
        self.user_factors_ = np.zeros((n_users, k), np.float32)
        self.item_factors_ = np.zeros((n_items, k), np.float32)

    def _raw(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = self.global_mean_ + self.user_bias_[u] + self.item_bias_[i]
        if self.user_factors_.shape[1]:
            out = out + np.einsum("nk,nk->n", self.user_factors_[u], self.item_factors_[i])
        return out

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel())
        raw = (self.global_mean_ + self.user_bias_[u, None] + self.item_bias_[None, :]
               + self.user_factors_[u] @ self.item_factors_.T)
        return self._clip(raw)

    def item_vectors(self) -> np.ndarray | None:
        """The item factors ``q_i`` (None for a model without factors, e.g. ``biases``)."""
        self._check_fitted()
        return self.item_factors_ if self.item_factors_.shape[1] else None

    def _blank_unseen(self, train: Dataset) -> None:
        """Users / items without train ratings fall back to the other side's bias."""
        for counts, bias, factors in ((train.user_counts, self.user_bias_, self.user_factors_),
                                      (train.item_counts, self.item_bias_, self.item_factors_)):
            bias[counts == 0] = 0.0
            factors[counts == 0] = 0.0

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (factors + 1,)``: the ridge-regression user vector ``[p_u, b_u]`` of a new
        person from their ratings (``ratings=None``: every pick counts as the top of the
        scale)."""
        items, r = self._picks(item_idx, ratings)
        if ratings is None:
            r = np.full(len(items), self.rating_range_[1], np.float32)
        q = self.item_factors_[items]
        x = np.hstack([q, np.ones((len(items), 1), np.float32)]).astype(np.float64)
        y = (r - self.global_mean_ - self.item_bias_[items]).astype(np.float64)
        lam = float(getattr(self, "reg", 0.05)) * max(1, len(items)) + 1e-3
        return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y).astype(np.float32)

    def fold_in_size(self) -> int:
        """Length of the :meth:`fold_in` state."""
        return self.user_factors_.shape[1] + 1

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        """``float32 (n_items,)`` predicted ratings for a person :meth:`fold_in` described."""
        p, b = state[:-1], state[-1]
        return self._clip(self.global_mean_ + b + self.item_bias_ + self.item_factors_ @ p)


@register
class GlobalMean(FactorModel):
    """Predicts the mean train rating for every pair (the floor every model must beat)."""

    name = "global-mean"

    def __init__(self) -> None:
        pass

    def _fit_ratings(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        self._zero_params(train.n_users, train.n_items, 0)


class _IterativeFactorModel(FactorModel, IterativeRatingModel):
    def _finish(self, train: Dataset) -> None:
        self._blank_unseen(train)


@register
class Biases(_IterativeFactorModel):
    """``mu + b_u + b_i`` with L2-regularised biases, fitted by alternating closed-form sweeps
    (``b_i = sum(r - mu - b_u) / (reg_item + n_i)``, then the same for users).

    Args:
        reg_user, reg_item: shrinkage of user / item biases towards 0 (in ratings).
        epochs: most sweeps; validation picks how many.
    """

    class Params(IterativeParams):
        reg_user: NonNegative = 15.0
        reg_item: NonNegative = 10.0
        patience: PositiveInt = 2

    def typed_params(self) -> Biases.Params:
        return cast("Biases.Params", super().typed_params())

    name = "biases"
    param_grid = {"reg_user": [5.0, 15.0], "reg_item": [5.0, 10.0]}

    def _init_params(self, train: Dataset, rng: np.random.Generator) -> None:
        self._zero_params(train.n_users, train.n_items, 0)

    def _epoch(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        u, i, r = train.user_idx, train.item_idx, train.rating - self.global_mean_
        res = r - self.user_bias_[u]
        self.item_bias_ = (np.bincount(i, res, train.n_items)
                           / (p.reg_item + train.item_counts)).astype(np.float32)
        res = r - self.item_bias_[i]
        self.user_bias_ = (np.bincount(u, res, train.n_users)
                           / (p.reg_user + train.user_counts)).astype(np.float32)


@register
class SVDSGD(_IterativeFactorModel):
    """Biased matrix factorisation (Funk-SVD) by minibatch SGD.

    Per rating, with error ``e = r - mu - b_u - b_i - p_u . q_i``::

        b_u += lr * (e - reg_bias * b_u)      p_u += lr * (e * q_i - reg * p_u)

    (the same for items). A minibatch applies the summed per-rating updates at once, computed
    from the parameters at the start of the batch; batches are slices of one shuffled
    permutation per epoch.

    Args:
        factors: latent dimensions. lr: learning rate. reg: L2 on factors. reg_bias: L2 on biases.
        init_std: standard deviation of the normal initial factors.
        epochs: most epochs (validation picks how many). batch_size: ratings per update.
    """

    class Params(IterativeParams):
        factors: PositiveInt = 150
        lr: Positive = 0.01
        reg: NonNegative = 0.1
        reg_bias: NonNegative = 0.02
        init_std: Positive = 0.1
        epochs: PositiveInt = 100
        batch_size: PositiveInt = 1024
        patience: PositiveInt = 5

    def typed_params(self) -> SVDSGD.Params:
        return cast("SVDSGD.Params", super().typed_params())

    name = "svd-sgd"
    param_grid = {"factors": [50, 150], "reg": [0.05, 0.1]}

    def _init_params(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        self._zero_params(train.n_users, train.n_items, 0)
        k = int(p.factors)
        self.user_factors_ = rng.normal(0, p.init_std, (train.n_users, k)).astype(np.float32)
        self.item_factors_ = rng.normal(0, p.init_std, (train.n_items, k)).astype(np.float32)

    def _epoch(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        n, bs = train.n_ratings, int(p.batch_size)
        perm = rng.permutation(n)
        users, items = train.user_idx[perm], train.item_idx[perm]
        ratings = train.rating[perm] - self.global_mean_
        lr, reg, reg_b = np.float32(p.lr), np.float32(p.reg), np.float32(p.reg_bias)
        bu, bi, P, Q = self.user_bias_, self.item_bias_, self.user_factors_, self.item_factors_
        ones = np.ones(bs, np.float32)
        for s in range(0, n, bs):
            u, i, r = users[s : s + bs], items[s : s + bs], ratings[s : s + bs]
            m = len(u)
            pu, qi = P[u], Q[i]
            e = r - bu[u] - bi[i] - np.einsum("nk,nk->n", pu, qi)
            bu += lr * np.bincount(u, e - reg_b * bu[u], len(bu)).astype(np.float32)
            bi += lr * np.bincount(i, e - reg_b * bi[i], len(bi)).astype(np.float32)
            cols = np.arange(m + 1)
            su = sp.csc_matrix((ones[:m], u, cols), shape=(len(bu), m))
            si = sp.csc_matrix((ones[:m], i, cols), shape=(len(bi), m))
            P += lr * (su @ (e[:, None] * qi - reg * pu))
            Q += lr * (si @ (e[:, None] * pu - reg * qi))


@register
class MFALS(_IterativeFactorModel):
    """Biased matrix factorisation by alternating least squares.

    Each half-step solves, for every user at once (batched), the ridge regression of
    ``r - mu - b_i`` on ``[q_i, 1]`` for ``[p_u, b_u]`` with penalty ``reg * n_u`` on the factors
    and ``reg_bias * n_u`` on the bias (weighted-lambda regularisation, ALS-WR); then the same for
    items.

    Args:
        factors: latent dimensions. reg, reg_bias: weighted-lambda penalties.
        init_std: standard deviation of the initial item factors. epochs: most sweeps.
    """

    class Params(IterativeParams):
        factors: PositiveInt = 50
        reg: NonNegative = 0.15
        reg_bias: NonNegative = 0.01
        init_std: Positive = 0.1
        epochs: PositiveInt = 30

    def typed_params(self) -> MFALS.Params:
        return cast("MFALS.Params", super().typed_params())

    name = "mf-als"
    param_grid = {"factors": [20, 50], "reg": [0.1, 0.15]}

    def _init_params(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        self._zero_params(train.n_users, train.n_items, int(p.factors))
        self.item_factors_ = rng.normal(0, p.init_std, self.item_factors_.shape
                                        ).astype(np.float32)
        csr = train.csr.astype(np.float32)
        self._by_user = (csr.indptr, csr.indices, csr.data - self.global_mean_)
        csc = csr.tocsc()
        self._by_item = (csc.indptr, csc.indices, csc.data - self.global_mean_)

    def _state(self) -> dict[str, Any]:
        return {k: copy.deepcopy(getattr(self, k)) for k in FactorModel.learned}

    def _epoch(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        indptr, cols, y = self._by_user
        x = solve_rows(indptr, cols, y - self.item_bias_[cols], self.item_factors_,
                       p.reg, p.reg_bias)
        self.user_factors_, self.user_bias_ = x[:, :-1].copy(), x[:, -1].copy()
        indptr, rows, y = self._by_item
        x = solve_rows(indptr, rows, y - self.user_bias_[rows], self.user_factors_,
                       p.reg, p.reg_bias)
        self.item_factors_, self.item_bias_ = x[:, :-1].copy(), x[:, -1].copy()

    def _finish(self, train: Dataset) -> None:
        super()._finish(train)
        del self._by_user, self._by_item


def solve_rows(indptr: np.ndarray, cols: np.ndarray, y: np.ndarray, factors: np.ndarray,
               reg: float, reg_bias: float, budget: int = 1 << 22) -> np.ndarray:
    """Per row ``r`` of a CSR pattern, the ridge solution ``[p_r, b_r]`` of
    ``y[nz] ~ factors[cols[nz]] . p_r + b_r`` with penalties ``reg * n_r`` / ``reg_bias * n_r``.

    Returns ``float32 (n_rows, k + 1)``; rows without entries get zeros. Rows are solved in
    batches of similar length, each padded batch holding at most about ``budget`` numbers.
    """
    n_rows, k = len(indptr) - 1, factors.shape[1]
    out = np.zeros((n_rows, k + 1), np.float32)
    deg = np.diff(indptr)
    order = np.argsort(deg, kind="stable")
    order = order[deg[order] > 0]
    sorted_deg = deg[order]
    design = np.hstack([factors, np.ones((len(factors), 1), factors.dtype)]).astype(np.float64)
    penalty = np.diag(np.array([reg] * k + [reg_bias], np.float64))
    cells = max(1, budget // (k + 1))
    s = 0
    while s < len(order):
        # degrees ascend, so a batch's padded size is (rows in it) x (its last row's degree)
        cost = (np.arange(1, len(order) - s + 1)) * sorted_deg[s:]
        e = s + max(1, int(np.searchsorted(cost, cells, side="right")))
        rows = order[s:e]
        width = int(deg[rows].max())
        pos = indptr[rows][:, None] + np.arange(width)[None, :]
        mask = np.arange(width)[None, :] < deg[rows][:, None]
        pos = np.where(mask, pos, 0)
        x = design[cols[pos]] * mask[..., None]
        t = np.where(mask, y[pos], 0.0)
        a = np.matmul(x.transpose(0, 2, 1), x)
        a += deg[rows][:, None, None] * penalty[None] + 1e-8 * np.eye(k + 1)
        b = np.matmul(x.transpose(0, 2, 1), t[..., None])
        out[rows] = np.linalg.solve(a, b)[..., 0]
        s = e
    return out

