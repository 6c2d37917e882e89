"""Sequential recommenders: ``sasrec``, ``gru4rec`` and ``bert4rec``.

They read each user's train interactions in time order (:mod:`movierec.data.sequences`) and
score every item as the next one after the user's last ``max_len`` items. The networks are in
:mod:`movierec.training.sequence_nets`, their training (one row per user, or per ``max_len``
stretch with ``every_window``; a loss at every position; full-ranking validation, early
stopping) in :mod:`movierec.training.sequence_fit`.

Model selection never looks at the test item: ``fit(train, valid)`` early-stops on ``valid``;
``fit(train)`` with ``holdout`` (the default) holds out each user's last train interaction
(:func:`movierec.training.validation.holdout_last`, the same rule as NCF's ``holdout``) and
trains on the rest; with ``refit`` it then trains a fresh network on all of train for the
epoch count early stopping chose (``training_history()``: the selection run, then the refit).
A known user's scores come from their whole train sequence (validation item included), so the
item after it is what is predicted.

``fold_in(items)`` keeps the picks **in the order given** (the last is the most recent; a repeated
pick counts at its last place): the state is that ordered ``int32`` sequence, and
``score_folded`` runs the network over it. Ratings are accepted and ignored.

The artifact holds ``weights_`` (the network's parameters, flat, ``state_dict`` order) and the
ordered train histories ``sequence_items_`` / ``sequence_indptr_``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal, cast

import numpy as np
from pydantic import Field, model_validator

from movierec.data.dataset import Dataset
from movierec.data.sequences import History, history_of, pick_window
from movierec.errors import ModelError
from movierec.models.base import Cost, Recommender, register
from movierec.models.params import Params
from movierec.options import FitOptions

__all__ = ["BERT4RecRecommender", "GRU4RecRecommender", "SASRecRecommender",
           "SequentialParams", "SequentialRecommender"]

PositiveInt = Annotated[int, Field(ge=1)]
SCORE_USERS = 1024
"""Users whose scores one block computes (``SCORE_USERS x n_items`` float32)."""


class SequentialParams(Params):
    """What every sequential network shares."""

    max_len: PositiveInt = Field(50, description="Most recent items a user is represented by.")
    hidden: PositiveInt = Field(64, description="Hidden size (and item embedding size).")
    layers: PositiveInt = Field(2, description="Transformer / GRU layers.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout (GRU4Rec: on embeddings).")
    loss: Literal["ce", "bce", "sampled", "gbce"] = Field(
        "ce", description="ce: softmax over every item; bce: one sampled negative per position; "
        "sampled: softmax over n_negatives sampled items; gbce: gSASRec's generalised BCE.")
    n_negatives: PositiveInt = Field(256, description="Sampled items per position (sampled, "
                                     "gbce).")
    gbce_t: float = Field(0.75, ge=0, le=1, description="gbce calibration t (0: plain BCE "
                          "weighting, 1: fully calibrated).")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    batch_size: PositiveInt = Field(128, description="Users (sequences) per step.")
    epochs: PositiveInt = Field(200, description="Most epochs.")
    patience: PositiveInt | None = Field(
        10, description="Epochs without a better validation NDCG@10 before stopping; None: "
        "never.")
    holdout: bool = Field(
        True, description="Without a validation set, hold out each user's last train "
        "interaction for early stopping (and train on the rest).")
    refit: bool = Field(
        False, description="After early stopping on the held-out last train items (holdout), "
        "train a fresh network on the whole train part for the best epoch count, so the "
        "model also learns each user's latest step.")
    every_window: bool = Field(
        False, description="Train on every max_len stretch of a history longer than max_len "
        "(stepping back from the latest), not only on its latest max_len items.")
    seed: int = 0


class _HeadsParams(SequentialParams):
    heads: PositiveInt = Field(2, description="Attention heads (must divide hidden).")
    attn_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the attention "
                                "weights (slow on CPU: 4x the attention's cost).")

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> _HeadsParams:
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        return self


class SASRecParams(_HeadsParams):
    """SASRec's sizes: ``layers`` transformer layers of ``heads`` heads."""


class GRU4RecParams(SequentialParams):
    layers: PositiveInt = Field(1, description="GRU layers.")
    dropout: float = Field(0.25, ge=0, lt=1, description="Dropout on the item embeddings.")
    embedding: PositiveInt | None = Field(None, description="Item embedding size (default "
                                          "hidden).")


class BERT4RecParams(_HeadsParams):
    mask_prob: float = Field(0.2, gt=0, lt=1, description="Share of items masked in training.")


