"""I-AutoRec (Sedhain et al., WWW 2015): an item-based autoencoder for rating prediction.

Each item is the vector of its train ratings over all users (0 where unrated). The network
``r_i -> sigmoid(V r_i + b) -> W h + c`` reconstructs it; the loss counts only observed
ratings, plus ``reg / 2 * (|V|^2 + |W|^2)``. The predicted rating of user ``u`` for item ``i`` is
entry ``u`` of item ``i``'s reconstruction. Trained with Adam on minibatches of items (PyTorch,
imported inside functions); prediction is plain numpy.

Fallbacks: an item without train ratings gets ``mu + user offset``, a user without train ratings
``mu + item offset`` (offsets: mean residuals shrunk by ``SHRINK`` pseudo-ratings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.models.base import register
from movierec.models.explicit import (
    IterativeParams,
    IterativeRatingModel,
    NonNegative,
    Positive,
    PositiveInt,
)

if TYPE_CHECKING:  # torch is imported inside the functions that train
    import torch

__all__ = ["AutoRec"]

SHRINK = 5.0
PAIRS_PER_CHUNK = 1 << 16


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free logistic


def _encoder_decoder(net: torch.nn.Sequential) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """The two ``Linear`` layers of the ``Linear, Sigmoid, Linear`` network."""
    return cast("torch.nn.Linear", net[0]), cast("torch.nn.Linear", net[2])


@register
class AutoRec(IterativeRatingModel):
    """Item-based AutoRec (see the module docstring).

    Args:
        hidden: hidden units. reg: L2 weight on both weight matrices. lr: Adam learning rate.
        epochs: most epochs (validation picks how many). batch_size: items per step.
    """

    name = "autorec"
    param_grid = {"hidden": [300, 500], "reg": [0.5, 1.0]}
    learned = ("rating_range_", "global_mean_", "item_ratings_", "enc_weight_", "enc_bias_",
               "dec_weight_", "dec_bias_", "user_offset_", "item_offset_")
    _hidden_cache: np.ndarray | None  # every item's code, until the weights change

    class Params(IterativeParams):
        hidden: PositiveInt = 500
        reg: NonNegative = 0.5
        lr: Positive = 0.001
        epochs: PositiveInt = 200
        batch_size: PositiveInt = 256
        patience: PositiveInt = 10

    def typed_params(self) -> AutoRec.Params:
        return cast("AutoRec.Params", super().typed_params())

    def expected_shapes(self) -> dict:
        p = self.typed_params()
        nu, ni, h = self.n_users_, self.n_items_, int(p.hidden)
        return {"rating_range_": (2,), "item_ratings_": (ni, nu), "enc_weight_": (h, nu),
                "enc_bias_": (h,), "dec_weight_": (nu, h), "dec_bias_": (nu,),
                "user_offset_": (nu,), "item_offset_": (ni,)}

    # -------------------------------------------------------------- training hooks
    def _init_params(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        import torch

        self.item_ratings_ = sp.csr_matrix(
            (train.rating, (train.item_idx, train.user_idx)),
            shape=(train.n_items, train.n_users), dtype=np.float32)
        res = train.rating - self.global_mean_
        self.user_offset_ = (np.bincount(train.user_idx, res, train.n_users)
                             / (train.user_counts + SHRINK)).astype(np.float32)
        self.item_offset_ = (np.bincount(train.item_idx, res, train.n_items)
                             / (train.item_counts + SHRINK)).astype(np.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31 - 1)))
            self._net = torch.nn.Sequential(torch.nn.Linear(train.n_users, int(p.hidden)),
                                            torch.nn.Sigmoid(),
                                            torch.nn.Linear(int(p.hidden), train.n_users))
        self._opt = torch.optim.Adam(self._net.parameters(), lr=float(p.lr))
        self._rows = np.flatnonzero(train.item_counts > 0)  # items with something to rebuild
        self._flatten()

    def _epoch(self, train: Dataset, rng: np.random.Generator) -> None:
        p = self.typed_params()
        import torch

        net, opt, reg = self._net, self._opt, float(p.reg)
        enc, dec = _encoder_decoder(net)
        rows, bs = self._rows, int(p.batch_size)
        perm = rows[rng.permutation(len(rows))]
        for s in range(0, len(perm), bs):
            idx = perm[s : s + bs]
            x = torch.from_numpy(self.item_ratings_[idx].toarray())
            mask = x != 0
            out = net(x)
            sse = ((out - x) * mask).pow(2).sum() / len(idx)
            l2 = enc.weight.pow(2).sum() + dec.weight.pow(2).sum()
            loss = sse + reg / 2 * l2 * len(idx) / len(rows)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self._flatten()

    def _flatten(self) -> None:
        enc, dec = _encoder_decoder(self._net)
        self.enc_weight_ = enc.weight.detach().numpy().copy()
        self.enc_bias_ = enc.bias.detach().numpy().copy()
        self.dec_weight_ = dec.weight.detach().numpy().copy()
        self.dec_bias_ = dec.bias.detach().numpy().copy()
        self._hidden_cache = None

    def _state(self) -> dict[str, Any]:
        return {k: getattr(self, k).copy() for k in
                ("enc_weight_", "enc_bias_", "dec_weight_", "dec_bias_")}

    def _set_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._hidden_cache = None

    def _finish(self, train: Dataset) -> None:
        del self._net, self._opt, self._rows

    # -------------------------------------------------------------- prediction
    def _hidden(self) -> np.ndarray:
        """``float32 (n_items, hidden)``: every item's code (cached until the weights change)."""
        hidden: np.ndarray | None = getattr(self, "_hidden_cache", None)
        if hidden is None:
            pre = np.asarray(self.item_ratings_ @ self.enc_weight_.T) + self.enc_bias_
            hidden = self._hidden_cache = _sigmoid(pre).astype(np.float32)
        return hidden

    def _fallback(self, u: np.ndarray, i: np.ndarray, out: np.ndarray) -> np.ndarray:
        cold_item = self.item_ratings_.indptr[i + 1] == self.item_ratings_.indptr[i]
        cold_user = self._user_counts()[u] == 0
        out = np.where(cold_item, self.global_mean_ + self.user_offset_[u], out)
        return np.where(cold_user & ~cold_item, self.global_mean_ + self.item_offset_[i], out)

    def _user_counts(self) -> np.ndarray:
        return np.bincount(self.item_ratings_.indices, minlength=len(self.dec_bias_))

    def _raw(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        h = self._hidden()
        out = np.empty(len(u), np.float32)
        for s in range(0, len(u), PAIRS_PER_CHUNK):
            uu, ii = u[s : s + PAIRS_PER_CHUNK], i[s : s + PAIRS_PER_CHUNK]
            out[s : s + PAIRS_PER_CHUNK] = (np.einsum("nk,nk->n", h[ii], self.dec_weight_[uu])
                                           + self.dec_bias_[uu])
        return self._fallback(u, i, out)

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel())
        raw = self.dec_weight_[u] @ self._hidden().T + self.dec_bias_[u, None]
        uu = np.repeat(u, self.n_items_)
        ii = np.tile(np.arange(self.n_items_), len(u))
        return self._clip(self._fallback(uu, ii, raw.ravel()).reshape(len(u), self.n_items_))

    # -------------------------------------------------------------- new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (hidden + 1,)``: a decoder row ``[w_u, c_u]`` for a new person, by ridge
        regression of their ratings on the items' codes (``ratings=None``: every pick counts as
        the top of the scale)."""
        p = self.typed_params()
        items, r = self._picks(item_idx, ratings)
        if ratings is None:
            r = np.full(len(items), self.rating_range_[1], np.float32)
        x = np.hstack([self._hidden()[items], np.ones((len(items), 1), np.float32)])
        x = x.astype(np.float64)
        a = x.T @ x + float(p.reg) * np.eye(x.shape[1])
        a[-1, -1] += 1e-3 - float(p.reg)  # the bias column is barely penalised
        prior = np.zeros(x.shape[1])
        prior[-1] = self.global_mean_
        w = np.linalg.solve(a, x.T @ r.astype(np.float64) + 1e-3 * prior)
        return w.astype(np.float32)

    def fold_in_size(self) -> int:
        """Length of the :meth:`fold_in` state."""
        p = self.typed_params()
        return int(p.hidden) + 1

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        """``float32 (n_items,)`` predicted ratings for a person :meth:`fold_in` described."""
        state = np.asarray(state, np.float32)
        out = self._hidden() @ state[:-1] + state[-1]
        cold = np.diff(self.item_ratings_.indptr) == 0
        return self._clip(np.where(cold, self.global_mean_, out))
