"""The genre-aware hybrid: a trained NCF model (NeuMF by default) with content knowledge added in
one of three forms (``form``), chosen on validation (README, "The genre-aware hybrid").

``fit(train)`` starts from the base model: the artifact ``base`` (trained on the same train data,
e.g. by ``movierec train configs/neumf-ml100k.yaml``; ``base_params`` then only change its
scoring settings such as ``fold_in_shrinkage``), or a ``base_model`` fitted here with
``base_params`` (the tuned recipes' params; ``base_recipe``: a train config whose model is used)
and this model's ``seed``, so a comparison over seeds pairs each hybrid with the NeuMF of the same
seed. Then:

* ``form="blend"`` (default): the network is kept as it is; at scoring time each item gets
  ``content_weight * c(n) * cos(profile, item vector)`` added to the NCF logit. ``content``
  picks the item vectors (``"genre"``: the movie x genre matrix; ``"text"``: description
  embeddings); the profile is the mean vector of the person's positive movies (rating ``>=
  positive_threshold``; every pick of a folded-in person given without ratings), and ``c(n) =
  content_decay / (content_decay + n)`` for someone with ``n`` movies (train interactions, or
  picks), or 1 with ``content_decay=0``: the term fades as the collaborative signal grows.
* ``form="finetune"`` (the sources' recipe): ``epochs`` passes of log loss over the genre-aware
  rows of :mod:`movierec.content.genre_training` (``ratio`` negatives per positive, from the
  user x genre tables over ``content`` vectors) with Adam at ``lr``, every weight trainable.
* ``form="joint"``: the same passes over those genre rows together with the interaction rows of
  train (each interaction against ``ratio`` sampled unrated movies), so the genre rows act as a
  second loss term rather than a stage that pulls the model away from the interactions.

``base_cache`` (a folder) keeps each base fitted here on disk and reuses it in later runs (a
comparison's 3 protocols x 3 seeds of NeuMF, fitted once across runs).

``epochs=0`` (fine-tuning forms) or ``content_weight=0`` (blend) keeps the base model's scores
(the "before" row of a comparison). The result scores, folds in (the base model's own fold-in,
plus the picks' content profile in the blend) and saves like any model; everything learned comes
from ``train`` only.
"""

from __future__ import annotations

import copy
import json
import time
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np

from movierec.content.tables import POSITIVE_THRESHOLD, unit_rows, user_embeddings
from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender, create, get_class, register
from movierec.models.ncf import NCFRecommender
from movierec.models.params import without_run_options
from movierec.options import FitOptions
from movierec.training.history import TrainingHistory

__all__ = ["HybridRecommender", "content_vectors", "finetune_network", "genre_rows",
           "interaction_rows"]

CONTENTS = ("genre", "text")
FORMS = ("blend", "finetune", "joint")

BASE_CACHE_SIZE = 6
"""Base models fitted here are kept (per process) by train data, base model, hyper-parameters
and seed, so a grid over the hybrid's settings, or a before / after pair in one comparison,
trains each base once. Fitting is deterministic for a seed, so a cached base is the model a new
fit would give."""

_BASES: OrderedDict[tuple, Recommender] = OrderedDict()

SCORING_ONLY = ("fold_in_method", "fold_in_shrinkage", "fold_in_steps")
"""A base's settings that leave its weights alone: a stored base (``base_cache``) that differs
only in these is used, with them set to the wanted values."""


def content_vectors(train: Dataset, content: str = "genre", embedder: Any = "minilm"
                    ) -> np.ndarray:
    """``float32 (n_items, d)``: the movie x genre matrix (``"genre"``) or the description
    embeddings (``"text"``, disk-cached; :func:`movierec.models.content.text_item_vectors`)."""
    from movierec.models.content import genre_item_vectors, text_item_vectors

    if content not in CONTENTS:
        raise ModelError(f"content must be one of {CONTENTS}, got {content!r}")
    vectors = (genre_item_vectors(train) if content == "genre"
               else text_item_vectors(train, embedder))
    return np.ascontiguousarray(vectors, dtype=np.float32)


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

    vectors = content_vectors(train, content, embedder)
    tables = build_genre_tables(train, vectors, threshold)
    return genre_training_set(train, tables, ratio=ratio, threshold=threshold, seed=seed), tables


