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
from typing import Any

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
            batches = task.builder.epoch(trainer.current_epoch)
            yield from batches.shard(trainer.global_rank, trainer.world_size)

    return EpochStream()


def _module(task: Task, name: str):
    import lightning as L

    class NCFModule(L.LightningModule):
        """Lightning view of a Task (the network is ``self.net``)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = task.net
            self.best = EarlyStopping(None)  # keeps the best weights; Lightning's callback stops
            self.history = task.new_history(name)
            self.epoch_loss: list[float] = []

        def training_step(self, batch, batch_idx):
            u, i, y, w = batch
            loss, parts = task.loss(u, i, y, w)
            self.epoch_loss.append(float(parts["log_loss"]))
            self.log("log_loss", parts["log_loss"], on_step=False, on_epoch=True,
                     prog_bar=True, batch_size=int(y.shape[0]), sync_dist=True)
            return loss

        def configure_optimizers(self):
            opt = task.make_optimizer(self.net.parameters())
            return {"optimizer": opt, "lr_scheduler": task.make_scheduler(opt)}

        def on_train_epoch_end(self):
            metrics = task.validate()
            self.history.add(**{"train loss": sum(self.epoch_loss) / max(1, len(self.epoch_loss))},
                             **metrics)
            self.epoch_loss = []
            if metrics:
                # every process validates the same replica on all users: nothing to reduce
                self.log(LOGGED, metrics[MONITOR], prog_bar=True, sync_dist=True)
                self.log("val_ndcg10", metrics["valid NDCG@10"], sync_dist=True)
                self.best.update(self.current_epoch + 1, metrics[MONITOR], snapshot_of(self.net))

    return NCFModule()


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
    name: str = "training",
) -> tuple[TrainingHistory, RunStats]:
    """Run ``task`` with a Lightning ``Trainer``; the best epoch's weights are left in
    ``task.net`` (on every process under DDP). ``accelerator`` defaults to the task's device."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping as LEarlyStopping
    from lightning.pytorch.callbacks import ModelCheckpoint

    s = task.settings
    old_threads = torch.get_num_threads()
    if s.num_threads:
        torch.set_num_threads(s.num_threads)
    module = _module(task, name)
    callbacks: list[Any] = []
    if task.validation is not None and s.patience is not None:
        callbacks.append(LEarlyStopping(monitor=LOGGED, mode="max", patience=s.patience,
                                        check_on_train_epoch_end=True))
    if task.validation is not None and s.log_dir:
        callbacks.append(ModelCheckpoint(dirpath=f"{s.log_dir}/checkpoints", monitor=LOGGED,
                                         mode="max", save_top_k=1, save_on_train_epoch_end=True))
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
        enable_checkpointing=bool(s.log_dir and task.validation is not None),
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=1,
    )
    loader = torch.utils.data.DataLoader(_epoch_stream(task, module), batch_size=None)
    try:
        trainer.fit(module, train_dataloaders=loader)
    finally:
        torch.set_num_threads(old_threads)
    history = module.history
    if module.best.best_state is not None:
        task.net.load_state_dict(module.best.best_state)
    history.best_epoch = module.best.best_epoch
    history.stopped_early = len(history.epochs) < s.epochs
    stats = RunStats(int(trainer.global_step), int(trainer.global_rank), int(trainer.world_size))
    return history, stats
