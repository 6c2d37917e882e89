"""Neural collaborative filtering as Recommenders: ``gmf``, ``mlp`` and ``neumf``.

The networks (:mod:`movierec.training.networks`) are trained with log loss on the observed
interactions and ``n_negatives`` freshly sampled unobserved items per interaction and epoch
(:mod:`movierec.data.labels` for the label modes), by the plain loop of
:mod:`movierec.training.loop` (run option ``trainer: torch``, default) or by Lightning
(``trainer: lightning``, with ``strategy: ddp`` for several processes).

Model selection never looks at the test item. ``fit(train, valid)`` early-stops on ``valid``
(HR@10 of each validation item against 99 sampled unrated items) and keeps the best epoch's
weights. ``fit(train)`` alone trains ``epochs`` epochs, or, with ``holdout=True``, holds out each
user's last train interaction as validation for early stopping.

Hyper-parameters are typed and documented once, in :mod:`movierec.models.ncf_params`
(:class:`~movierec.models.ncf_params.NCFParams` and one subclass per model); how a fit runs
(threads, device, progress, logs, Lightning and DDP) is :class:`~movierec.options.FitOptions`.

Scores are logits (higher is better). The learned state is one flat ``float32`` vector
``weights_`` (the network's parameters in ``state_dict`` order), stored in the artifact's
``model.npz``; the network is rebuilt from the hyper-parameters on first use after loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender, register, top_k
from movierec.models.ncf_params import (
    PRETRAIN_EXCLUDED,
    GMFParams,
    MLPParams,
    NCFParams,
    NeuMFParams,
)
from movierec.options import FitOptions

__all__ = ["GMFRecommender", "MLPRecommender", "NCFRecommender", "NeuMFRecommender"]

PAIRS_PER_BLOCK = 1 << 18
"""Most (user, item) pairs one scoring call pushes through the network at once."""
PAIR_ROWS_PER_BLOCK = 1 << 16
"""Pairs of :meth:`NCFRecommender.score` per network call (~32 MB a 128-wide layer)."""
RECOMMEND_CANDIDATES = 1000
"""NeuMF's :meth:`~NCFRecommender.recommend_folded` scores exactly only the items a cheap proxy
ranks this high (the GMF path in full plus the MLP path at the mean user): on ml-latest-small's
held-out P4 users the top 10 was identical to full scoring for 122 of 122 users at 1, 5 and 10
picks (300 candidates: 121, 121, 119), at a tenth of the cost. A trained user's vector is
further from the mean user: :meth:`~NCFRecommender.recommend` takes twice as many, and the top
10 was identical for 607 of the quickstart NeuMF's 610 users (1,000: 600; 3,000: 609; the
overlap of the ten 99.95%)."""

class NCFRecommender(Recommender):
    """Shared fitting, scoring, fold-in and persistence of the three NCF models."""

    Params: ClassVar[type[NCFParams]]
    learned: ClassVar[tuple[str, ...]] = ("weights_",)
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    def typed_params(self) -> NCFParams:
        return cast("NCFParams", super().typed_params())

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

        from movierec.training.flat import load_flat
        from movierec.training.networks import set_interactions, set_score_dtype

        net = self._make_net(self.n_users_, self.n_items_)
        load_flat(net, self.weights_)
        set_interactions(net, self.seen_.indptr, self.seen_.indices)
        if self.typed_params().precision in ("bf16", "bf16-mixed"):
            set_score_dtype(net, torch.bfloat16)  # full ranking's layers; scores stay float32
        net.eval()
        self._net_cache = (self.weights_, net)
        return net

    def with_network(self, net) -> NCFRecommender:
        """A fitted copy of this model (same hyper-parameters, users and items) whose weights are
        those of ``net``, a network of this model's shape (e.g. a fine-tuned ``network()``)."""
        self._check_fitted()
        model = self.clone()
        model.set_train_state(self.user_ids_, self.item_ids_, self.seen_, self.dataset_name_,
                         self.dataset_fingerprint_)
        from movierec.training.flat import flat_weights

        model.weights_ = flat_weights(net)
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
    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        from movierec.training.fit import fit_network

        params = self.typed_params()
        self.history_ = []
        net, history, stats = fit_network(
            params, options, lambda: self._make_net(train.n_users, train.n_items), train, valid,
            self.name, prepare=lambda net: self._prepare(net, train, valid, options))
        self.history_.append(history)
        self.run_stats_ = stats  # this process's steps, and its rank under DDP
        from movierec.training.flat import flat_weights

        self.weights_ = flat_weights(net)
        self._net_cache = None  # rebuilt on first use, with every train interaction as history

    def _prepare(self, net, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        """Runs on the fresh network before training (NeuMF's pre-training)."""

    def save(self, path):
        """Write the artifact (see :meth:`Recommender.save`). Under DDP every process holds the
        same weights and only rank 0 writes; the others return ``path`` without writing."""
        stats = getattr(self, "run_stats_", None)  # a loaded model was written by rank 0
        if stats is not None and stats.rank != 0:
            return Path(path)
        return super().save(path)

    # ------------------------------------------------------------------ scoring
    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel())
        return self._grid(lambda net, torch, rows: net.user_vectors(torch.from_numpy(rows)),
                          u.astype(np.int64))

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Like :meth:`Recommender.score`, through the network pair by pair: P1's 100
        candidates per user cost 100 network rows, not the whole catalogue (``score_all``).
        The layers run in float32 here, also for ``bf16`` models, whose ``score_all`` runs them
        in bfloat16 (then the two agree to bfloat16's rounding, about 3 digits)."""
        import torch

        u, i = self._check_pairs(user_idx, item_idx)
        users, rows = np.unique(u.ravel(), return_inverse=True)
        items = i.ravel().astype(np.int64)
        out = np.empty(items.size, dtype=np.float32)
        net = self.network()
        with torch.no_grad():
            vectors = net.user_vectors(torch.from_numpy(users.astype(np.int64)))
            for s in range(0, items.size, PAIR_ROWS_PER_BLOCK):
                block = slice(s, s + PAIR_ROWS_PER_BLOCK)
                out[block] = net.score_pairs(vectors[torch.from_numpy(rows[block])],
                                             torch.from_numpy(items[block])).float().numpy()
        return out.reshape(u.shape)

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        width = self._user_width()
        if state.shape != (width,):
            raise ModelError(f"{type(self).__name__}.score_folded: expected the user vector of "
                             f"shape ({width},) that fold_in returns, got {state.shape}")
        return self._grid(lambda net, torch, rows: torch.from_numpy(rows), state[None])[0]

    def _grid(self, vectors_of, rows: np.ndarray) -> np.ndarray:
        """Scores of every item for ``rows`` (user indices or user vectors), in blocks.

        With torch allowed several threads and enough rows, the blocks are shared among that
        many Python threads that each run torch on one thread: the grid's products are too small
        for torch's own threads (2 threads: 1.15x faster for 1.5x the CPU at ML-20M's shape),
        while whole blocks side by side keep every core busy."""
        import torch

        from movierec.training.networks import GRID_USERS

        net = self.network()
        out = np.empty((len(rows), self.n_items_), dtype=np.float32)
        items = torch.arange(self.n_items_)
        per_block = max(1, PAIRS_PER_BLOCK // max(1, self.n_items_))
        per_block = max(GRID_USERS, per_block - per_block % GRID_USERS)

        def score(lo: int, hi: int) -> None:
            with torch.no_grad():  # per thread
                for s in range(lo, hi, per_block):
                    e = min(s + per_block, hi)
                    vecs = vectors_of(net, torch, rows[s:e])
                    out[s:e] = net.score_grid(vecs, items).float().numpy()

        threads = torch.get_num_threads()
        if threads < 2 or len(rows) < 2 * GRID_USERS:
            score(0, len(rows))
            return out
        # contiguous shares in whole GRID_USERS blocks: a P2 call at ML-32M's 87,585 items
        # holds only ~47 users
        parts = min(threads, len(rows) // GRID_USERS)
        edges = np.linspace(0, len(rows), parts + 1).astype(int)
        edges[1:-1] -= edges[1:-1] % GRID_USERS
        from concurrent.futures import ThreadPoolExecutor

        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(parts, thread_name_prefix="ncf-grid") as pool:
                list(pool.map(score, edges[:-1], edges[1:]))
        finally:
            torch.set_num_threads(threads)
        return out

    def _user_width(self) -> int:
        return int(self.network().user_vectors(_zero_index()).shape[1])

    def recommend(
        self, user_idx: int, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`Recommender.recommend`, from the user's vector through
        :meth:`recommend_folded` (NeuMF: a short list scored exactly)."""
        import torch

        u = int(self._check_users(np.asarray([user_idx]))[0])
        with torch.no_grad():
            vector = self.network().user_vectors(torch.tensor([u]))[0].float().numpy()
        seen = self.seen_.indices[self.seen_.indptr[u]: self.seen_.indptr[u + 1]]
        return self._recommend_short_list(vector, k, seen if exclude_seen else None,
                                          2 * RECOMMEND_CANDIDATES)

    def recommend_folded(
        self, state: np.ndarray, k: int = 10, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`Recommender.recommend_folded`; for NeuMF on a large catalogue, only the
        :data:`RECOMMEND_CANDIDATES` best items by a proxy are scored exactly (see there)."""
        return self._recommend_short_list(state, k, exclude, RECOMMEND_CANDIDATES)

    def _recommend_short_list(self, state: np.ndarray, k: int, exclude: np.ndarray | None,
                              candidates: int) -> tuple[np.ndarray, np.ndarray]:
        net = self.network()
        if not hasattr(net, "gmf") or self.n_items_ <= 2 * candidates or k > candidates // 10:
            return super().recommend_folded(state, k, exclude)
        import torch

        state = np.asarray(state, dtype=np.float32)
        gmf_items, fixed = self._proxy_parts()  # fixed is -inf at items never trained on
        proxy = gmf_items @ state[: gmf_items.shape[1]] + fixed
        if exclude is not None and len(exclude):
            proxy[self._check_items(np.asarray(exclude))] = -np.inf
        cand = np.argpartition(proxy, -candidates)[-candidates:]
        cand = np.sort(cand[proxy[cand] > -np.inf]).astype(np.int64)
        with torch.no_grad():
            exact = net.score_grid(torch.from_numpy(state[None]), torch.from_numpy(cand))[0]
        items, scores = top_k(exact.float().numpy(), k)
        return cand[items].astype(np.int32), scores

    def _proxy_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """NeuMF's proxy scores as ``gmf_items @ p + fixed``: ``gmf_items`` ``(n_items, f)`` are
        the GMF item embeddings times the output weights, ``fixed`` ``(n_items,)`` the MLP path's
        scores at the mean trained user plus the biases, ``-inf`` at items no train user had
        (never recommended); cached per weights."""
        cached = getattr(self, "_proxy_cache", None)
        if cached is not None and cached[0] is self.weights_:
            return cached[1]
        import torch

        net = self.network()
        f = net.factors
        mean_mlp = self._pooled_fold_in().mean_user[f:].astype(np.float32)
        items = torch.arange(self.n_items_)
        with torch.no_grad():
            w = net.out.weight[0]
            gmf_items = (net.gmf.item.weight * w[:f]).float().numpy()
            fixed = net.mlp._grid(torch.from_numpy(mean_mlp[None]), items, w[f:])[0]
            fixed = (fixed + net.out.bias + net._bias(items)).float().numpy()
        fixed = np.where(self.item_counts_ > 0, fixed, -np.inf).astype(np.float32)
        self._proxy_cache = (self.weights_, (gmf_items, fixed))
        return self._proxy_cache[1]

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """A ``float32`` user vector for someone not in train (no retraining).

        ``fold_in_method="pooled"`` (default): the trained users' map from items to user vectors
        applied to the picks, shrunk towards the mean user (:mod:`movierec.models.ncf_fold_in`);
        with ``ratings`` and a ``hard`` / ``soft`` label mode only the positive picks count.
        ``"adam"``: ``fold_in_steps`` Adam steps on a fresh user vector (item side frozen), log
        loss on the picks against sampled unpicked items. Deterministic for the same picks."""
        items, r = self._picks(item_idx, ratings)
        if len(items) == 0:
            raise ModelError("fold_in: give at least one item")
        params = self.typed_params()
        if params.fold_in_method == "adam":
            from movierec.training.fit import fold_in_vector

            return fold_in_vector(params, self.network(), self.n_items_, items, r)
        if ratings is not None and params.label_mode != "binary":
            from movierec.data.labels import observed_targets
            from movierec.training.fit import thresholds_of

            positive = observed_targets(r, params.label_mode, thresholds_of(params)) >= 0.5
            items = items[positive] if positive.any() else items
        return self._pooled_fold_in().vector(items, params.fold_in_shrinkage)

    def _pooled_fold_in(self):
        """The fold-in map of the current weights (fitted once, a few ms, then cached)."""
        cached = getattr(self, "_fold_in_cache", None)
        if cached is not None and cached[0] is self.weights_:
            return cached[1]
        import torch

        from movierec.models.ncf_fold_in import PooledFoldIn

        net = self.network()
        with torch.no_grad():
            users = net.user_vectors(torch.arange(self.n_users_)).float().numpy()
            items = np.hstack([t.detach().float().numpy() for t in net.item_tables()])
        fold = PooledFoldIn(users, items, self.seen_)
        self._fold_in_cache = (self.weights_, fold)
        return fold


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def _zero_index():
    import torch

    return torch.zeros(1, dtype=torch.int64)


@register
class GMFRecommender(NCFRecommender):
    """Generalised matrix factorisation (NCF paper, section 3.2), ``factors``-dim embeddings."""

    name = "gmf"
    Params = GMFParams

    def typed_params(self) -> GMFParams:
        return cast("GMFParams", super().typed_params())

    def _make_net(self, n_users: int, n_items: int):
        from movierec.training.networks import GMF

        p = self.typed_params()
        return GMF(n_users, n_items, p.factors, p.init_std, p.item_bias, p.user_history)


@register
class MLPRecommender(NCFRecommender):
    """The NCF paper's MLP: concatenated ``mlp_factors``-dim embeddings, tower ``layers``."""

    name = "mlp"
    Params = MLPParams

    def typed_params(self) -> MLPParams:
        return cast("MLPParams", super().typed_params())

    def _make_net(self, n_users: int, n_items: int):
        from movierec.training.networks import MLP

        p = self.typed_params()
        return MLP(n_users, n_items, p.mlp_factors, _tower(p.layers), p.dropout, p.init_std,
                   p.item_bias, p.user_history)


@register
class NeuMFRecommender(NCFRecommender):
    """NeuMF: GMF and MLP paths fused by one output layer (NCF paper, section 3.4).

    ``pretrain=True`` first fits a GMF and an MLP of the same sizes with ``pretrain_lr``
    (``pretrain_epochs``: one count for both or ``[gmf, mlp]``; default ``epochs``), or loads the
    artifacts ``pretrain_gmf`` / ``pretrain_mlp``, then initialises NeuMF from them with the
    trade-off ``alpha`` and trains it ``epochs`` more epochs with ``lr``.
    """

    name = "neumf"
    Params = NeuMFParams

    def typed_params(self) -> NeuMFParams:
        return cast("NeuMFParams", super().typed_params())

    def _make_net(self, n_users: int, n_items: int):
        from movierec.training.networks import NeuMF

        p = self.typed_params()
        return NeuMF(n_users, n_items, p.factors, p.mlp_factors, _tower(p.layers), p.dropout,
                     p.init_std, p.item_bias, p.user_history)

    def _prepare(self, net, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        """NeuMF pre-training: GMF and MLP from artifacts or fitted here, copied into ``net``."""
        p = self.typed_params()
        if not p.pretrain:
            return
        from movierec.training.networks import init_neumf_from

        shared = {k: v for k, v in self.get_params().items()
                  if k in NCFParams.model_fields and k not in PRETRAIN_EXCLUDED}
        gmf_epochs = mlp_epochs = p.epochs
        if p.pretrain_epochs is not None:
            pe = p.pretrain_epochs
            gmf_epochs, mlp_epochs = (pe, pe) if isinstance(pe, int) else (pe[0], pe[1])
        if p.pretrain_lr is not None:
            shared["lr"] = p.pretrain_lr
        parts: list[NCFRecommender] = []
        for cls, artifact, own, epochs in (
                (GMFRecommender, p.pretrain_gmf, {"factors": p.factors}, gmf_epochs),
                (MLPRecommender, p.pretrain_mlp, {"mlp_factors": p.mlp_factors,
                                                  "layers": p.layers,
                                                  "dropout": p.dropout}, mlp_epochs)):
            if artifact:
                part = Recommender.load(artifact)
                if not isinstance(part, cls):
                    raise ModelError(f"neumf pre-training: {artifact} holds a {part.name}, "
                                     f"not a {cls.name}")
            else:
                # the parts train with the plain loop, logging beside NeuMF (log_dir/gmf, /mlp)
                sub = options.log_dir and str(Path(options.log_dir) / cls.name)
                part_options = options.model_copy(update={"trainer": "torch", "log_dir": sub})
                part = cls(**own, **{**shared, "epochs": epochs}).fit(train, valid, part_options)
                self.history_ += [h for h in part.training_history()]
            parts.append(part)
        for h in self.history_:
            h.name = f"{h.name} pre-training"
        try:
            init_neumf_from(net, parts[0].network(), parts[1].network(), float(p.alpha))
        except RuntimeError as e:
            raise ModelError(f"neumf pre-training: the GMF / MLP sizes do not match NeuMF's "
                             f"({e})") from e


def _tower(layers: list[int] | None) -> list[int]:
    return list(layers) if layers else [64, 32, 16, 8]