def interaction_rows(train: Dataset, n_negatives: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user_idx, item_idx, target)``: every train interaction (target 1) and, per
    interaction, ``n_negatives`` movies drawn uniformly among the trained ones (target 0);
    draws that hit one of the user's own movies are dropped (one vectorised pass)."""
    seen = train.csr
    users = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(seen.indptr))
    items = seen.indices.astype(np.int64)
    rng = np.random.default_rng([seed, 7])
    trained = np.flatnonzero(train.item_counts > 0)
    neg_u = np.repeat(users, int(n_negatives))
    neg_i = trained[rng.integers(0, len(trained), len(neg_u))]
    own = np.asarray(seen[neg_u, neg_i]).ravel() != 0
    neg_u, neg_i = neg_u[~own], neg_i[~own]
    target = np.concatenate([np.ones(len(users), np.float32), np.zeros(len(neg_u), np.float32)])
    return np.concatenate([users, neg_u]), np.concatenate([items, neg_i]), target


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
    """NeuMF plus content knowledge: a fading content term at scoring time (``blend``), or the
    network fine-tuned on the genre-aware rows (``finetune``, ``joint``)."""

    name = "hybrid"
    learned: ClassVar[tuple[str, ...]] = ("weights_", "base_config_", "content_items_",
                                          "content_profiles_")
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, base: str | None = None, base_model: str = "neumf",
                 base_params: dict[str, Any] | None = None, base_recipe: str | None = None,
                 form: str = "blend", content: str = "genre", content_weight: float = 0.25,
                 content_decay: float = 0.0, embedder: str = "minilm", ratio: int = 3,
                 positive_threshold: float = POSITIVE_THRESHOLD, epochs: int = 3,
                 lr: float = 1e-4, batch_size: int = 2048, weight_decay: float = 0.0,
                 seed: int = 0, base_cache: str | None = None):
        self.base = base
        self.base_model = base_model
        self.base_params = base_params
        self.base_recipe = base_recipe
        self.form = form
        self.content = content
        self.content_weight = content_weight
        self.content_decay = content_decay
        self.embedder = embedder
        self.ratio = ratio
        self.positive_threshold = positive_threshold
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.base_cache = base_cache

    # ------------------------------------------------------------------ fitting
    def _base_spec(self) -> tuple[str, dict[str, Any]]:
        """(model name, hyper-parameters) of the base: ``base_recipe``'s model (its params under
        ``base_params``' overrides), else ``base_model`` with ``base_params``; seed: this
        model's."""
        name, params = self.base_model, dict(self.base_params or {})
        if self.base_recipe:
            from movierec.config import TrainConfig, load_config
            from movierec.errors import MovierecError

            try:
                recipe = load_config(self.base_recipe, TrainConfig)
            except (OSError, MovierecError) as e:
                raise ModelError(f"hybrid: base_recipe {self.base_recipe!r} unreadable ({e}); "
                                 "give a train config such as configs/neumf-ml100k.yaml") from e
            name, params = recipe.model.name, {**recipe.model.params, **params}
        return name, {**params, "seed": self.seed}

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
            name, params = self._base_spec()
            key = (train.fingerprint, valid.fingerprint if valid is not None else None,
                   name, json.dumps(params, sort_keys=True, default=str))
            cached = _BASES.get(key)
            if cached is None:
                cached = self._stored_base(name, params, train, valid, options)
                _BASES[key] = cached
                while len(_BASES) > BASE_CACHE_SIZE:
                    _BASES.popitem(last=False)
            _BASES.move_to_end(key)
            model = cached
        if not isinstance(model, NCFRecommender):
            raise ModelError(f"hybrid: the base model {model.name!r} is not a neural (NCF) "
                             "model; use neumf, gmf or mlp")
        if self.base and self.base_params:  # settings that keep the weights: the fold-in's
            model.set_params(**self.base_params)
        return model

    def _stored_base(self, name: str, params: dict[str, Any], train: Dataset,
                     valid: Dataset | None, options: FitOptions) -> Recommender:
        """The base fitted on ``train`` with ``params``: read from ``base_cache`` when a base of
        the same model, hyper-parameters and train data is stored there (fitting is
        deterministic for a seed, so it is the model a fit would give), else fitted and, with
        a ``base_cache`` and no ``valid``, stored there as ``<train>-<fingerprint>-s<seed>`` (the
        folders of ``benchmarks/hybrid_forms.py --base-dir``). A stored folder with other
        settings is left alone, and the base fitted afresh."""
        if not self.base_cache or valid is not None:
            return create(name, **params).fit(train, valid, options)
        from pathlib import Path

        path = (Path(self.base_cache)
                / f"{train.name.replace('/', '-')}-{train.fingerprint[:8]}-s{self.seed}")
        wanted = create(name, **params)
        if (path / "model.npz").exists():
            stored = Recommender.load(path)

            def weights_settings(model: Recommender) -> str:
                kept = {k: v for k, v in model.get_params().items() if k not in SCORING_ONLY}
                return json.dumps(kept, sort_keys=True, default=str)

            if (stored.name == name and stored.dataset_fingerprint_ == train.fingerprint
                    and weights_settings(stored) == weights_settings(wanted)):
                scoring = {k: v for k, v in wanted.get_params().items() if k in SCORING_ONLY}
                return stored.set_params(**scoring)
            return wanted.fit(train, valid, options)
        wanted.fit(train, valid, options)
        wanted.save(path)
        return wanted

    def _check_settings(self) -> None:
        if self.form not in FORMS:
            raise ModelError(f"hybrid: form must be one of {FORMS}, got {self.form!r}")
        if self.content not in CONTENTS:
            raise ModelError(f"content must be one of {CONTENTS}, got {self.content!r}")
        if self.content_decay < 0 or not np.isfinite(self.content_weight):
            raise ModelError("hybrid: content_decay must be >= 0 and content_weight finite, got "
                             f"{self.content_decay} and {self.content_weight}")

    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        self._check_settings()  # before the base model's minutes of training
        base = self._base_model(train, valid, options)
        self.base_config_ = np.array(json.dumps({"model": base.name,
                                                 "params": base.get_params()}))
        self.history_ = base.training_history()
        self.weights_, self.rows_ = base.weights_, {}
        if self.form == "blend":
            self.content_items_ = content_vectors(train, self.content, self.embedder)
            self.content_profiles_ = user_embeddings(train, self.content_items_,
                                                     float(self.positive_threshold))
            return
        self.content_items_ = np.zeros((self.n_items_, 0), np.float32)
        self.content_profiles_ = np.zeros((self.n_users_, 0), np.float32)
        if int(self.epochs) == 0:  # the base model as it is: the "before" of a comparison
            return
        rows, _ = genre_rows(train, self.content, embedder=self.embedder, ratio=int(self.ratio),
                             threshold=float(self.positive_threshold), seed=int(self.seed))
        u = rows.get_column("user_idx").to_numpy().astype(np.int64)
        i = rows.get_column("item_idx").to_numpy().astype(np.int64)
        y = rows.get_column("interaction").to_numpy().astype(np.float32)
        self.rows_ = {1: int((y == 1).sum()), 0: int((y == 0).sum())}
        if self.form == "joint":
            iu, ii, iy = interaction_rows(train, int(self.ratio), int(self.seed))
            u, i, y = np.concatenate([u, iu]), np.concatenate([i, ii]), np.concatenate([y, iy])
        net = copy.deepcopy(base.network())  # the NCF module's torch network, weights_ loaded
        self.history_.append(finetune_network(
            net, u, i, y, epochs=int(self.epochs), lr=float(self.lr),
            batch_size=int(self.batch_size), weight_decay=float(self.weight_decay),
            seed=int(self.seed), num_threads=options.num_threads,
        ))
        self.weights_ = base.with_network(net).weights_

    # ------------------------------------------------------------------ the tuned network
    def _tuned(self) -> NCFRecommender:
        """The base model's class with the (fine-tuned) weights, built once per ``weights_``."""
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
        return {"weights_": (None,), "base_config_": (), "content_items_": (self.n_items_, None),
                "content_profiles_": (self.n_users_, None)}

    def _validate_learned(self) -> None:
        super()._validate_learned()
        tuned = self._tuned()
        want = tuned.expected_shapes().get("weights_")
        if want and self.weights_.shape != want:
            raise ModelError(f"hybrid: weights_ has shape {self.weights_.shape}, the base "
                             f"model needs {want}")
        if self.content_items_.shape[1] != self.content_profiles_.shape[1]:
            raise ModelError("hybrid: content_items_ and content_profiles_ differ in width "
                             f"({self.content_items_.shape[1]} vs "
                             f"{self.content_profiles_.shape[1]})")

    # ------------------------------------------------------------------ the content term
    def _blending(self) -> bool:
        return self.content_items_.shape[1] > 0 and float(self.content_weight) != 0.0

    def _unit_items(self) -> np.ndarray:
        cached = self.__dict__.get("_unit_items_cache")
        if cached is None or cached[0] is not self.content_items_:
            cached = (self.content_items_, unit_rows(self.content_items_))
            self._unit_items_cache = cached
        return cached[1]

    def _term_weight(self, n: np.ndarray) -> np.ndarray:
        """``content_weight * decay / (decay + n)`` per person with ``n`` movies (no decay: the
        weight itself)."""
        n = np.asarray(n, dtype=np.float32)
        w, k = float(self.content_weight), float(self.content_decay)
        return np.full_like(n, w) if k == 0 else w * k / (k + n)

    def _user_terms(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(unit profiles, term weights) of train users ``u``."""
        counts = np.diff(self.seen_.indptr)[u]
        return unit_rows(self.content_profiles_[u]), self._term_weight(counts)

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        scores = self._tuned().score_all(user_idx)
        if not self._blending():
            return scores
        u = self._check_users(np.asarray(user_idx).ravel())
        prof, w = self._user_terms(u)
        return (scores + w[:, None] * (prof @ self._unit_items().T)).astype(np.float32)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        scores = self._tuned().score(user_idx, item_idx)
        if not self._blending():
            return scores
        u, i = self._check_pairs(user_idx, item_idx)
        prof, w = self._user_terms(u.ravel())
        term = w * np.einsum("nd,nd->n", prof, self._unit_items()[i.ravel()])
        return (scores + term.reshape(u.shape)).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self._tuned().item_vectors()

    def recommend(self, user_idx: int, k: int = 10, exclude_seen: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Without a content term, the base model's own (short-listed) ranking; with one, every
        item is scored."""
        if not self._blending():
            return self._tuned().recommend(user_idx, k, exclude_seen)
        return super().recommend(user_idx, k, exclude_seen)

    def recommend_folded(self, state: np.ndarray, k: int = 10, exclude: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        if not self._blending():
            return self._tuned().recommend_folded(state, k, exclude)
        return super().recommend_folded(state, k, exclude)

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """The base model's fold-in state, then (blend) the picks' content profile (the picks
        rated ``>= positive_threshold`` when ratings say so, else every pick) and the number
        of picks: ``float32 (base width + d + 1,)``."""
        state = self._tuned().fold_in(item_idx, ratings)
        if not self._blending():
            return state
        items, r = self._picks(item_idx, ratings)
        if ratings is not None and (r >= self.positive_threshold).any():
            liked = items[r >= self.positive_threshold]
        else:
            liked = items
        profile = self.content_items_[liked].mean(axis=0)
        return np.concatenate([state, profile, [len(items)]]).astype(np.float32)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32).ravel()
        if not self._blending():
            return self._tuned().score_folded(state)
        d = self.content_items_.shape[1]
        if state.size <= d + 1:
            raise ModelError(f"hybrid.score_folded: expected the state fold_in returns (base "
                             f"state, {d} content values, pick count), got shape {state.shape}")
        scores = self._tuned().score_folded(state[: -d - 1])
        profile = unit_rows(state[-d - 1 : -1][None])[0]
        w = float(self._term_weight(state[-1:])[0])
        return (scores + w * (self._unit_items() @ profile)).astype(np.float32)

