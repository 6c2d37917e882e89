"""A linear blend of explicit rating models, weighted on a validation slice of train.

``explicit-blend`` fits each member on train minus a seeded random validation slice (members
early-stop on that slice), fits ridge-regression weights of the members' clipped predictions on
the slice, then refits every member on all train ratings for its selected number of epochs and
predicts ``intercept + sum_j w_j * prediction_j``, clipped. No test rating is ever used.

The classic lesson of the Netflix prize: models that err differently (SGD and ALS factor models,
a side-feature network) average to a lower RMSE than any one of them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.evaluation.metrics import rmse
from movierec.models.base import create, get_class, param_names, register
from movierec.models.explicit import RatingModel, holdout
from movierec.options import FitOptions
from movierec.training.history import selected_epochs

__all__ = ["Blend", "DEFAULT_MEMBERS"]

DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"name": "biases"},
    {"name": "svd-sgd"},
    {"name": "neural-side"},
    {"name": "autorec"},
)
"""Members when none are given (each with its defaults, which were chosen on validation slices of
ML-100K's ``u1.base`` / ``u3.base`` by ``benchmarks/tune_explicit.py``)."""


@register
class Blend(RatingModel):
    """Ridge-weighted linear blend of explicit rating models (see the module docstring).

    Args:
        members: list of ``{"name": registered model, "params": {...}}``; default
            :data:`DEFAULT_MEMBERS`. A member without a ``seed`` gets ``seed + its position``.
        valid_fraction: share of train held out to weight the members.
        ridge: L2 penalty on the blend weights (the intercept is free).

    The members train with the blend's run options; their learning curves go to
    ``<curves_dir>/explicit-blend``.
    """

    name = "explicit-blend"

    def __init__(self, members: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None = None,
                 valid_fraction: float = 0.1, ridge: float = 1.0, seed: int = 0) -> None:
        self.members = members
        self.valid_fraction = valid_fraction
        self.ridge = ridge
        self.seed = seed

    # -------------------------------------------------------------- members
    def _specs(self) -> list[tuple[str, dict[str, Any]]]:
        members = DEFAULT_MEMBERS if self.members is None else self.members
        if not members:
            raise ModelError("explicit-blend: give at least one member model")
        out = []
        for j, m in enumerate(members):
            if not isinstance(m, dict) or "name" not in m:
                raise ModelError(f"explicit-blend member {j}: expected {{'name': ..., "
                                 f"'params': {{...}}}}, got {m!r}")
            cls = get_class(m["name"])
            if not issubclass(cls, RatingModel):
                raise ModelError(f"explicit-blend member {j}: {m['name']!r} does not predict "
                                 "ratings")
            params = copy.deepcopy(dict(m.get("params") or {}))
            if "seed" in param_names(cls):
                params.setdefault("seed", int(self.seed) + j)
            out.append((m["name"], params))
        return out

    @property
    def learned(self) -> tuple[str, ...]:  # type: ignore[override]
        names = ["rating_range_", "global_mean_", "blend_weights_", "member_epochs_"]
        for j, (name, _) in enumerate(self._specs()):
            names += [f"m{j}_{a}" for a in get_class(name).learned]
        return tuple(names)

    def _final_params(self, j: int) -> tuple[str, dict[str, Any]]:
        name, params = self._specs()[j]
        if "epochs" in param_names(get_class(name)):
            params.update(epochs=max(1, int(self.member_epochs_[j])), valid_fraction=0.0)
        return name, params

    def _member_models(self) -> list[RatingModel]:
        """The refitted members (rebuilt from the ``m<j>_*`` arrays after a load)."""
        if getattr(self, "_members", None) is None:
            models: list[RatingModel] = []
            for j in range(len(self._specs())):
                name, params = self._final_params(j)
                m = _member(name, params)
                m.set_train_state(self.user_ids_, self.item_ids_, self.seen_, self.dataset_name_,
                             self.dataset_fingerprint_)
                for a in m.learned:
                    setattr(m, a, getattr(self, f"m{j}_{a}"))
                models.append(m)
            self._members = models
        return self._members

    # -------------------------------------------------------------- fitting
    def _fit_ratings(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        specs = self._specs()
        if options.curves_dir:  # apart from stand-alone runs of the same models
            options = options.model_copy(
                update={"curves_dir": str(Path(options.curves_dir) / self.name)})
        rest, held = (train, valid) if valid is not None else holdout(
            train, self.valid_fraction, self.seed)
        preds, epochs = [], []
        for name, params in specs:
            m = create(name, **params).fit(rest, held, options)
            preds.append(m.predict(held.user_idx, held.item_idx))
            epochs.append(selected_epochs(m.training_history()))
        x = np.column_stack(preds).astype(np.float64)
        self.member_valid_rmse_ = [rmse(held.rating, p) for p in preds]
        mean = x.mean(axis=0)
        xc, y = x - mean, held.rating.astype(np.float64)
        w = np.linalg.solve(xc.T @ xc + self.ridge * np.eye(x.shape[1]), xc.T @ (y - y.mean()))
        self.blend_weights_ = np.r_[y.mean() - mean @ w, w].astype(np.float64)
        self.valid_rmse_ = rmse(held.rating, self._clip(x @ w + self.blend_weights_[0]))
        self.member_epochs_ = np.asarray(epochs, np.int64)
        self._members = []
        for j in range(len(specs)):
            name, params = self._final_params(j)
            m = _member(name, params).fit(train, options=options)
            for a in m.learned:
                setattr(self, f"m{j}_{a}", getattr(m, a))
            self._members.append(m)

    # -------------------------------------------------------------- prediction
    def _raw(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        w = self.blend_weights_
        out = np.full(len(u), w[0], np.float64)
        for wj, m in zip(w[1:], self._member_models(), strict=True):
            out += wj * m.predict(u, i)
        return out

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """The members' fold-in states, concatenated (``float32``)."""
        return np.concatenate([m.fold_in(item_idx, ratings) for m in self._member_models()])

    def fold_in_size(self) -> int:
        """Length of the :meth:`fold_in` state: the members' lengths added."""
        return sum(m.fold_in_size() for m in self._member_models())

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        """``float32 (n_items,)`` blended predicted ratings for a folded-in person."""
        w = self.blend_weights_
        out = np.full(self.n_items_, w[0], np.float64)
        start = 0
        for wj, m in zip(w[1:], self._member_models(), strict=True):
            size = m.fold_in_size()
            out += wj * m.score_folded(state[start : start + size])
            start += size
        return self._clip(out)


def _member(name: str, params: dict[str, Any]) -> RatingModel:
    """A new member model (``Blend._specs`` admits rating models only)."""
    return cast(RatingModel, create(name, **params))
