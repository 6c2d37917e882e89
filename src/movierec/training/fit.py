"""Training an NCF network: from typed hyper-parameters, run options and a train Dataset to a
trained network; and folding a new user in against a trained network.

This module knows networks and settings, not Recommenders: :mod:`movierec.models.ncf` calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.labels import NegativeSampler, Thresholds, observed_targets
from movierec.errors import ModelError
from movierec.models.ncf_params import NCFParams
from movierec.options import FitOptions
from movierec.training.batches import EpochBuilder
from movierec.training.checkpoints import stage_checkpoint
from movierec.training.history import TrainingHistory
from movierec.training.loop import FitSettings, RunStats, Task, seed_everything, train_plain
from movierec.training.networks import set_interactions
from movierec.training.validation import ValidationSet, holdout_last

if TYPE_CHECKING:  # torch is imported when a network is trained, not by the CLI's start
    import torch

VALID_NEGATIVES = 99
"""Sampled unrated items each validation item is ranked against (P1's 99)."""


def settings_of(params: NCFParams, options: FitOptions) -> FitSettings:
    """The :class:`FitSettings` of a run: the model's hyper-parameters and the run options."""
    return FitSettings(
        epochs=params.epochs, batch_size=params.batch_size, lr=params.lr,
        lr_decay=params.lr_decay, optimizer=params.optimizer, fused=params.fused_optimizer,
        sparse_updates=params.sparse_updates,
        weight_decay=params.weight_decay, l2=params.l2, patience=params.patience,
        seed=params.seed, num_threads=options.num_threads, device=options.device,
        precision=params.precision, progress=options.progress, log_dir=options.log_dir,
        logger=options.logger, diversity_alpha=params.diversity_alpha,
        diversity_temperature=params.diversity_temperature,
    )


def thresholds_of(params: NCFParams) -> Thresholds:
    return Thresholds(params.hard_positive, params.soft_positive, params.soft_negative)


def fit_network(
    params: NCFParams,
    options: FitOptions,
    make_net: Callable[[], torch.nn.Module],
    train: Dataset,
    valid: Dataset | None,
    name: str,
    prepare: Callable[[torch.nn.Module], None] | None = None,
) -> tuple[torch.nn.Module, TrainingHistory, RunStats]:
    """Train a network built by ``make_net()`` on ``train`` with ``params`` and ``options``.

    Validation (early stopping, best weights) uses ``valid`` when given, else each user's last
    train interaction when ``params.holdout`` is set, else nothing (``epochs`` epochs).
    ``prepare(net)`` runs after the network is built and before training (NeuMF pre-training).
    With ``options.checkpoint_dir`` the stage ``name`` is checkpointed after every epoch there
    and, with ``options.resume``, continued from its checkpoint
    (:mod:`movierec.training.checkpoints`).
    Returns the trained network (best weights, on the CPU), its history and the run's stats.
    """
    import torch

    options.check_device()
    settings = settings_of(params, options)
    fit_data, valid_data = train, valid
    if valid_data is None and params.holdout:
        fit_data, valid_data = holdout_last(train)
    targets = observed_targets(fit_data.rating, params.label_mode, thresholds_of(params))
    sampler = NegativeSampler.from_dataset(fit_data,
                                           popularity_exponent=params.negative_exponent)
    builder = EpochBuilder(fit_data.user_idx, fit_data.item_idx, targets, sampler,
                           params.n_negatives, settings.batch_size, settings.seed,
                           recency_weights(fit_data, params.recency_boost,
                                           params.recency_half_life))
    validation = None
    if valid_data is not None and valid_data.n_ratings:
        validation = ValidationSet.build(fit_data, valid_data, VALID_NEGATIVES, settings.seed)
    genres = train.genre_matrix.toarray() if settings.diversity_alpha > 0 else None

    seed_everything(settings.seed)
    net = make_net()
    if prepare is not None:
        prepare(net)
    csr = fit_data.csr
    set_interactions(net, csr.indptr, csr.indices)
    task = Task(net, builder, settings, validation, genres)
    if options.trainer != "lightning":  # DDP's reducer averages dense gradients only
        task.mark_sparse_tables()
    elif params.sparse_updates is True:
        raise ModelError("sparse_updates: true works with the plain trainer (run: {trainer: "
                         "torch}); Lightning and DDP train with dense gradients")
    checkpoint = stage_checkpoint(options, name, params.model_dump(mode="json"),
                                  fit_data.fingerprint,
                                  valid_data.fingerprint if valid_data is not None and
                                  validation is not None else None)
    if options.trainer == "lightning":
        from movierec.training.lightning_module import train_lightning

        history, stats = train_lightning(task, strategy=options.strategy,
                                         devices=options.devices, name=name,
                                         checkpoint=checkpoint)
    else:
        history, stats = train_plain(task, name, checkpoint)
    with torch.no_grad():
        net = task.net.cpu()
    return net, history, stats


def recency_weights(data: Dataset, boost: float, half_life: float) -> np.ndarray | None:
    """Loss weight of each rating: ``1 + boost * 0.5 ** (k / half_life)`` for a user's ``k``-th
    most recent rating (``k = 0``: the latest), so recent tastes count more; None for
    ``boost == 0``. Needs the Dataset's (user, time) order."""
    if not boost:
        return None
    if boost < 0 or half_life <= 0:
        raise ModelError(f"recency_boost must be >= 0 and recency_half_life > 0; got {boost}, "
                         f"{half_life}")
    ends = np.cumsum(data.user_counts) - 1
    from_end = ends[data.user_idx] - np.arange(data.n_ratings)
    return (1.0 + boost * 0.5 ** (from_end / half_life)).astype(np.float32)


def fold_in_vector(params: NCFParams, net, n_items: int, items: np.ndarray,
                   ratings: np.ndarray) -> np.ndarray:
    """A user vector for a new person who picked ``items``: ``params.fold_in_steps`` Adam steps
    on a user vector (started at the mean train user, plus the pooled picks with
    ``user_history``), item side frozen; log loss on the picks
    (targets by ``label_mode``) against ``n_negatives`` sampled unpicked items per pick."""
    import torch

    targets = observed_targets(ratings, params.label_mode, thresholds_of(params))
    rng = np.random.default_rng(params.seed)
    sampler = NegativeSampler(np.zeros(len(items), np.int64), items, 1, n_items)
    k = max(1, params.n_negatives)
    steps = params.fold_in_steps
    weights = list(net.parameters())
    frozen = [p.requires_grad for p in weights]
    for p in weights:
        p.requires_grad_(False)
    try:
        pos = torch.from_numpy(items.astype(np.int64))
        with torch.no_grad():
            start = net.new_user_vector(pos)
        vec = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([vec], lr=0.05)
        y = torch.cat([torch.from_numpy(targets), torch.zeros(len(items) * k)])
        for _ in range(steps):
            neg = sampler.sample(np.zeros(len(items), np.int64), k, rng).reshape(-1)
            cand = torch.cat([pos, torch.from_numpy(neg.astype(np.int64))])
            logits = net.score_grid(vec[None], cand)[0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, f in zip(weights, frozen, strict=True):
            p.requires_grad_(f)
    return vec.detach().numpy().astype(np.float32)