class SequentialRecommender(Recommender):
    """Shared fitting, scoring, fold-in and persistence of the sequential networks."""

    Params: ClassVar[type[SequentialParams]]
    learned: ClassVar[tuple[str, ...]] = ("weights_", "sequence_items_", "sequence_indptr_")
    masked_training: ClassVar[bool] = False

    def typed_params(self) -> SequentialParams:
        return cast("SequentialParams", super().typed_params())

    @classmethod
    def estimate_cost(cls, n_users: int, n_items: int, n_interactions: int,
                      params: dict[str, Any]) -> Cost:
        """The full-softmax loss (``loss: ce``) holds ``positions x n_items`` float32 three times
        at its peak (logits' log-softmax and two gradients), positions = ``batch_size x max_len``
        (BERT4Rec: the masked share); ML-32M's 87,585 items at batch 128 x 200 need ~27 GB. The
        other losses score ``n_negatives + 1`` items per position. Plus the item table with its
        two Adam moments, the scoring blocks and the sparse train data."""
        base = super().estimate_cost(n_users, n_items, n_interactions, params)
        p = cls.Params(**{k: v for k, v in params.items() if k in cls.Params.model_fields})
        positions = p.batch_size * p.max_len
        if cls.masked_training:
            positions = int(positions * cast("BERT4RecParams", p).mask_prob) + p.batch_size
        per_position = n_items if p.loss == "ce" else (
            2 if p.loss == "bce" else p.n_negatives + 1)
        loss_bytes = 3 * 4 * positions * per_position
        tables = 4 * 4 * (n_items + 2) * p.hidden + 4 * SCORE_USERS * n_items
        note = (f"the full-softmax loss over {n_items:,} items for {positions:,} positions a step"
                if p.loss == "ce" else f"the {p.loss} loss and the item table")
        return Cost(base.memory_bytes + loss_bytes + tables, note,
                    "use `loss: sampled` or `loss: gbce` (n_negatives items a position), or a "
                    "smaller batch_size or max_len")

    def _make_net(self, n_items: int):
        raise NotImplementedError

    # ------------------------------------------------------------------ network
    def network(self):
        """The trained ``torch.nn.Module`` (eval mode) holding ``weights_``, built once."""
        self._check_fitted()
        from movierec.training.flat import cached_network

        return cached_network(self, self._make_net)

    def _n_weights(self) -> int:
        import torch

        with torch.device("meta"):
            net = self._make_net(self.n_items_)
        return sum(int(t.numel()) for t in net.state_dict().values())

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"weights_": (self._n_weights(),), "sequence_items_": (None,),
                "sequence_indptr_": (self.n_users_ + 1,)}

    def _validate_learned(self) -> None:
        super()._validate_learned()
        ptr = self.sequence_indptr_
        if ptr[0] != 0 or ptr[-1] != len(self.sequence_items_) or np.any(np.diff(ptr) < 0):
            raise ModelError(f"{type(self).__name__}: sequence_indptr_ does not describe "
                             f"sequence_items_ ({len(self.sequence_items_)} items)")
        if len(self.sequence_items_) and not (
                0 <= self.sequence_items_.min() and self.sequence_items_.max() < self.n_items_):
            raise ModelError(f"{type(self).__name__}: sequence_items_ holds item indices "
                             f"outside 0..{self.n_items_ - 1}")

    def _history(self) -> History:
        return History(self.sequence_items_, self.sequence_indptr_)

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        from movierec.training.sequence_fit import (
            SequenceSettings,
            ValidationItems,
            train_sequence_net,
        )
        from movierec.training.validation import holdout_last

        options.check_device()
        p = self.typed_params()
        full = history_of(train)
        self.sequence_items_, self.sequence_indptr_ = full.items, full.indptr
        fit_data, valid_data = train, valid
        if valid_data is None and p.holdout:
            fit_data, valid_data = holdout_last(train)
        validation = None
        if valid_data is not None and valid_data.n_ratings:
            validation = ValidationItems(
                valid_data.user_idx.astype(np.int64), valid_data.item_idx.astype(np.int64),
                fit_data.csr, fit_data.item_counts == 0)
        settings = SequenceSettings(
            max_len=p.max_len, loss=p.loss, n_negatives=p.n_negatives, gbce_t=p.gbce_t,
            masked=self.masked_training, mask_prob=getattr(p, "mask_prob", 0.2),
            every_window=p.every_window, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
            weight_decay=p.weight_decay,
            patience=p.patience, seed=p.seed, num_threads=options.num_threads,
            device=options.device, progress=options.progress, log_dir=options.log_dir)
        import torch

        from movierec.training.flat import flat_weights

        torch.manual_seed(p.seed)
        net = self._make_net(train.n_items)
        net, record = train_sequence_net(net, history_of(fit_data), settings, validation,
                                         self.name)
        self.history_ = [record]
        if p.refit and valid is None and validation is not None:
            torch.manual_seed(p.seed)
            settings = replace(settings, epochs=record.best_epoch or len(record),
                               patience=None)
            net, refit = train_sequence_net(self._make_net(train.n_items), full, settings,
                                            None, f"{self.name} refit")
            self.history_.append(refit)
        self.weights_ = flat_weights(net)
        self._net_cache = (self.weights_, net)

    # ------------------------------------------------------------------ scoring
    def _score_windows(self, windows: np.ndarray) -> np.ndarray:
        from movierec.training.sequence_fit import score_windows

        return score_windows(self.network(), windows)

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores after each user's last ``max_len`` train items (float32), computed in blocks of
        users of similar history length (:func:`movierec.training.sequence_fit.by_length`)."""
        from movierec.training.sequence_fit import by_length

        u = self._check_users(np.asarray(user_idx).ravel()).astype(np.int64)
        out = np.empty((len(u), self.n_items_), dtype=np.float32)
        history, max_len = self._history(), self.typed_params().max_len
        for rows in by_length(history, u, max_len):
            out[rows] = self._score_windows(history.windows(u[rows], max_len))
        return out

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Like :meth:`Recommender.score`, a block of users at a time."""
        u, i = self._check_pairs(user_idx, item_idx)
        users, inverse = np.unique(u.ravel(), return_inverse=True)
        out = np.empty(u.size, dtype=np.float32)
        flat_i = i.ravel()
        for lo in range(0, len(users), SCORE_USERS):
            block = self.score_all(users[lo : lo + SCORE_USERS])
            rows = (inverse >= lo) & (inverse < lo + SCORE_USERS)
            out[rows] = block[inverse[rows] - lo, flat_i[rows]]
        return out.reshape(u.shape)

    def item_vectors(self) -> np.ndarray:
        """The item embedding table: ``float32 (n_items, hidden)``."""
        return self.network().item_table().detach().float().numpy().copy()

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """The ordered picks (``int32``; the last given is the most recent, a repeated pick
        counts at its last place). ``ratings`` are checked and ignored."""
        self._check_fitted()
        items = np.asarray(item_idx).ravel()
        if ratings is not None and len(np.asarray(ratings).ravel()) != len(items):
            raise ModelError(f"fold_in: {len(items)} items but {len(np.asarray(ratings))} "
                             "ratings; give one per item")
        if len(items) == 0:
            raise ModelError("fold_in: give at least one item")
        items = self._check_items(items)
        window = pick_window(items, len(items))[0]
        return (window[window > 0] - 1).astype(np.int32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state)
        if state.ndim != 1 or len(state) == 0 or not np.issubdtype(state.dtype, np.integer):
            raise ModelError(f"{type(self).__name__}.score_folded: expected the ordered item "
                             f"sequence that fold_in returns, got {state.dtype} {state.shape}")
        window = pick_window(self._check_items(state), self.typed_params().max_len)
        return self._score_windows(window)[0]


