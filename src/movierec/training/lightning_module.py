"""PyTorch Lightning driver of a training :class:`~movierec.training.loop.Task`.

Same batches, loss, optimiser, validation and best-weight selection as the plain loop, with
Lightning's callbacks (early stopping, checkpoints), loggers (CSV) and strategies: ``"ddp"`` runs
one process per device (``accelerator="cpu"`` uses gloo), each process taking every
``world_size``-th batch of the epoch, gradients averaged across processes.

Several machines (the same command on each; rank 0's address reachable from the others)::

    torchrun --nnodes 2 --nproc-per-node 2 --node-rank 0 --master-addr 10.0.0.1 \\
        --master-port 29500 -m movierec.cli train configs/neumf-ml100k.yaml --out artifacts/n
    # on the second machine: the same with --node-rank 1

with ``trainer: lightning`` and ``strategy: ddp`` in the config's ``run:``; under torchrun the
processes per machine and the number of machines come from the variables torchrun sets. Every
process ends with the same weights; only rank 0 writes the artifact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from movierec.training.checkpoints import StageCheckpoint, rng_state, set_rng_state
from movierec.training.history import EarlyStopping, TrainingHistory
from movierec.training.loop import MONITOR, RunStats, Task, snapshot_of

LOGGED = "val_hr10"
"""Name under which validation HR@10 is logged (the metric early stopping monitors)."""


def _epoch_stream(task: Task, module: Any):
    """An IterableDataset whose items are whole batches of the module's current epoch and rank."""
    import torch

    class EpochStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            trainer = module.trainer
            # the epoch's index is the count of epochs done: Lightning's current_epoch is still
            # the last one's when it starts iterating after resuming from an end-of-epoch
            # checkpoint
            batches = task.builder.epoch(len(module.history.epochs))
            yield from batches.shard(trainer.global_rank, trainer.world_size)

    return EpochStream()


