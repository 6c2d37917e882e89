"""LightGCN (He, Deng, Wang, Li, Zhang & Wang, SIGIR 2020): embeddings smoothed over the
user-item graph, trained with BPR.

The graph is the bipartite train graph, ``A = [[0, R], [R', 0]]`` with ``R`` the binary
``n_users x n_items`` train matrix, normalised symmetrically: ``Â = D^-1/2 A D^-1/2`` (``D`` the
degrees; a node without edges keeps a zero row). With ego embeddings ``E0`` (the only weights),
layer ``k`` is ``Ek = Â E(k-1)`` and the final embedding is their mean over ``k = 0..K``
(``alpha_k = 1 / (K + 1)``). A score is the dot product of final embeddings. Training: BPR loss
on (user, train item, sampled unrated item) triples, Adam, and L2 on the ego embeddings of each
batch (``l2 / 2 * (|e_u|^2 + |e_i|^2 + |e_j|^2)`` averaged over the batch, as the authors'
code); the whole graph is propagated again for every batch (``torch.sparse.mm``, as the
paper), which on ML-100K costs a few milliseconds.

Model selection and early stopping use the validation item only (HR@10 against 99 sampled
unrated items, :class:`~movierec.training.validation.ValidationSet`): ``fit(train, valid)``
watches ``valid``; ``fit(train)`` alone holds each user's last train interaction out for it when
``holdout`` is set, else trains ``epochs`` epochs. The final embeddings are propagated once
after training, over the graph of every train interaction (the held-out ones included), and
stored as ``user_factors_`` / ``item_factors_``: scoring is a plain factor model's. References
read: the authors' TensorFlow code (github:kuandeng/LightGCN), its PyTorch port
(github:gusye1234/LightGCN-PyTorch) and RecBole's ``LightGCN``.
"""

from __future__ import annotations

import time
import warnings
from functools import cache
from typing import Annotated, Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.models.base import FactorRecommender, Params, register
from movierec.options import FitOptions
from movierec.training.history import EarlyStopping, TrainingHistory

PositiveInt = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
MONITOR = "valid HR@10"


