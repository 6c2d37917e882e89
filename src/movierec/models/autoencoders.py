"""Variational autoencoders for collaborative filtering: ``mult-vae`` and ``recvae``.

A user is their binary row of train interactions; the encoder maps it to a latent Gaussian and
the decoder maps the latent mean to one logit per item (the networks:
:mod:`movierec.training.autoencoder_nets`). Scores are those logits (higher is better). No user
parameters are learned, so folding a new person in is the models' own inference, exact and
without retraining: encode their picks as a multi-hot row and decode. Rows travel as sparse CSR
and are made dense one batch at a time (never a users x items dense matrix).

Early stopping and best weights watch ``valid NDCG@10``: every item ranked for each validation
user from their train row (their train items excluded), binary gains. ``fit(train, valid)`` uses
``valid``; ``fit(train)`` with ``holdout > 0`` holds out that share of each user's items
(seeded, :func:`~movierec.data.splits.random_holdout`; ``holdout_order: last``: each user's last
item, as leave-one-out tests), finds the best epoch on them, then trains on every train row for
that many epochs; ``holdout: 0`` trains ``epochs`` epochs.

The learned state is one flat ``float32`` vector ``weights_`` (the network's ``state_dict`` in
order), rebuilt into a network on first use after loading, as for the NCF models.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Literal, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from movierec.data.dataset import Dataset
from movierec.errors import ModelError
from movierec.models.base import Params, Recommender, register
from movierec.options import FitOptions
from movierec.training.history import EarlyStopping, TrainingHistory

__all__ = ["MultVAE", "RecVAE", "valid_ndcg"]

PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
MONITOR = "valid NDCG@10"
SCORE_ROWS = 1024
"""Users encoded and scored at once (a dense ``SCORE_ROWS x n_items`` block each way)."""


class AutoencoderParams(Params):
    """Hyper-parameters shared by both autoencoders."""

    hidden: PositiveInt = Field(600, description="Width of the encoder's hidden layer(s).")
    latent: PositiveInt = Field(200, description="Dimensions of the latent Gaussian.")
    dropout: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.5, description="Dropout on the normalised input row while training (denoising).")
    epochs: PositiveInt = Field(200, description="Most training epochs.")
    batch_size: PositiveInt = Field(100, description="Users per update.")
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: NonNegative = 0.0
    patience: PositiveInt | None = Field(
        10, description="Epochs without a better validation NDCG@10 before stopping; None: never.")
    holdout: Fraction = Field(
        0.2, description="Without `valid`: share of each user's items held out to pick the "
        "epoch count, then every row is trained on for it. 0: train `epochs` epochs.")
    holdout_order: Literal["random", "last"] = Field(
        "random", description="Which items `holdout` takes: a seeded random share of each "
        "user's (as P5 holds out), or each user's last one by time (as leave-one-out does).")
    seed: int = 0


class AutoencoderRecommender(Recommender):
    """Fitting, scoring, fold-in and persistence shared by the two autoencoders."""

    Params: ClassVar[type[AutoencoderParams]]
    learned: ClassVar[tuple[str, ...]] = ("weights_",)

    # ------------------------------------------------------------------ network
    def _make_net(self, n_items: int):
        raise NotImplementedError

    def _trainer(self, net):
        """An object whose ``epoch(rows, rng) -> {numbers}`` trains ``net`` one epoch over the
        dense-per-batch CSR ``rows``."""
        raise NotImplementedError

    def network(self):
        """The trained ``torch.nn.Module`` (eval mode), built from ``weights_`` once and cached."""
        self._check_fitted()
        from movierec.training.flat import cached_network

        return cached_network(self, self._make_net)

    def expected_shapes(self) -> dict[str, tuple[int | None, ...]]:
        import torch

        with torch.device("meta"):
            net = self._make_net(self.n_items_)
        return {"weights_": (sum(int(t.numel()) for t in net.state_dict().values()),)}

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Dataset, valid: Dataset | None, options: FitOptions) -> None:
        import torch

        options.check_device()
        p = cast("AutoencoderParams", self.typed_params())
        old_threads = torch.get_num_threads()
        if options.num_threads:
            torch.set_num_threads(options.num_threads)
        try:
            if valid is not None and valid.n_ratings:
                net, history = self._train(self.seen_, _binary_csr(valid), p.epochs, options,
                                           self.name)
                self.history_ = [history]
            elif p.holdout > 0:
                rest, held = _holdout(train, p.holdout, p.holdout_order, p.seed)
                _, chosen = self._train(_binary_csr(rest), _binary_csr(held), p.epochs, options,
                                        f"{self.name} epoch selection")
                epochs = chosen.best_epoch or len(chosen)
                net, history = self._train(self.seen_, None, epochs, options, self.name)
                self.history_ = [chosen, history]
            else:
                net, history = self._train(self.seen_, None, p.epochs, options, self.name)
                self.history_ = [history]
        finally:
            torch.set_num_threads(old_threads)
        from movierec.training.flat import flat_weights

        self.weights_ = flat_weights(net)
        self._net_cache = None

    def _train(self, rows: sp.csr_matrix, valid: sp.csr_matrix | None, epochs: int,
               options: FitOptions, name: str):
        """Train a fresh network on ``rows`` for ``epochs`` epochs; with ``valid`` (same shape:
        each user's validation items), stop early on validation NDCG@10 and keep the best
        epoch's weights. Returns ``(net on the CPU, TrainingHistory)``."""

        import torch

        from movierec.training.loop import EpochLog, Progress, resolve_device, snapshot_of

        p = cast("AutoencoderParams", self.typed_params())
        torch.manual_seed(p.seed)
        rng = np.random.default_rng(p.seed)
        device = torch.device(resolve_device(options.device))
        net = self._make_net(rows.shape[1]).to(device)
        trainer = self._trainer(net)
        history = TrainingHistory(name, monitor=MONITOR if valid is not None else None)
        stopper = EarlyStopping(p.patience if valid is not None else None)
        log = EpochLog(options.log_dir and f"{options.log_dir}/{name.replace(' ', '-')}",
                       tensorboard=options.logger == "tensorboard")
        bar = Progress(name, epochs, "epoch") if options.progress else None
        active = np.flatnonzero(np.diff(rows.indptr) > 0)  # a row with no item teaches nothing
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            net.train()
            numbers = trainer.epoch(rows, active, rng, device)
            numbers["seconds"] = time.perf_counter() - t0
            if valid is not None:
                numbers[MONITOR] = valid_ndcg(net, rows, valid, device=device)
            row = history.add(**numbers)
            log.write(row)
            if bar is not None:
                bar.update(row)
            if stopper.update(epoch, row.get(MONITOR), snapshot_of(net)):
                history.stopped_early = True
                break
        if bar is not None:
            bar.close()
        log.close()
        stopper.restore_best(net, history)
        net.eval()
        return net.cpu(), history

    # ------------------------------------------------------------------ scoring
    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(np.asarray(user_idx).ravel())
        return decode_rows(self.network(), self.seen_[u])

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        """Every item's logit for the person whose multi-hot row ``state`` is (from
        :meth:`fold_in`): encoded and decoded like a train user's row."""
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (self.n_items_,):
            raise ModelError(f"{type(self).__name__}.score_folded: expected the "
                             f"({self.n_items_},) interaction vector from fold_in, got "
                             f"{state.shape}")
        return decode_rows(self.network(), sp.csr_matrix(state[None]))[0]

    def item_vectors(self) -> np.ndarray:
        """The decoder's output weights, one row per item: ``float32 (n_items, d)``."""
        return self.network().item_table().detach().float().numpy().astype(np.float32)


def _holdout(train: Dataset, share: float, order: str, seed: int) -> tuple[Dataset, Dataset]:
    """``(rest, held out)`` of ``train`` on its id maps: ``share`` of each user's items at
    random (``order="random"``) or each user's last item (``"last"``, users with 2 or more)."""
    from movierec.data.splits import carve_validation, random_holdout

    if order == "last":
        rest, held = carve_validation(train, "last")
    else:
        split = random_holdout(train, share, seed)
        rest, held = split.train, split.test
    if rest.n_users != train.n_users or rest.n_items != train.n_items:
        raise ModelError("the validation holdout changed the id maps")
    return rest, held


def _binary_csr(ds: Dataset) -> sp.csr_matrix:
    m = sp.csr_matrix(ds.csr, dtype=np.float32, copy=True)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _dense(rows: sp.csr_matrix, device=None):
    import torch

    return torch.from_numpy(rows.toarray().astype(np.float32, copy=False)).to(device)


def decode_rows(net, rows: sp.csr_matrix, device=None) -> np.ndarray:
    """``float32 (n_rows, n_items)`` logits of ``net`` (eval mode) for the multi-hot ``rows``,
    :data:`SCORE_ROWS` rows at a time."""
    import torch

    out = np.empty(rows.shape, dtype=np.float32)
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for s in range(0, rows.shape[0], SCORE_ROWS):
            out[s : s + SCORE_ROWS] = net(_dense(rows[s : s + SCORE_ROWS], device)).float().cpu()
    net.train(was_training)
    return out


def valid_ndcg(net, rows: sp.csr_matrix, valid: sp.csr_matrix, k: int = 10,
               device=None) -> float:
    """Mean NDCG@k over users with a validation item: every item ranked from the user's train
    row ``rows[u]`` with their train items excluded, binary gains on ``valid[u]``'s items, IDCG
    from ``min(k, |valid[u]|)`` hits. Ties broken by lower item index."""
    import torch

    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(users) == 0:
        return 0.0
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    total = 0.0
    for s in range(0, len(users), SCORE_ROWS):
        block = users[s : s + SCORE_ROWS]
        scores = torch.from_numpy(decode_rows(net, rows[block], device))
        seen = rows[block].tocoo()
        scores[seen.row, seen.col] = -torch.inf
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.numpy()
        target = valid[block]
        hits = np.take_along_axis(target.toarray(), top, axis=1) > 0
        dcg = (hits * discount[: top.shape[1]]).sum(axis=1)
        n_target = np.minimum(np.diff(target.indptr), k)
        idcg = np.cumsum(discount)[n_target - 1]
        total += float((dcg / idcg).sum())
    return total / len(users)


def _batches(active: np.ndarray, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(active)
    for s in range(0, len(order), batch_size):
        yield order[s : s + batch_size]


class _MultVAETrainer:
    """Adam on every weight; the KL weight grows per update by :func:`kl_beta`."""

    def __init__(self, net, p: MultVAE.Params):
        import torch

        self.net, self.p, self.step = net, p, 0
        self.opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)

    def epoch(self, rows, active, rng, device) -> dict[str, float]:
        from movierec.training.autoencoder_nets import kl_beta

        total, n, beta = 0.0, 0, 0.0
        for batch in _batches(active, self.p.batch_size, rng):
            beta = kl_beta(self.step, self.p.beta_max, self.p.anneal_steps)
            loss, _ = self.net.loss(_dense(rows[batch], device), beta)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
            total, n = total + float(loss.detach()), n + 1
        return {"train loss": total / max(1, n), "beta": beta}


class _RecVAETrainer:
    """RecVAE's alternating epoch: ``enc_epochs`` passes updating the encoder (dropout on),
    then the prior's old encoder := the encoder, then ``dec_epochs`` passes updating the
    decoder (no dropout), each with its own Adam."""

    def __init__(self, net, p: RecVAE.Params):
        import torch

        self.net, self.p = net, p
        self.opt_enc = torch.optim.Adam(net.encoder.parameters(), lr=p.lr,
                                        weight_decay=p.weight_decay)
        self.opt_dec = torch.optim.Adam(net.decoder.parameters(), lr=p.lr,
                                        weight_decay=p.weight_decay)

    def _pass(self, rows, active, rng, device, opt, dropout) -> float:
        total, n = 0.0, 0
        for batch in _batches(active, self.p.batch_size, rng):
            loss, _ = self.net.loss(_dense(rows[batch], device), dropout, self.p.gamma,
                                    self.p.beta)
            self.opt_enc.zero_grad(set_to_none=True)
            self.opt_dec.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        return total / max(1, n)

    def epoch(self, rows, active, rng, device) -> dict[str, float]:
        for _ in range(self.p.enc_epochs):
            self._pass(rows, active, rng, device, self.opt_enc, self.p.dropout)
        self.net.update_prior()
        loss = 0.0
        for _ in range(self.p.dec_epochs):
            loss = self._pass(rows, active, rng, device, self.opt_dec, 0.0)
        return {"train loss": loss}


@register
class MultVAE(AutoencoderRecommender):
    """Mult-VAE (Liang et al., WWW 2018): multinomial likelihood, input dropout, encoder
    ``[n_items -> hidden -> latent]`` (their [n_items -> 600 -> 200]), KL annealed to
    ``beta_max`` over ``anneal_steps`` updates."""

    name: ClassVar[str] = "mult-vae"
    param_grid: ClassVar[dict[str, list[Any]]] = {"beta_max": [0.2, 1.0]}

    class Params(AutoencoderParams):
        beta_max: NonNegative = Field(0.2, description="Cap of the annealed KL weight.")
        anneal_steps: Annotated[int, Field(ge=0)] = Field(
            200, description="Updates over which the KL weight grows by 1 (it stops at "
            "beta_max); 0: beta_max from the start.")

    def typed_params(self) -> MultVAE.Params:
        return cast("MultVAE.Params", super().typed_params())

    def _make_net(self, n_items: int):
        from movierec.training.autoencoder_nets import MultVAENet

        p = self.typed_params()
        return MultVAENet(n_items, p.hidden, p.latent, p.dropout)

    def _trainer(self, net):
        return _MultVAETrainer(net, self.typed_params())


@register
class RecVAE(AutoencoderRecommender):
    """RecVAE (Shenbin et al., WSDM 2020): densely connected encoder, composite prior with the
    previous epoch's encoder, KL weight ``gamma * |x|`` per user, alternating encoder and
    decoder updates, input dropout."""

    name: ClassVar[str] = "recvae"
    param_grid: ClassVar[dict[str, list[Any]]] = {"gamma": [0.005, 0.01]}

    class Params(AutoencoderParams):
        lr: Annotated[float, Field(gt=0)] = 5e-4
        gamma: NonNegative = Field(0.005, description="KL weight per interaction of the user.")
        beta: NonNegative | None = Field(
            None, description="A constant KL weight instead of gamma * |x| (None: use gamma).")
        enc_epochs: PositiveInt = Field(3, description="Encoder passes per epoch.")
        dec_epochs: PositiveInt = Field(1, description="Decoder passes per epoch.")

    def typed_params(self) -> RecVAE.Params:
        return cast("RecVAE.Params", super().typed_params())

    def _make_net(self, n_items: int):
        from movierec.training.autoencoder_nets import RecVAENet

        p = self.typed_params()
        return RecVAENet(n_items, p.hidden, p.latent, p.dropout)

    def _trainer(self, net):
        return _RecVAETrainer(net, self.typed_params())
