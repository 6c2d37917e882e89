"""The genre-aware hybrid: a trained NCF model (NeuMF by default) fine-tuned on the genre-aware
training set, so that it learns which genres each user seeks and which they avoid.

``fit(train)``:

1. the base model: the artifact ``base`` (trained on the same train data, e.g. by
   ``movierec train configs/neumf-ml100k.yaml``), or a ``base_model`` fitted here with
   ``base_params`` and this model's ``seed`` (so a comparison over seeds pairs each hybrid with
   the NeuMF of the same seed);
2. item vectors (``content="genre"``: the movie x genre matrix; ``"text"``: description
   embeddings), the user x genre tables and the genre-aware rows of
   :mod:`movierec.content.genre_training` (``ratio`` negatives per positive);
3. ``epochs`` passes of log loss over those rows with Adam at learning rate ``lr`` (lower than
   the base model's), every weight trainable. ``epochs=0`` keeps the base model unchanged (the
   "before" row of a before / after comparison).

The result scores, folds in and saves like the base model (the artifact stores the fine-tuned
weights and the base model's name and hyper-parameters). The tables and rows come from ``train``
only: the held-out test item never enters them.
"""

from __future__ import annotations

import copy
import json
import time
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np

from movierec.content.tables import POSITIVE_THRESHOLD
from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender, create, get_class, register
from movierec.models.ncf import NCFRecommender
from movierec.models.params import without_run_options
from movierec.options import FitOptions
from movierec.training.history import TrainingHistory

__all__ = ["HybridRecommender", "finetune_network", "genre_rows"]

CONTENTS = ("genre", "text")

BASE_CACHE_SIZE = 6
"""Base models fitted here are kept (per process) by train data, base model, hyper-parameters
and seed, so a grid over the fine-tuning settings, or a before (``epochs=0``) / after pair in one
comparison, trains each base once. Fitting is deterministic for a seed, so a cached base is the
model a new fit would give."""

_BASES: OrderedDict[tuple, Recommender] = OrderedDict()


def genre_rows(
    train: Dataset,
    content: str = "genre",
    *,
    embedder: Any = "minilm",
    ratio: int = 3,
    threshold: float = POSITIVE_THRESHOLD,
    seed: int = 0,
):
    """The genre-aware training rows of ``train`` (a polars DataFrame, see
    :func:`movierec.content.genre_training.genre_training_set`) and the tables behind them."""
    from movierec.content.genre_training import genre_training_set
    from movierec.content.tables import build_genre_tables
    from movierec.models.content import genre_item_vectors, text_item_vectors

    if content not in CONTENTS:
        raise ModelError(f"content must be one of {CONTENTS}, got {content!r}")
    vectors = (genre_item_vectors(train) if content == "genre"
               else text_item_vectors(train, embedder))
    tables = build_genre_tables(train, vectors, threshold)
    return genre_training_set(train, tables, ratio=ratio, threshold=threshold, seed=seed), tables