def normalized_adjacency(seen: sp.spmatrix) -> sp.csr_matrix:
    """``float32`` CSR ``(n_users + n_items)^2``: ``D^-1/2 A D^-1/2`` of the bipartite graph of
    ``seen`` (users first, then items; a node of degree 0 has an empty row and column)."""
    r = sp.csr_matrix(seen, dtype=np.float32, copy=True)
    r.data[:] = 1.0
    a = sp.bmat([[None, r], [r.T, None]], format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    np.power(deg, -0.5, out=inv, where=deg > 0)
    d = sp.diags(inv.astype(np.float32))
    return sp.csr_matrix(d @ a @ d, dtype=np.float32)


def layer_embeddings(adj: sp.csr_matrix, ego: np.ndarray, layers: int) -> list[np.ndarray]:
    """``[E0, E1, ..., EK]``: ``Ek = adj @ E(k-1)`` (float64 numpy, the node order of ``adj``)."""
    out = [np.asarray(ego, dtype=np.float64)]
    for _ in range(layers):
        out.append(adj @ out[-1])
    return out


@cache
def _network_class():
    """The torch module class (built on first use: the CLI starts without importing torch)."""
    import torch

    class SymmetricSpMM(torch.autograd.Function):
        """``adj @ x`` for a symmetric sparse ``adj``: the gradient is ``adj @ grad`` again, so
        backward needs no transposed copy (torch's own sparse backward builds one every call:
        7x slower on ML-100K)."""

        @staticmethod
        def forward(ctx, adj, x):
            ctx.adj = adj
            return torch.sparse.mm(adj, x)

        @staticmethod
        def backward(ctx, grad):
            return None, torch.sparse.mm(ctx.adj, grad)

    class LightGCNNet(torch.nn.Module):
        """Ego embeddings and the normalised graph; ``forward_groups`` is what validation asks
        of a network. In eval mode the final embeddings are computed once and cached."""

        def __init__(self, n_users: int, n_items: int, dim: int, layers: int,
                     adj: sp.csr_matrix, init_std: float):
            super().__init__()
            self.n_users, self.layers = n_users, layers
            self.user = torch.nn.Embedding(n_users, dim)
            self.item = torch.nn.Embedding(n_items, dim)
            torch.nn.init.normal_(self.user.weight, std=init_std)
            torch.nn.init.normal_(self.item.weight, std=init_std)
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                self.adj = torch.sparse_csr_tensor(
                    torch.from_numpy(adj.indptr.astype(np.int64)),
                    torch.from_numpy(adj.indices.astype(np.int64)),
                    torch.from_numpy(adj.data.astype(np.float32)), adj.shape)
            self._final = None

        def train(self, mode: bool = True):
            self._final = None
            return super().train(mode)

        def propagate(self):
            """``(users, items)`` final embeddings: the mean of layers 0..K."""
            e = torch.cat([self.user.weight, self.item.weight])
            total = e
            for _ in range(self.layers):
                e = SymmetricSpMM.apply(self.adj, e)
                total = total + e
            total = total / (self.layers + 1)
            return total[: self.n_users], total[self.n_users:]

        def final(self):
            if self.training:
                return self.propagate()
            if self._final is None:
                with torch.no_grad():
                    self._final = self.propagate()
            return self._final

        def forward_groups(self, u, items):
            """``(B, C)`` scores of user ``u[b]`` for items ``items[b, :]``."""
            users, item_emb = self.final()
            return torch.einsum("bd,bcd->bc", users[u], item_emb[items])

    return LightGCNNet


@register
class LightGCN(FactorRecommender):
    """LightGCN (see the module docstring). ``user_factors_`` / ``item_factors_`` are the final
    (layer-mean) embeddings; ``user_ego_`` / ``item_ego_`` the trained layer-0 embeddings, which
    fold-in propagates.

    ``fold_in``: a new person joins the graph with edges to their picks ``P`` (degree ``|P|``; the
    items keep their train degrees). Their layer ``k >= 1`` embedding is then exactly as for a
    train user, ``sum_{i in P} E(k-1)_i / sqrt(|P| d_i)``, from the trained item layers; their
    ego embedding, which training would have learned, is taken as their layer-1 embedding (the
    normalised sum of the picks' ego embeddings). The final vector is the mean of the layers.
    """

    name: ClassVar[str] = "lightgcn"
    learned: ClassVar[tuple[str, ...]] = ("user_factors_", "item_factors_", "user_ego_",
                                          "item_ego_")
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "layers": [2, 3],
        "lr": [0.01, 0.02],
    }

    class Params(Params):
        factors: PositiveInt = Field(64, description="Embedding size.")
        layers: Annotated[int, Field(ge=0)] = Field(
            3, description="Propagation layers K (0: plain matrix factorisation with BPR).")
        lr: Positive = Field(0.02, description="Adam learning rate.")
        l2: NonNegative = Field(1e-4, description="L2 weight on the batch's ego embeddings.")
        batch_size: PositiveInt = Field(
            8192, description="BPR triples per step (one propagation of the graph each).")
        epochs: PositiveInt = Field(100, description="Most epochs (one triple per train pair).")
        patience: PositiveInt | None = Field(
            5, description="Validations without a better HR@10 before stopping; None: never.")
        eval_every: PositiveInt = Field(2, description="Epochs between validations.")
        holdout: bool = Field(
            True, description="Without a validation set, hold each user's last train "
            "interaction out for early stopping (else train `epochs` epochs).")
        init_std: Positive = Field(0.1, description="Std of the Gaussian initial embeddings.")
        seed: int = 0

    def typed_params(self) -> LightGCN.Params:
        return cast("LightGCN.Params", super().typed_params())

    def factor_dim(self) -> int:
        return int(self.typed_params().factors)

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        d = self.factor_dim()
        return {**super().expected_shapes(), "user_ego_": (self.n_users_, d),
                "item_ego_": (self.n_items_, d)}

    # ------------------------------------------------------------------ training
    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        import torch

        from movierec.training.loop import Progress, resolve_device
        from movierec.training.validation import ValidationSet, holdout_last

        p = self.typed_params()
        options.check_device()
        fit_data, valid_data = train, valid
        if valid_data is None and p.holdout:
            fit_data, valid_data = holdout_last(train)
        validation = None
        if valid_data is not None and valid_data.n_ratings:
            validation = ValidationSet.build(fit_data, valid_data, 99, p.seed)
        old_threads = torch.get_num_threads()
        if options.num_threads:
            torch.set_num_threads(options.num_threads)
        try:
            torch.manual_seed(p.seed)
            net = _network_class()(train.n_users, train.n_items, p.factors, p.layers,
                                   normalized_adjacency(fit_data.csr), p.init_std)
            device = torch.device(resolve_device(options.device))
            net = net.to(device)
            bar = Progress(self.name, p.epochs, "epoch") if options.progress else None
            history = _train_bpr(net, fit_data, validation, p, device, bar)
            if bar is not None:
                bar.close()
        finally:
            torch.set_num_threads(old_threads)
        self.history_ = [history]
        self.user_ego_ = net.user.weight.detach().cpu().numpy().astype(np.float32)
        self.item_ego_ = net.item.weight.detach().cpu().numpy().astype(np.float32)
        self._set_final()

    def _set_final(self) -> None:
        """Final embeddings over the graph of every train interaction (``seen_``)."""
        layers = self._layers()
        total = np.mean(layers, axis=0)
        self.user_factors_ = total[: self.n_users_].astype(np.float32)
        self.item_factors_ = total[self.n_users_:].astype(np.float32)

    def _layers(self) -> list[np.ndarray]:
        """``[E0..EK]`` of every node (users then items) over ``seen_``, cached per ego array."""
        cached = getattr(self, "_layer_cache", None)
        if cached is not None and cached[0] is self.item_ego_:
            return cached[1]
        ego = np.vstack([self.user_ego_, self.item_ego_])
        layers = layer_embeddings(normalized_adjacency(self.seen_), ego,
                                  int(self.typed_params().layers))
        self._layer_cache = (self.item_ego_, layers)
        return layers

    # ------------------------------------------------------------------ new users
    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        """``float32 (factors,)``: the final embedding of a new person linked to their picks
        (ratings are ignored: picks are binary); see the class docstring."""
        items, _ = self._picks(item_idx, ratings)
        items = items[self.item_counts_[items] > 0]  # an item without edges carries nothing
        if len(items) == 0:
            return np.zeros(self.factor_dim(), dtype=np.float32)
        layers = self._layers()
        weights = 1.0 / np.sqrt(len(items) * self.item_counts_[items].astype(np.float64))
        rows = self.n_users_ + items
        ego = weights @ layers[0][rows]  # the stand-in ego embedding (= layer 1 when K > 0)
        own = [weights @ layer[rows] for layer in layers[:-1]]  # layers 1..K of the person
        return np.mean([ego, *own], axis=0).astype(np.float32)