def _module(task: Task, name: str, checkpoint: StageCheckpoint | None = None):
    import lightning as L

    class NCFModule(L.LightningModule):
        """Lightning view of a Task (the network is ``self.net``)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = task.net
            self.best = EarlyStopping(None)  # keeps the best weights; Lightning's callback stops
            self.history = task.new_history(name)
            self.epoch_loss: list[float] = []
            self.scheduler = None
            self.scheduler_state = None  # from a checkpoint, until configure_optimizers runs

        def training_step(self, batch, batch_idx):
            u, i, y, w = batch
            loss, parts = task.loss(u, i, y, w)
            self.epoch_loss.append(float(parts["log_loss"]))
            self.log("log_loss", parts["log_loss"], on_step=False, on_epoch=True,
                     prog_bar=True, batch_size=int(y.shape[0]), sync_dist=True)
            return loss

        def configure_optimizers(self):
            # the scheduler is stepped here, in on_train_epoch_end, so that a checkpoint written
            # at the end of an epoch holds the stepped learning rate (Lightning would step it
            # after the checkpoint and skip that step when resuming from it)
            opt = task.make_optimizer(self.net.parameters())
            self.scheduler = task.make_scheduler(opt)
            if self.scheduler_state is not None:
                self.scheduler.load_state_dict(self.scheduler_state)
            return opt

        def on_train_epoch_end(self):
            self.scheduler.step()
            metrics = task.validate()
            self.history.add(**{"train loss": sum(self.epoch_loss) / max(1, len(self.epoch_loss))},
                             **metrics)
            self.epoch_loss = []
            if metrics:
                # every process validates the same replica on all users: nothing to reduce
                self.log(LOGGED, metrics[MONITOR], prog_bar=True, sync_dist=True)
                self.log("val_ndcg10", metrics["valid NDCG@10"], sync_dist=True)
                self.best.update(self.current_epoch + 1, metrics[MONITOR], snapshot_of(self.net))

        def on_save_checkpoint(self, ckpt):
            if checkpoint is None:
                return
            ckpt["movierec"] = {
                **checkpoint.stamp(),
                "finished": bool(self.trainer.should_stop
                                 or self.current_epoch + 1 >= self.trainer.max_epochs),
                "rng": rng_state(task.device), "div_gen": task.div_gen.get_state(),
                "scheduler": self.scheduler.state_dict(), "history": self.history.to_dict(),
                "best": {"best": self.best.best, "best_epoch": self.best.best_epoch,
                         "best_state": self.best.best_state},
            }

        def on_load_checkpoint(self, ckpt):
            restore_module(self, ckpt["movierec"])

    def restore_module(module, mine) -> None:
        """Put back what Lightning's checkpoint does not hold (random states, scheduler,
        history, best weights)."""
        set_rng_state(mine["rng"])
        task.div_gen.set_state(mine["div_gen"])
        module.scheduler_state = mine["scheduler"]
        module.history = TrainingHistory.from_dict(mine["history"])
        b = mine["best"]
        module.best.best, module.best.best_epoch = b["best"], b["best_epoch"]
        module.best.best_state = b["best_state"] and {
            k: v.to(task.device) for k, v in b["best_state"].items()}

    module = NCFModule()
    # nn.Module types its attributes as tensors and modules; this one is a plain callable
    module.restore = lambda mine: restore_module(module, mine)  # type: ignore[assignment]
    return module


def _loggers(s) -> list[Any] | bool:
    """Lightning loggers writing under ``s.log_dir``: CSV, plus TensorBoard when asked."""
    if not s.log_dir:
        return False
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [CSVLogger(s.log_dir, name="lightning")]
    if s.logger == "tensorboard":
        from movierec.training.loop import require_tensorboardx

        require_tensorboardx()
        loggers.append(TensorBoardLogger(s.log_dir, name="lightning"))
    return loggers


def train_lightning(
    task: Task, strategy: str = "auto", devices: int | str = 1, accelerator: str | None = None,
    name: str = "training", checkpoint: StageCheckpoint | None = None,
) -> tuple[TrainingHistory, RunStats]:
    """Run ``task`` with a Lightning ``Trainer``; the best epoch's weights are left in
    ``task.net`` (on every process under DDP). ``accelerator`` defaults to the task's device.

    With ``checkpoint``, Lightning writes ``last.ckpt`` after every epoch under
    ``checkpoint.lightning_dir`` (with movierec's random states, scheduler, history and best
    weights added) and, when resuming, continues from it with ``ckpt_path``; a finished stage is
    loaded without training. A run that does not resume first removes the best-epoch checkpoints
    an earlier run left in ``log_dir/checkpoints``."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping as LEarlyStopping
    from lightning.pytorch.callbacks import ModelCheckpoint

    s = task.settings
    saved = checkpoint.load(checkpoint.lightning_path) if checkpoint is not None else None
    module = _module(task, name, checkpoint)
    if saved is not None and saved["movierec"]["finished"]:
        module.load_state_dict(saved["state_dict"])
        module.restore(saved["movierec"])
        # no Trainer and no process group: the rank is the launcher's (torchrun), else 0
        stats = RunStats(int(saved["global_step"]), int(os.environ.get("RANK", "0")),
                         int(os.environ.get("WORLD_SIZE", "1")))
        return _result(task, module, len(module.history.epochs) < s.epochs, stats)
    if saved is None and s.log_dir:
        remove_stale_checkpoints(Path(s.log_dir) / "checkpoints")
    old_threads = torch.get_num_threads()
    if s.num_threads:
        torch.set_num_threads(s.num_threads)
    callbacks: list[Any] = []
    if task.validation is not None and s.patience is not None:
        callbacks.append(LEarlyStopping(monitor=LOGGED, mode="max", patience=s.patience,
                                        check_on_train_epoch_end=True))
    if task.validation is not None and s.log_dir:
        callbacks.append(ModelCheckpoint(dirpath=f"{s.log_dir}/checkpoints", monitor=LOGGED,
                                         mode="max", save_top_k=1, save_on_train_epoch_end=True))
    if checkpoint is not None:
        # every epoch overwrites one file (no monitor: the latest is the one kept)
        callbacks.append(ModelCheckpoint(dirpath=checkpoint.lightning_dir, filename="last",
                                         save_top_k=1, enable_version_counter=False,
                                         save_on_train_epoch_end=True))
    num_nodes = 1
    if "LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        devices = int(os.environ["LOCAL_WORLD_SIZE"])
        num_nodes = max(1, int(os.environ["WORLD_SIZE"]) // devices)
    trainer = L.Trainer(
        max_epochs=s.epochs,
        accelerator=accelerator or task.device.type,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision="32-true",  # the Task applies bf16 autocast itself when asked
        logger=_loggers(s),
        callbacks=callbacks,
        enable_progress_bar=s.progress,
        enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=1,
    )
    loader = torch.utils.data.DataLoader(_epoch_stream(task, module), batch_size=None)
    try:
        trainer.fit(module, train_dataloaders=loader,
                    ckpt_path=(checkpoint.lightning_path
                               if saved is not None and checkpoint is not None else None),
                    weights_only=True)
    finally:
        torch.set_num_threads(old_threads)
    stats = RunStats(int(trainer.global_step), int(trainer.global_rank), int(trainer.world_size))
    return _result(task, module, len(module.history.epochs) < s.epochs, stats)


def _result(task: Task, module, stopped_early: bool, stats: RunStats
            ) -> tuple[TrainingHistory, RunStats]:
    """The best weights into ``task.net``; the history and stats of the run."""
    history = module.history
    if module.best.best_state is not None:
        task.net.load_state_dict(module.best.best_state)
    history.best_epoch = module.best.best_epoch
    history.stopped_early = stopped_early
    return history, stats


def remove_stale_checkpoints(folder: Path) -> None:
    """Remove the best-epoch checkpoints (``epoch=E-step=S*.ckpt``, Lightning's default names)
    that an earlier, killed or finished, run left in ``folder``, so that a new run's best
    checkpoint is the only one there. Other files are left alone."""
    if folder.is_dir():
        for stale in folder.glob("epoch=*-step=*.ckpt"):
            stale.unlink(missing_ok=True)