def finetune_network(
    net,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    target: np.ndarray,
    *,
    epochs: int = 3,
    lr: float = 1e-4,
    batch_size: int = 2048,
    weight_decay: float = 0.0,
    seed: int = 0,
    num_threads: int | None = None,
) -> TrainingHistory:
    """Train the torch network ``net`` (``net(u, i) -> logits``) in place on the rows
    ``(user_idx, item_idx) -> target`` with log loss and Adam; the rows are shuffled anew each
    epoch (``default_rng([seed, epoch])``). Returns the history (``train loss`` and ``seconds``
    per epoch)."""
    import torch

    if len(user_idx) == 0:
        raise ModelError("fine-tuning needs at least one training row; the genre-aware set is "
                         "empty (no user has both positive and negative genres)")
    old_threads = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        torch.manual_seed(seed)
        u = torch.from_numpy(np.asarray(user_idx, dtype=np.int64))
        i = torch.from_numpy(np.asarray(item_idx, dtype=np.int64))
        y = torch.from_numpy(np.asarray(target, dtype=np.float32))
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        history = TrainingHistory("hybrid fine-tuning")
        net.train()
        for epoch in range(int(epochs)):
            t0 = time.perf_counter()
            perm = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(u)))
            total, n = 0.0, 0
            for s in range(0, len(perm), batch_size):
                b = perm[s : s + batch_size]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(u[b], i[b]), y[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
                n += len(b)
            history.add(**{"train loss": total / max(1, n),
                           "seconds": time.perf_counter() - t0})
        net.eval()
        return history
    finally:
        torch.set_num_threads(old_threads)


@register
class HybridRecommender(Recommender):
    """NeuMF fine-tuned on the genre-aware set (user's liked genres vs genres they avoid)."""

    name = "hybrid"
    learned: ClassVar[tuple[str, ...]] = ("weights_", "base_config_")
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, base: str | None = None, base_model: str = "neumf",
                 base_params: dict[str, Any] | None = None, content: str = "genre",
                 embedder: str = "minilm", ratio: int = 3,
                 positive_threshold: float = POSITIVE_THRESHOLD, epochs: int = 3,
                 lr: float = 1e-4, batch_size: int = 2048, weight_decay: float = 0.0,
                 seed: int = 0):
        self.base = base
        self.base_model = base_model
        self.base_params = base_params
        self.content = content
        self.embedder = embedder
        self.ratio = ratio
        self.positive_threshold = positive_threshold
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _base_model(self, train: Dataset, valid: Dataset | None, options: FitOptions
                    ) -> NCFRecommender:
        if self.base:
            model = Recommender.load(self.base)
            if model.dataset_fingerprint_ != train.fingerprint:
                raise ModelError(
                    f"{self.base}: the base model was trained on other data "
                    f"({model.dataset_name_!r}, fingerprint {model.dataset_fingerprint_}) than "
                    f"{train.name!r} ({train.fingerprint}); fine-tune on its own train data"
                )
        else:
            params = {**(self.base_params or {}), "seed": self.seed}
            key = (train.fingerprint, valid.fingerprint if valid is not None else None,
                   self.base_model, json.dumps(params, sort_keys=True, default=str))
            cached = _BASES.get(key)
            if cached is None:
                cached = create(self.base_model, **params).fit(train, valid, options)
                _BASES[key] = cached
                while len(_BASES) > BASE_CACHE_SIZE:
                    _BASES.popitem(last=False)
            _BASES.move_to_end(key)
            model = cached
        if not isinstance(model, NCFRecommender):
            raise ModelError(f"hybrid: the base model {model.name!r} is not a neural (NCF) "
                             "model; use neumf, gmf or mlp")
        return model

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        base = self._base_model(train, valid, options)
        self.base_config_ = np.array(json.dumps({"model": base.name,
                                                 "params": base.get_params()}))
        self.history_ = base.training_history()
        if int(self.epochs) == 0:  # the base model as it is: the "before" of a comparison
            self.weights_, self.rows_ = base.weights_, {}
            return
        rows, _ = genre_rows(train, self.content, embedder=self.embedder, ratio=int(self.ratio),
                             threshold=float(self.positive_threshold), seed=int(self.seed))
        net = copy.deepcopy(base.network())  # the NCF module's torch network, weights_ loaded
        self.history_.append(finetune_network(
            net, rows.get_column("user_idx").to_numpy(), rows.get_column("item_idx").to_numpy(),
            rows.get_column("interaction").to_numpy().astype(np.float32),
            epochs=int(self.epochs), lr=float(self.lr), batch_size=int(self.batch_size),
            weight_decay=float(self.weight_decay), seed=int(self.seed),
            num_threads=options.num_threads,
        ))
        y = rows.get_column("interaction").to_numpy()
        self.rows_ = {1: int((y == 1).sum()), 0: int((y == 0).sum())}
        self.weights_ = base.with_network(net).weights_

    # ------------------------------------------------------------------ the tuned network
    def _tuned(self) -> NCFRecommender:
        """The base model's class with the fine-tuned weights (built once per ``weights_``)."""
        self._check_fitted()
        cached = self.__dict__.get("_tuned_cache")
        if cached is not None and cached[0] is self.weights_:
            return cached[1]
        try:
            config = json.loads(str(self.base_config_))
            model = get_class(config["model"])(**without_run_options(config["params"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"hybrid: unreadable base model description ({e})") from e
        if not isinstance(model, NCFRecommender):
            raise ModelError(f"hybrid: the base model description names {model.name!r}, not a "
                             "neural (NCF) model")
        model.set_train_state(self.user_ids_, self.item_ids_, self.seen_, self.dataset_name_,
                              self.dataset_fingerprint_)
        model.weights_ = self.weights_
        self._tuned_cache = (self.weights_, model)
        return model

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"weights_": (None,), "base_config_": ()}

    def _validate_learned(self) -> None:
        super()._validate_learned()
        tuned = self._tuned()
        want = tuned.expected_shapes().get("weights_")
        if want and self.weights_.shape != want:
            raise ModelError(f"hybrid: weights_ has shape {self.weights_.shape}, the base "
                             f"model needs {want}")

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        return self._tuned().score_all(user_idx)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        return self._tuned().score(user_idx, item_idx)

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        return self._tuned().fold_in(item_idx, ratings)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        return self._tuned().score_folded(state)
