"""Run options: how a fit runs on this machine, apart from what the model is.

Hyper-parameters say *what* is learned (sizes, learning rate, epochs) and travel with an artifact;
run options say *how this run goes* (threads, device, progress output, log folders, trainer and
DDP strategy). They are passed to ``fit(train, valid, options=...)``, come from a config's
``run:`` section, never change a figure for a given seed and are never stored in an artifact
(cf. LensKit's ``TrainingOptions``, RecBole's overall vs model settings).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

__all__ = ["FitOptions", "RUN_OPTION_NAMES"]


class FitOptions(BaseModel):
    """How one fit runs. Every field has a default, so ``FitOptions()`` is a plain run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    progress: StrictBool = Field(
        False, description="Report progress while training: a bar on a terminal, a line every "
        "few seconds otherwise (a log, CI, nohup).")
    log_dir: str | None = Field(
        None, description="Folder for per-epoch logs (metrics.csv; TensorBoard events with "
        "logger: tensorboard) and Lightning checkpoints. None: no logs.")
    logger: Literal["csv", "tensorboard"] = Field(
        "csv", description="`tensorboard` writes TensorBoard event files beside the CSV log.")
    curves_dir: str | None = Field(
        None, description="Folder for learning curves of the rating models (CSV and PNG).")
    device: str = Field(
        "auto", description="torch device: `auto` (CUDA when present), `cpu`, `cuda`, `cuda:1`.")
    num_threads: StrictInt | None = Field(
        None, ge=1, description="Compute threads of the fit (torch, implicit); None: the "
        "library's default.")
    trainer: Literal["torch", "lightning"] = Field(
        "torch", description="NCF training driver: the plain loop or PyTorch Lightning.")
    strategy: str = Field("auto", description="Lightning strategy, e.g. `ddp`.")
    devices: StrictInt = Field(1, ge=1, description="Lightning processes / devices.")
    checkpoint_dir: str | None = Field(
        None, description="Folder for resumable NCF training checkpoints: after every epoch, one "
        "file per training stage (`gmf`, `mlp`, `neumf`...). `movierec train` sets it to "
        "`<out>.checkpoints` and removes it once the artifact is saved. None: no checkpoints.")
    resume: StrictBool = Field(
        False, description="Continue each stage from its checkpoint in `checkpoint_dir` (a stage "
        "without one starts from the beginning; one of another run is refused). The weights "
        "end the same as an uninterrupted run's (`movierec train --resume`).")

    memory_check: StrictBool = Field(
        True, description="Refuse a fit whose estimated memory (the model's `estimate_cost`) "
        "exceeds the memory available now, before any work, naming a model that scales; "
        "false: try anyway.")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        kind = value.split(":")[0]
        if kind not in ("auto", "cpu", "cuda", "mps", "xpu"):
            raise ValueError(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N")
        return value

    def check_device(self) -> None:
        """Raise :class:`~movierec.errors.ModelError` when the device does not exist here (imports
        torch; call it just before a torch fit starts, before data is loaded where possible)."""
        from movierec.errors import ModelError

        if self.device in ("auto", "cpu"):
            return
        import torch

        kind = self.device.split(":")[0]
        backend = getattr(torch, kind, None)
        available = bool(backend is not None and backend.is_available())
        if not available:
            raise ModelError(f"run.device: {self.device!r} is not available on this machine; "
                             "use `auto` or `cpu`")


RUN_OPTION_NAMES: frozenset[str] = frozenset(FitOptions.model_fields)
"""Names that are run options, never hyper-parameters (a config that gives one under a model's
``params`` is told to move it under ``run:``)."""