def _train_bpr(net, fit_data: Dataset, validation, p: LightGCN.Params, device,
               bar) -> TrainingHistory:
    """Adam on the BPR loss, one sampled unrated item per train interaction and epoch; early
    stopping on validation HR@10 keeps the best epoch's weights in ``net``."""
    import torch

    from movierec.data.labels import NegativeSampler
    from movierec.training.loop import snapshot_of

    sampler = NegativeSampler.from_dataset(fit_data)
    rng = np.random.default_rng(p.seed)
    users_all = fit_data.user_idx.astype(np.int64)
    items_all = fit_data.item_idx.astype(np.int64)
    n = len(users_all)
    opt = torch.optim.Adam(net.parameters(), lr=p.lr)
    stopper = EarlyStopping(p.patience)
    pick = torch.index_select
    history = TrainingHistory("lightgcn", monitor=MONITOR if validation is not None else None)
    for epoch in range(1, p.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        order = rng.permutation(n)
        u_all = torch.from_numpy(users_all[order])
        i_all = torch.from_numpy(items_all[order])
        j_all = torch.from_numpy(sampler.sample(users_all[order], 1, rng)[:, 0].astype(np.int64))
        total, batches = 0.0, 0
        for lo in range(0, n, p.batch_size):
            u = u_all[lo: lo + p.batch_size].to(device)
            i = i_all[lo: lo + p.batch_size].to(device)
            j = j_all[lo: lo + p.batch_size].to(device)
            users, items = net.propagate()
            eu = pick(users, 0, u)  # index_select: its backward is 3x cheaper than [u]'s
            diff = (eu * (pick(items, 0, i) - pick(items, 0, j))).sum(dim=1)
            loss = torch.nn.functional.softplus(-diff).mean()
            ego = (pick(net.user.weight, 0, u).pow(2).sum()
                   + pick(net.item.weight, 0, i).pow(2).sum()
                   + pick(net.item.weight, 0, j).pow(2).sum())
            reg = 0.5 * p.l2 * ego / len(u)
            opt.zero_grad(set_to_none=True)
            (loss + reg).backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        numbers = {"train loss": total / max(1, batches), "seconds": time.perf_counter() - t0}
        if validation is not None and (epoch % p.eval_every == 0 or epoch == p.epochs):
            numbers.update({f"valid {k}": v for k, v in validation.evaluate(net).items()})
        row = history.add(**numbers)
        if bar is not None:
            bar.update(row)
        if stopper.update(epoch, row.get(MONITOR), snapshot_of(net)):
            history.stopped_early = True
            break
    stopper.restore_best(net, history)
    net.eval()
    return history
