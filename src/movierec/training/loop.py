"""The training task (batches, loss, optimiser, validation) and the lean plain-torch loop.

:class:`Task` holds everything one training run needs; two drivers run it with the same
semantics (same batches, loss, optimiser steps, early stopping and best weights):

* :func:`train_plain`: a plain loop, the default. On 2 CPU cores a small NCF step takes a few
  milliseconds, so framework overhead per step and per epoch matters; this loop has none.
* :func:`movierec.training.lightning_module.train_lightning`: PyTorch Lightning, for its
  callbacks, checkpoints, loggers and DDP (``strategy="ddp"``, several processes or machines).
"""

from __future__ import annotations

import copy
import csv
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec.errors import ModelError
from movierec.progress import Progress
from movierec.training.batches import EpochBuilder
from movierec.training.checkpoints import StageCheckpoint, loop_state, restore_loop
from movierec.training.history import EarlyStopping, TrainingHistory
from movierec.training.losses import batch_l2, diversity_penalty, jaccard
from movierec.training.validation import ValidationSet

if TYPE_CHECKING:  # torch is imported when a network is trained, not by the CLI's start
    import torch

MONITOR = "valid HR@10"
"""The validation number that early stopping and best-weight selection maximise."""


@dataclass
class FitSettings:
    """How to train: the NCF hyper-parameters and the run options one training run needs
    (:func:`movierec.training.fit.settings_of` fills it from both)."""

    epochs: int = 20
    batch_size: int = 8192
    lr: float = 1e-3
    lr_decay: float = 1.0  # the learning rate is multiplied by this after every epoch
    optimizer: str = "adam"  # "adam" | "adamw" | "sgd"
    fused: bool = False  # torch's fused Adam/AdamW kernel (faster; last-bit differences)
    sparse_updates: str | bool = "auto"  # lazy Adam on embedding tables: "auto", True, False
    weight_decay: float = 0.0  # optimiser weight decay (every parameter, every step)
    l2: float = 0.0  # L2 on the embedding rows of each batch (see losses.batch_l2)
    patience: int | None = 3  # epochs without a better validation HR@10; None: never stop early
    seed: int = 0
    num_threads: int | None = None  # torch.set_num_threads for the run (None: leave as is)
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", ...
    precision: str = "32"  # "32" or "bf16-mixed" (bfloat16 autocast, fp32 weights)
    progress: bool = False
    log_dir: str | None = None  # CSV log (metrics.csv) of every epoch when set
    logger: str = "csv"  # "csv", or "tensorboard": TensorBoard event files in log_dir as well
    diversity_alpha: float = 0.0
    diversity_users: int = 64
    diversity_items: int = 128
    diversity_temperature: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class Task:
    """One training run of ``net`` over ``builder``'s epochs, validated on ``validation``.

    ``genres`` (``(n_items, n_genres)`` binary array) is needed only when
    ``settings.diversity_alpha > 0``.
    """

    def __init__(
        self,
        net,
        builder: EpochBuilder,
        settings: FitSettings,
        validation: ValidationSet | None = None,
        genres: np.ndarray | None = None,
    ):
        import torch

        self.net = net
        self.builder = builder
        self.settings = settings
        self.validation = validation
        self.device = torch.device(resolve_device(settings.device))
        self.genres = None
        if settings.diversity_alpha > 0:
            if genres is None:
                raise ModelError("diversity_alpha > 0 needs the items' genres")
            self.genres = torch.as_tensor(np.asarray(genres), dtype=torch.float32)
            # candidates of the penalty: items with at least one genre (a genre-less item is
            # unlike everything, so the penalty would pull every user's top towards it)
            self.genred_items = torch.nonzero(self.genres.sum(dim=1) > 0).flatten()
            if len(self.genred_items) < 2:
                raise ModelError("diversity_alpha > 0 needs at least two items with genres")
        self.div_gen = torch.Generator().manual_seed(settings.seed + 7919)

    def make_optimizer(self, params=None):
        import torch

        s = self.settings
        params = list(params if params is not None else self.net.parameters())
        fused = {"fused": True} if s.fused else {}
        if any(getattr(p, "sparse_grad", False) for p in params):
            from movierec.training.optim import LazyAdam

            return LazyAdam(params, lr=s.lr, weight_decay=s.weight_decay, **fused)
        if s.optimizer == "adam":
            return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay, **fused)
        if s.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, **fused)
        if s.optimizer == "sgd":
            return torch.optim.SGD(params, lr=s.lr, weight_decay=s.weight_decay)
        raise ModelError(f"unknown optimizer {s.optimizer!r}; expected adam, adamw or sgd")

    def mark_sparse_tables(self) -> list[str]:
        """Mark the embedding tables that get sparse gradients and lazy Adam updates
        (``sparse_updates``; see :func:`movierec.training.networks.mark_sparse`); returns their
        names. Only with Adam (or AdamW without weight decay, the same algorithm then)."""
        from movierec.training.networks import mark_sparse

        s = self.settings
        lazy_ok = s.optimizer == "adam" or (s.optimizer == "adamw" and s.weight_decay == 0)
        if s.sparse_updates is False or not lazy_ok:
            if s.sparse_updates is True:
                raise ModelError("sparse_updates: true needs optimizer adam (or adamw without "
                                 "weight_decay)")
            return []
        if s.sparse_updates is True:
            return mark_sparse(self.net, 0, factor=0)
        # a batch touches at most batch_size item rows and batch_size / (1 + k) user rows
        return mark_sparse(self.net, self.builder.batch_size)

    def make_scheduler(self, optimizer):
        """Per-epoch exponential decay of the learning rate (``lr_decay``; 1 keeps it)."""
        import torch

        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.settings.lr_decay)

    def autocast(self):
        import torch

        if self.settings.precision in ("bf16", "bf16-mixed"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.settings.precision not in ("32", "32-true"):
            raise ModelError(f"unknown precision {self.settings.precision!r}; use 32 or bf16-mixed")
        return nullcontext()

    def loss(self, u, i, y, w=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss of one batch and its parts (log loss, l2, diversity)."""
        import torch

        s = self.settings
        with self.autocast():
            g = self.builder.k + 1
            if g > 1 and u.shape[0] % g == 0:  # whole groups: one user, its item and negatives
                logits = self.net.forward_groups(u.view(-1, g)[:, 0], i.view(-1, g)).reshape(-1)
            else:
                logits = self.net(u, i)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y, weight=w)
        parts = {"log_loss": loss.detach()}
        if s.l2 > 0:
            reg = s.l2 * batch_l2(self.net, u, i)
            loss = loss + reg
        if s.diversity_alpha > 0:
            div = self.diversity(u)
            loss = loss + s.diversity_alpha * div
            parts["diversity"] = div.detach()
        return loss, parts

    def diversity(self, u):
        """The diversity penalty for some users of the batch over random candidate items."""
        import torch

        s = self.settings
        users = torch.unique(u)
        if len(users) > s.diversity_users:
            pick = torch.randperm(len(users), generator=self.div_gen)[: s.diversity_users]
            users = users[pick.to(users.device)]
        pool = self.genred_items
        items = pool[torch.randint(0, len(pool), (s.diversity_items,), generator=self.div_gen)]
        sim = jaccard(self.genres[items]).to(u.device)
        with self.autocast():
            scores = self.net.score_grid(self.net.user_vectors(users), items.to(u.device))
        return diversity_penalty(scores.float(), sim, s.diversity_temperature)

    def validate(self) -> dict[str, float]:
        """``{"valid HR@10", "valid NDCG@10"}`` of the network now (empty without validation)."""
        if self.validation is None:
            return {}
        with self.autocast():
            return {f"valid {k}": v for k, v in self.validation.evaluate(self.net).items()}

    def new_history(self, name: str) -> TrainingHistory:
        return TrainingHistory(name, monitor=MONITOR if self.validation is not None else None)


@dataclass
class RunStats:
    """What one process did in a training run (DDP: each process has its own)."""

    steps: int = 0  # optimiser steps taken by this process
    rank: int = 0  # this process's rank under DDP
    world_size: int = 1


def snapshot_of(net):
    """A callable copying ``net``'s current weights (what :class:`EarlyStopping` keeps)."""
    return lambda: copy.deepcopy(net.state_dict())


LOGGERS = ("csv", "tensorboard")


def _mean_loss(total: Any, n_batches: int) -> Callable[[], dict[str, float]]:
    """The epoch's mean loss so far, computed only when a progress line is drawn."""
    return lambda: {"loss": float(total) / n_batches}


class EpochLog:
    """Appends one row per epoch to ``<log_dir>/metrics.csv`` (no-op without a folder); with
    ``tensorboard=True`` also writes each number as a TensorBoard scalar under ``log_dir``."""

    def __init__(self, log_dir: str | None, tensorboard: bool = False,
                 earlier: list[dict[str, float]] | None = None):
        self.path = Path(log_dir) / "metrics.csv" if log_dir else None
        self.fields: list[str] | None = None
        self.board = None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.unlink(missing_ok=True)
            for row in earlier or []:  # a resumed run's CSV starts with the epochs done before
                self.write(row)
            if tensorboard and log_dir:
                self.board = tensorboard_writer(log_dir)

    def write(self, row: dict[str, float]) -> None:
        """Append one epoch's row (keys become CSV columns; TensorBoard tags with spaces and
        ``@`` replaced: ``valid HR@10`` -> ``valid_HR_10``)."""
        if self.path is None:
            return
        new = self.fields is None
        if self.fields is None:
            self.fields = list(row)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.board is not None:
            step = int(row.get("epoch", 0))
            for key, value in row.items():
                if key != "epoch":
                    self.board.add_scalar(key.replace(" ", "_").replace("@", "_"), value, step)
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def tensorboard_writer(log_dir: str):
    """A TensorBoard ``SummaryWriter`` on ``log_dir`` (tensorboardX, part of the ``ml`` extra)."""
    return require_tensorboardx().SummaryWriter(log_dir)


def require_tensorboardx():
    """The ``tensorboardX`` module, or a :class:`ModelError` saying how to install it."""
    try:
        import tensorboardX
    except ImportError:
        raise ModelError("logger: tensorboard needs the tensorboardX package "
                         "(pip install 'movierec[ml]')") from None
    return tensorboardX


def seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def train_plain(task: Task, name: str = "training", checkpoint: StageCheckpoint | None = None
                ) -> tuple[TrainingHistory, RunStats]:
    """Run ``task`` with a plain loop: epochs of sliced batches, validation after each epoch,
    early stopping on validation HR@10; the best epoch's weights are left in ``task.net``.

    With ``checkpoint``, the loop's whole state is written after every epoch and, when it
    resumes, read back first: the run continues after the last finished epoch and ends with the
    same weights, bit for bit, as an uninterrupted run (same device and thread count)."""
    import torch

    s = task.settings
    old_threads = torch.get_num_threads()
    if s.num_threads:
        torch.set_num_threads(s.num_threads)
    try:
        return _train_plain(task, name, torch, checkpoint)
    finally:
        torch.set_num_threads(old_threads)


def _train_plain(task: Task, name: str, torch, checkpoint: StageCheckpoint | None
                 ) -> tuple[TrainingHistory, RunStats]:
    s = task.settings
    net = task.net.to(task.device)
    opt = task.make_optimizer()
    scheduler = task.make_scheduler(opt)
    stopper = EarlyStopping(s.patience)
    history, stats = task.new_history(name), RunStats()
    done, finished = 0, False
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        done, finished, history, stats.steps = restore_loop(
            saved, net=net, optimizer=opt, scheduler=scheduler, stopper=stopper, task=task)
    log = EpochLog(s.log_dir, tensorboard=s.logger == "tensorboard", earlier=history.epochs)
    bar = Progress(name, s.epochs, "epoch", done=done) if s.progress else None
    if s.progress and done < s.epochs:
        per_epoch = task.builder.samples_per_epoch
        print(f"{name}: {per_epoch:,} samples per epoch, batches of {task.builder.batch_size:,}"
              f" on {task.device}", file=sys.stderr, flush=True)
    for epoch in range(done + 1, s.epochs + 1):
        if finished:
            break
        t0 = time.perf_counter()
        net.train()
        total = torch.zeros((), dtype=torch.float64)
        n_batches = 0
        batches = task.builder.epoch(epoch - 1)
        steps = (Progress(f"{name} epoch {epoch}/{s.epochs}", len(batches), "batch",
                          first_after=1.0, at_end=False, leave=False) if s.progress else None)
        for u, i, y, w in batches:
            u, i, y = u.to(task.device), i.to(task.device), y.to(task.device)
            w = None if w is None else w.to(task.device)
            opt.zero_grad(set_to_none=True)
            loss, parts = task.loss(u, i, y, w)
            loss.backward()
            opt.step()
            total += parts["log_loss"].double().cpu()
            n_batches += 1
            if steps is not None:
                steps.update(_mean_loss(total, n_batches))
        if steps is not None:
            steps.close()
        stats.steps += n_batches
        scheduler.step()
        row = history.add(**{"train loss": float(total) / max(1, n_batches),
                             "seconds": time.perf_counter() - t0}, **task.validate())
        if stopper.update(epoch, row.get(MONITOR), snapshot_of(net)):
            history.stopped_early = finished = True
        if checkpoint is not None:
            checkpoint.save(loop_state(
                epoch=epoch, finished=finished or epoch == s.epochs, net=net, optimizer=opt,
                scheduler=scheduler, stopper=stopper, history=history, steps=stats.steps,
                task=task))
        log.write(row)
        if bar is not None:
            bar.update(row)
    if bar is not None:
        bar.close()
    log.close()
    stopper.restore_best(net, history)
    return history, stats
