"""Fitting an NCF Recommender: from its hyper-parameters and a train Dataset to a trained network;
and folding a new user in against a trained network."""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.labels import NegativeSampler, Thresholds, observed_targets
from movierec.errors import ModelError
from movierec.training.batches import EpochBuilder
from movierec.training.loop import LOGGERS, FitSettings, Task, seed_everything, train_plain
from movierec.training.networks import set_interactions
from movierec.training.validation import ValidationSet, holdout_last

VALID_NEGATIVES = 99
"""Sampled unrated items each validation item is ranked against (P1's 99)."""

TRAINERS = ("torch", "lightning")


def settings_of(model: Any) -> FitSettings:
    """The :class:`FitSettings` a model's hyper-parameters describe."""
    return FitSettings(
        epochs=int(model.epochs), batch_size=int(model.batch_size), lr=float(model.lr),
        lr_decay=float(model.lr_decay),
        optimizer=model.optimizer, fused=bool(model.fused_optimizer),
        weight_decay=float(model.weight_decay), l2=float(model.l2),
        patience=model.patience, seed=int(model.seed), num_threads=model.num_threads,
        device=model.device, precision=str(model.precision), progress=bool(model.progress),
        log_dir=model.log_dir, logger=str(model.logger),
        diversity_alpha=float(model.diversity_alpha),
        diversity_temperature=float(model.diversity_temperature),
    )


def thresholds_of(model: Any) -> Thresholds:
    return Thresholds(float(model.hard_positive), float(model.soft_positive),
                      float(model.soft_negative))


def fit_network(model: Any, train: Dataset, valid: Dataset | None):
    """Train the network of ``model`` (an NCF Recommender) on ``train``.

    Validation (early stopping, best weights) uses ``valid`` when given, else each user's last
    train interaction when ``model.holdout`` is set, else nothing (``epochs`` epochs). Returns the
    trained network (best weights) and the per-epoch history.
    """
    import torch

    if model.trainer not in TRAINERS:
        raise ModelError(f"unknown trainer {model.trainer!r}; expected one of {TRAINERS}")
    if model.logger not in LOGGERS:
        raise ModelError(f"unknown logger {model.logger!r}; expected one of {LOGGERS}")
    settings = settings_of(model)
    fit_data, valid_data = train, valid
    if valid_data is None and model.holdout:
        fit_data, valid_data = holdout_last(train)
    targets = observed_targets(fit_data.rating, model.label_mode, thresholds_of(model))
    sampler = NegativeSampler.from_dataset(
        fit_data, popularity_exponent=float(model.negative_exponent))
    builder = EpochBuilder(fit_data.user_idx, fit_data.item_idx, targets, sampler,
                           int(model.n_negatives), settings.batch_size, settings.seed,
                           recency_weights(fit_data, float(model.recency_boost),
                                           float(model.recency_half_life)))
    validation = None
    if valid_data is not None and valid_data.n_ratings:
        validation = ValidationSet.build(fit_data, valid_data, VALID_NEGATIVES, settings.seed)
    genres = train.genre_matrix.toarray() if settings.diversity_alpha > 0 else None

    seed_everything(settings.seed)
    net = model._make_net(train.n_users, train.n_items)
    if getattr(model, "pretrain", False):
        _pretrain(model, net, train, valid)
    csr = fit_data.csr
    set_interactions(net, csr.indptr, csr.indices)
    task = Task(net, builder, settings, validation, genres)
    if model.trainer == "lightning":
        from movierec.training.lightning_module import train_lightning

        history = train_lightning(task, strategy=model.strategy, devices=model.devices)
    else:
        history = train_plain(task)
    with torch.no_grad():
        net = task.net.cpu()
    info = {"epochs": history.epochs, "best_epoch": history.best_epoch,
            "best_score": history.best_score, "stopped_early": history.stopped_early,
            "steps": history.steps, "rank": history.rank, "world_size": history.world_size}
    return net, info


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


def _pretrain(model: Any, net, train: Dataset, valid: Dataset | None) -> None:
    """NeuMF pre-training: GMF and MLP from artifacts or fitted here, then copied into ``net``."""
    from movierec.models.base import Recommender
    from movierec.models.ncf import GMFRecommender, MLPRecommender
    from movierec.training.networks import init_neumf_from

    common = {k: v for k, v in model.get_params().items()
              if k in _PRETRAIN_SHARED}
    gmf_epochs = mlp_epochs = common["epochs"]
    if model.pretrain_epochs is not None:
        pe = model.pretrain_epochs
        gmf_epochs, mlp_epochs = (pe, pe) if isinstance(pe, int) else (int(pe[0]), int(pe[1]))
    if model.pretrain_lr is not None:
        common["lr"] = model.pretrain_lr
    if model.pretrain_gmf:
        gmf = Recommender.load(model.pretrain_gmf)
    else:
        gmf = GMFRecommender(factors=model.factors, **{**common, "epochs": gmf_epochs})
        gmf.fit(train, valid)
    if model.pretrain_mlp:
        mlp = Recommender.load(model.pretrain_mlp)
    else:
        mlp = MLPRecommender(mlp_factors=model.mlp_factors, layers=model.layers,
                             dropout=model.dropout, **{**common, "epochs": mlp_epochs})
        mlp.fit(train, valid)
    try:
        init_neumf_from(net, gmf.network(), mlp.network(), float(model.alpha))
    except RuntimeError as e:
        raise ModelError(f"neumf pre-training: the GMF / MLP sizes do not match NeuMF's ({e})") \
            from e
    model.pretrained_ = {"gmf": gmf.history_ if hasattr(gmf, "history_") else None,
                         "mlp": mlp.history_ if hasattr(mlp, "history_") else None}


_PRETRAIN_SHARED = (
    "lr", "lr_decay", "optimizer", "fused_optimizer", "weight_decay", "l2", "batch_size", "epochs",
    "n_negatives",
    "label_mode", "hard_positive", "soft_positive", "soft_negative", "patience", "holdout", "seed",
    "num_threads", "device", "precision", "progress", "init_std", "item_bias",
    "negative_exponent", "user_history", "recency_boost", "recency_half_life",
)


def fold_in_vector(model: Any, net, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
    """A user vector for a new person who picked ``items``: ``model.fold_in_steps`` Adam steps on
    a user vector (started at the mean train user, plus the pooled picks with
    ``user_history``), item side frozen; log loss on the picks
    (targets by ``label_mode``) against ``n_negatives`` sampled unpicked items per pick."""
    import torch

    targets = observed_targets(ratings, model.label_mode, thresholds_of(model))
    rng = np.random.default_rng(int(model.seed))
    sampler = NegativeSampler(np.zeros(len(items), np.int64), items, 1, model.n_items_)
    k = max(1, int(model.n_negatives))
    params = list(net.parameters())
    frozen = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        pos = torch.from_numpy(items.astype(np.int64))
        with torch.no_grad():
            start = net.new_user_vector(pos)
        vec = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([vec], lr=0.05)
        y = torch.cat([torch.from_numpy(targets), torch.zeros(len(items) * k)])
        for _ in range(int(model.fold_in_steps)):
            neg = sampler.sample(np.zeros(len(items), np.int64), k, rng).reshape(-1)
            cand = torch.cat([pos, torch.from_numpy(neg.astype(np.int64))])
            logits = net.score_grid(vec[None], cand)[0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, f in zip(params, frozen, strict=True):
            p.requires_grad_(f)
    return vec.detach().numpy().astype(np.float32)
