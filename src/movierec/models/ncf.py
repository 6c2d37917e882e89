"""Neural collaborative filtering as Recommenders: ``gmf``, ``mlp`` and ``neumf``.

The networks (:mod:`movierec.training.networks`) are trained with log loss on the observed
interactions and ``n_negatives`` freshly sampled unobserved items per interaction and epoch
(:mod:`movierec.data.labels` for the label modes), by the plain loop of
:mod:`movierec.training.loop` (``trainer="torch"``, default) or by Lightning
(``trainer="lightning"``, with ``strategy="ddp"`` for several processes).

Model selection never looks at the test item. ``fit(train, valid)`` early-stops on ``valid``
(HR@10 of each validation item against 99 sampled unrated items) and keeps the best epoch's
weights. ``fit(train)`` alone trains ``epochs`` epochs, or, with ``holdout=True``, holds out each
user's last train interaction as validation for early stopping.

Hyper-parameters (the same names in every model where they apply):

* sizes: ``factors`` (GMF embedding), ``mlp_factors`` (MLP embedding), ``layers`` (MLP tower
  widths after the concatenated ``2 * mlp_factors`` input; default ``[64, 32, 16, 8]``; see
  :func:`~movierec.training.networks.halving_tower`), ``dropout`` (after each tower layer),
  ``item_bias`` (a learned bias per item), ``user_history`` (user vectors gain the pooled
  embeddings of their train items, SVD++-style), ``init_std``;
* optimisation: ``optimizer`` (``adam``, ``adamw``, ``sgd``), ``fused_optimizer`` (torch's
  fused Adam/AdamW kernel: the same algorithm, ~5x faster steps on CPU, results differ in the
  last float bits from the default ``foreach`` kernel the shipped recipes were measured with),
  ``lr``, ``lr_decay`` (per epoch),
  ``weight_decay`` (optimiser), ``l2`` (on the embedding rows each batch uses), ``batch_size``
  (samples), ``epochs``, ``patience`` (epochs without a better validation HR@10),
  ``precision`` (``"32"`` or ``"bf16-mixed"``), ``num_threads``, ``device``, ``seed``;
* labels: ``n_negatives`` per interaction, ``negative_exponent`` (0: uniform negatives; ``b``
  draws item ``i`` in proportion to ``(1 + n_i) ** b``), ``label_mode`` (``binary``, ``hard``,
  ``soft``) with ``hard_positive`` / ``soft_positive`` / ``soft_negative`` thresholds,
  ``recency_boost`` / ``recency_half_life`` (a user's ``k``-th latest interaction weighs
  ``1 + boost * 0.5 ** (k / half_life)`` in the loss);
* ``diversity_alpha`` / ``diversity_temperature``: the genre-diversity regulariser
  (:func:`~movierec.training.losses.diversity_penalty`);
* running: ``trainer`` (``torch`` or ``lightning``), ``strategy`` / ``devices`` (Lightning,
  e.g. ``ddp`` and 2), ``progress`` (bars), ``log_dir`` (per-epoch logs and Lightning
  checkpoints go there), ``logger`` (``csv``, or ``tensorboard`` for event files as well),
  ``holdout``, ``fold_in_steps``;
* NeuMF only: ``pretrain``, ``pretrain_gmf`` / ``pretrain_mlp`` (artifact folders),
  ``pretrain_epochs``, ``pretrain_lr``, ``alpha``.

Scores are logits (higher is better). The learned state is one flat ``float32`` vector
``weights_`` (the network's parameters in ``state_dict`` order), stored in the artifact's
``model.npz``; the network is rebuilt from the hyper-parameters on first use after loading.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender, register

__all__ = ["GMFRecommender", "MLPRecommender", "NeuMFRecommender"]

PAIRS_PER_BLOCK = 1 << 18
"""Most (user, item) pairs one scoring call pushes through the network at once."""

_COMMON = (
    "dropout", "lr", "lr_decay", "optimizer", "fused_optimizer", "weight_decay", "l2",
    "batch_size", "epochs",
    "n_negatives", "label_mode", "hard_positive", "soft_positive", "soft_negative", "patience",
    "holdout", "seed", "num_threads", "device", "precision", "progress", "log_dir", "logger",
    "trainer",
    "strategy", "devices", "diversity_alpha", "diversity_temperature", "fold_in_steps",
    "init_std", "item_bias", "negative_exponent", "user_history", "recency_boost",
    "recency_half_life",
)
"""Hyper-parameters every NCF model has (GMF has no ``dropout``), documented in the module."""


class _NCF(Recommender):
    """Shared fitting, scoring, fold-in and persistence of the three NCF models."""

    learned: ClassVar[tuple[str, ...]] = ("weights_",)
    smoke_params: ClassVar[dict[str, Any]] = {"epochs": 30, "batch_size": 1024, "lr": 0.01,
                                              "num_threads": 1}
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    # ------------------------------------------------------------------ network
    def _make_net(self, n_users: int, n_items: int):
        raise NotImplementedError

    def network(self):
        """The trained ``torch.nn.Module`` (eval mode) holding ``weights_``, built once and cached.

        Callers that change it (the hybrid's fine-tuning) work on a ``copy.deepcopy`` and hand
        the result back with :meth:`with_network`.
        """
        self._check_fitted()
        cached = getattr(self, "_net_cache", None)
        if cached is not None and cached[0] is self.weights_:
            return cached[1]
        import torch

        from movierec.training.networks import set_interactions

        net = self._make_net(self.n_users_, self.n_items_)
        _unflatten_into(net, torch.from_numpy(np.ascontiguousarray(self.weights_)))
        set_interactions(net, self.seen_.indptr, self.seen_.indices)
        net.eval()
        self._net_cache = (self.weights_, net)
        return net

    def with_network(self, net) -> _NCF:
        """A fitted copy of this model (same hyper-parameters, users and items) whose weights are
        those of ``net``, a network of this model's shape (e.g. a fine-tuned ``network()``)."""
        self._check_fitted()
        model = self.clone()
        model.set_train_state(self.user_ids_, self.item_ids_, self.seen_, self.dataset_name_,
                         self.dataset_fingerprint_)
        model.weights_ = _flatten(net)
        model._validate_learned()
        return model

    def item_vectors(self) -> np.ndarray:
        """The item embedding tables side by side (GMF then MLP for NeuMF), each row-normalised
        so that both paths weigh the same in a cosine: ``float32 (n_items, d)``."""
        tables = [t.detach().float().numpy() for t in self.network().item_tables()]
        return np.hstack([_unit_rows(t) for t in tables]).astype(np.float32)

    def _n_weights(self) -> int:
        import torch

        with torch.device("meta"):
            net = self._make_net(self.n_users_, self.n_items_)
        return sum(int(t.numel()) for t in net.state_dict().values())

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"weights_": (self._n_weights(),)}

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        from movierec.training.fit import fit_network

        net, history = fit_network(self, train, valid)
        self.history_ = history
        self.weights_ = _flatten(net)
        self._net_cache = None  # rebuilt on first use, with every train interaction as history

    def save(self, path):
        """Write the artifact (see :meth:`Recommender.save`). Under DDP every process holds the
        same weights and only rank 0 writes; the others return ``path`` without writing."""
        from pathlib import Path

        if getattr(self, "history_", {}).get("rank", 0) != 0:
            return Path(path)
        return super().save(path)

    # ------------------------------------------------------------------ scoring
    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel())
        return self._grid(lambda net, torch, rows: net.user_vectors(torch.from_numpy(rows)),
                          u.astype(np.int64))

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        width = self._user_width()
        if state.shape != (width,):
            raise ModelError(f"{type(self).__name__}.score_folded: expected the user vector of "
                             f"shape ({width},) that fold_in returns, got {state.shape}")
        return self._grid(lambda net, torch, rows: torch.from_numpy(rows), state[None])[0]

    def _grid(self, vectors_of, rows: np.ndarray) -> np.ndarray:
        """Scores of every item for ``rows`` (user indices or user vectors), in blocks."""
        import torch

        net = self.network()
        out = np.empty((len(rows), self.n_items_), dtype=np.float32)
        items = torch.arange(self.n_items_)
        per_block = max(1, PAIRS_PER_BLOCK // max(1, self.n_items_))
        with torch.no_grad():
            for s in range(0, len(rows), per_block):
                vecs = vectors_of(net, torch, rows[s : s + per_block])
                out[s : s + per_block] = net.score_grid(vecs, items).float().numpy()
        return out

    def _user_width(self) -> int:
        return int(self.network().user_vectors(_zero_index()).shape[1])

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """A ``float32`` user vector for someone not in train: ``fold_in_steps`` Adam steps on a
        fresh user embedding (item side frozen), log loss on the picks (targets by
        ``label_mode``) against sampled unpicked items. Deterministic for the same picks."""
        items, r = self._picks(item_idx, ratings)
        if len(items) == 0:
            raise ModelError("fold_in: give at least one item")
        from movierec.training.fit import fold_in_vector

        return fold_in_vector(self, self.network(), items, r)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def _zero_index():
    import torch

    return torch.zeros(1, dtype=torch.int64)


def _flatten(net) -> np.ndarray:
    import torch

    with torch.no_grad():
        parts = [t.detach().float().cpu().reshape(-1) for t in net.state_dict().values()]
        return torch.cat(parts).numpy().astype(np.float32, copy=False)


def _unflatten_into(net, flat) -> None:
    import torch

    state = net.state_dict()
    total = sum(int(t.numel()) for t in state.values())
    if flat.numel() != total:
        raise ModelError(f"weights_ holds {flat.numel()} numbers but the network needs {total}")
    new, pos = {}, 0
    for key, t in state.items():
        new[key] = flat[pos : pos + t.numel()].view(t.shape).clone()
        pos += t.numel()
    with torch.no_grad():
        net.load_state_dict(new)


@register
class GMFRecommender(_NCF):
    """Generalised matrix factorisation (NCF paper, section 3.2), ``factors``-dim embeddings."""

    name = "gmf"

    def __init__(self, factors: int = 32, lr: float = 1e-3, lr_decay: float = 1.0,
                 optimizer: str = "adam", fused_optimizer: bool = False, weight_decay: float = 0.0,
                 l2: float = 0.0,
                 batch_size: int = 8192, epochs: int = 20, n_negatives: int = 4,
                 label_mode: str = "binary", hard_positive: float = 4.0,
                 soft_positive: float = 3.0, soft_negative: float = 2.0,
                 patience: int | None = 3, holdout: bool = False, seed: int = 0,
                 num_threads: int | None = None, device: str = "auto", precision: str = "32",
                 progress: bool = False, log_dir: str | None = None, logger: str = "csv",
                 trainer: str = "torch",
                 strategy: str = "auto", devices: int = 1, diversity_alpha: float = 0.0,
                 diversity_temperature: float = 1.0, fold_in_steps: int = 100,
                 init_std: float = 0.01, item_bias: bool = False,
                 negative_exponent: float = 0.0, user_history: bool = False,
                 recency_boost: float = 0.0, recency_half_life: float = 10.0):
        self.factors = factors
        _store(self, locals())

    def _make_net(self, n_users: int, n_items: int):
        from movierec.training.networks import GMF

        return GMF(n_users, n_items, self.factors, self.init_std, self.item_bias,
                   self.user_history)


@register
class MLPRecommender(_NCF):
    """The NCF paper's MLP: concatenated ``mlp_factors``-dim embeddings, tower ``layers``."""

    name = "mlp"

    def __init__(self, mlp_factors: int = 32, layers: list[int] | None = None,
                 dropout: float = 0.0, lr: float = 1e-3, lr_decay: float = 1.0,
                 optimizer: str = "adam", fused_optimizer: bool = False, weight_decay: float = 0.0,
                 l2: float = 0.0,
                 batch_size: int = 8192, epochs: int = 20, n_negatives: int = 4,
                 label_mode: str = "binary", hard_positive: float = 4.0,
                 soft_positive: float = 3.0, soft_negative: float = 2.0,
                 patience: int | None = 3, holdout: bool = False, seed: int = 0,
                 num_threads: int | None = None, device: str = "auto", precision: str = "32",
                 progress: bool = False, log_dir: str | None = None, logger: str = "csv",
                 trainer: str = "torch",
                 strategy: str = "auto", devices: int = 1, diversity_alpha: float = 0.0,
                 diversity_temperature: float = 1.0, fold_in_steps: int = 100,
                 init_std: float = 0.01, item_bias: bool = False,
                 negative_exponent: float = 0.0, user_history: bool = False,
                 recency_boost: float = 0.0, recency_half_life: float = 10.0):
        self.mlp_factors = mlp_factors
        self.layers = layers
        _store(self, locals())

    def _tower(self) -> list[int]:
        return list(self.layers) if self.layers else [64, 32, 16, 8]

    def _make_net(self, n_users: int, n_items: int):
        from movierec.training.networks import MLP

        return MLP(n_users, n_items, self.mlp_factors, self._tower(), self.dropout,
                   self.init_std, self.item_bias, self.user_history)


@register
class NeuMFRecommender(_NCF):
    """NeuMF: GMF and MLP paths fused by one output layer (NCF paper, section 3.4).

    ``pretrain=True`` first fits a GMF and an MLP of the same sizes with ``pretrain_lr``
    (``pretrain_epochs``: one count for both or ``[gmf, mlp]``; default ``epochs``), or loads the
    artifacts ``pretrain_gmf`` / ``pretrain_mlp``, then initialises NeuMF from them with the
    trade-off ``alpha`` and trains it ``epochs`` more epochs with ``lr``.
    """

    name = "neumf"

    def __init__(self, factors: int = 32, mlp_factors: int = 32, layers: list[int] | None = None,
                 dropout: float = 0.0, lr: float = 1e-3, lr_decay: float = 1.0,
                 optimizer: str = "adam", fused_optimizer: bool = False, weight_decay: float = 0.0,
                 l2: float = 0.0,
                 batch_size: int = 8192, epochs: int = 20, n_negatives: int = 4,
                 label_mode: str = "binary", hard_positive: float = 4.0,
                 soft_positive: float = 3.0, soft_negative: float = 2.0,
                 patience: int | None = 3, holdout: bool = False, seed: int = 0,
                 num_threads: int | None = None, device: str = "auto", precision: str = "32",
                 progress: bool = False, log_dir: str | None = None, logger: str = "csv",
                 trainer: str = "torch",
                 strategy: str = "auto", devices: int = 1, diversity_alpha: float = 0.0,
                 diversity_temperature: float = 1.0, fold_in_steps: int = 100,
                 init_std: float = 0.01, item_bias: bool = False,
                 negative_exponent: float = 0.0, user_history: bool = False,
                 recency_boost: float = 0.0, recency_half_life: float = 10.0,
                 pretrain: bool = False,
                 pretrain_gmf: str | None = None, pretrain_mlp: str | None = None,
                 pretrain_epochs: int | list[int] | None = None, pretrain_lr: float | None = None,
                 alpha: float = 0.5):
        self.factors = factors
        self.mlp_factors = mlp_factors
        self.layers = layers
        _store(self, locals())
        self.pretrain = pretrain
        self.pretrain_gmf = pretrain_gmf
        self.pretrain_mlp = pretrain_mlp
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.alpha = alpha

    def _tower(self) -> list[int]:
        return list(self.layers) if self.layers else [64, 32, 16, 8]

    def _make_net(self, n_users: int, n_items: int):
        from movierec.training.networks import NeuMF

        return NeuMF(n_users, n_items, self.factors, self.mlp_factors, self._tower(),
                     self.dropout, self.init_std, self.item_bias, self.user_history)


def _store(model: _NCF, values: dict[str, Any]) -> None:
    """Store the common hyper-parameters (sklearn contract: under their own names, unchanged)."""
    for key in _COMMON:
        if key in values:
            setattr(model, key, values[key])