@register
class SASRecRecommender(SequentialRecommender):
    """SASRec (Kang & McAuley 2018): causal self-attention over the last ``max_len`` items;
    ``loss: ce`` is SASRec+ (Klenitskiy & Vasilev 2023), ``gbce`` gSASRec."""

    name = "sasrec"
    Params = SASRecParams
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    def _make_net(self, n_items: int):
        from movierec.training.sequence_nets import SASRecNet

        p = cast("SASRecParams", self.typed_params())
        return SASRecNet(n_items, p.hidden, p.layers, p.heads, p.max_len, p.dropout,
                         p.attn_dropout)


@register
class GRU4RecRecommender(SequentialRecommender):
    """GRU4Rec (Hidasi et al. 2016) trained on next items at every position."""

    name = "gru4rec"
    Params = GRU4RecParams
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    def _make_net(self, n_items: int):
        from movierec.training.sequence_nets import GRU4RecNet

        p = cast("GRU4RecParams", self.typed_params())
        return GRU4RecNet(n_items, p.hidden, p.layers, p.embedding, p.dropout)


@register
class BERT4RecRecommender(SequentialRecommender):
    """BERT4Rec (Sun et al. 2019): masked-item training, a mask token appended at inference."""

    name = "bert4rec"
    Params = BERT4RecParams
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    masked_training = True

    def _make_net(self, n_items: int):
        from movierec.training.sequence_nets import BERT4RecNet

        p = cast("BERT4RecParams", self.typed_params())
        return BERT4RecNet(n_items, p.hidden, p.layers, p.heads, p.max_len, p.dropout,
                           p.attn_dropout)
