"""Resumable training: one checkpoint per training stage, written whole after every epoch.

A *stage* is one run of a training loop: NeuMF with pre-training has three (``gmf``, ``mlp``,
``neumf``), named by their history. After each epoch the plain loop writes
``<folder>/<stage>.pt`` (temporary file, fsync, rename: a kill leaves the previous epoch's file or
this one, never half of one) holding everything the rest of the run depends on: the epoch, the
network, optimiser and scheduler states, torch's random state (dropout) and the diversity
generator's, the early-stopping state (best score, epoch, weights, bad epochs), the history and
the optimiser step count. The last one written is marked ``finished``: resuming loads the stage's
final weights and random state without training. Lightning writes its own ``last.ckpt`` under
``<folder>/<stage>.lightning/`` (see :mod:`movierec.training.lightning_module`).

Each checkpoint records *what* is trained (stage, trainer, the model's hyper-parameters, the train
and validation data fingerprints); resuming from a checkpoint of anything else is a one-line
error. Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain values only,
so a checkpoint never runs code.

The folder carries a marker file: movierec removes only folders it created.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movierec.errors import ModelError, MovierecError
from movierec.files import write_atomically

FORMAT = 1
MARKER = ".movierec-checkpoints"
"""File that marks a folder as movierec's checkpoint folder (removed last when it is cleaned)."""


def what_is_trained(stage: str, trainer: str, params: dict[str, Any], data: str,
                    valid: str | None) -> dict[str, Any]:
    """The identity of a training stage, as plain JSON values: a checkpoint resumes only a run
    whose identity is equal."""
    return json.loads(json.dumps({"stage": stage, "trainer": trainer, "data": data,
                                  "valid": valid, "params": params}, sort_keys=True, default=str))


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 3) -> str:
    """``"lr 0.01 -> 0.003, train data 1a2b... -> 9f8e..."``: how two identities differ."""
    out = []
    labels = {"stage": "stage", "trainer": "trainer", "data": "train data",
              "valid": "validation data"}
    for key, label in labels.items():
        if old.get(key) != new.get(key):
            out.append(f"{label} {old.get(key)} -> {new.get(key)}")
    old_p, new_p = old.get("params", {}), new.get("params", {})
    for key in sorted(set(old_p) | set(new_p)):
        if old_p.get(key) != new_p.get(key):
            out.append(f"{key} {old_p.get(key)} -> {new_p.get(key)}")
    more = f" and {len(out) - limit} more" if len(out) > limit else ""
    return ", ".join(out[:limit]) + more


@dataclass(frozen=True)
class StageCheckpoint:
    """Where one stage's checkpoint lives, what it must be of, and whether to resume from it."""

    folder: Path
    stage: str
    what: dict[str, Any]
    resume: bool

    @property
    def path(self) -> Path:
        """The plain loop's checkpoint file."""
        return self.folder / f"{self.stage.replace(' ', '-')}.pt"

    @property
    def lightning_dir(self) -> Path:
        """Lightning's checkpoint folder of this stage (``last.ckpt`` inside)."""
        return self.folder / f"{self.stage.replace(' ', '-')}.lightning"

    @property
    def lightning_path(self) -> Path:
        return self.lightning_dir / "last.ckpt"

    def load(self, path: Path | None = None) -> dict[str, Any] | None:
        """The checkpoint to resume from (on the CPU), or None when not resuming or none was
        written yet. Raises a one-line :class:`ModelError` for an unreadable checkpoint or one of
        another run."""
        path = path or self.path
        if not self.resume or not path.exists():
            return None
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means the same to a user
            reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
            raise ModelError(f"{path}: unreadable checkpoint ({reason}); delete {self.folder} "
                             "or train without --resume") from None
        mine = state.get("movierec") if isinstance(state, dict) and path.suffix == ".ckpt" \
            else state
        if not isinstance(mine, dict) or mine.get("format") != FORMAT:
            raise ModelError(f"{path}: not a movierec checkpoint of this version; delete "
                             f"{self.folder} or train without --resume")
        old = json.loads(mine["what"])
        if old != self.what:
            raise ModelError(f"{path}: checkpoint of another run ({differences(old, self.what)});"
                             " train without --resume to start over")
        return state

    def save(self, state: dict[str, Any], path: Path | None = None) -> None:
        """Write ``state`` (plus the format and identity) whole, or leave the old file."""
        import torch

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                torch.save({**state, "format": FORMAT, "what": json.dumps(self.what)}, f)
                f.flush()
                os.fsync(f.fileno())

        write_atomically(path or self.path, write)

    def stamp(self) -> dict[str, Any]:
        """The format and identity, for a checkpoint someone else writes (Lightning)."""
        return {"format": FORMAT, "what": json.dumps(self.what)}


# ---------------------------------------------------------------------------- random state
def rng_state(device) -> dict[str, Any]:
    """Torch's global random state (CPU, and CUDA when ``device`` is a CUDA device)."""
    import torch

    cuda = torch.cuda.get_rng_state_all() if device.type == "cuda" else []
    return {"torch": torch.get_rng_state(), "cuda": list(cuda)}


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------- the plain loop
def loop_state(*, epoch: int, finished: bool, net, optimizer, scheduler, stopper, history,
               steps: int, task) -> dict[str, Any]:
    """Everything the plain loop needs to continue after ``epoch`` exactly as it would have."""
    return {
        "epoch": epoch, "finished": finished, "steps": steps,
        "net": net.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rng_state(task.device),
        "div_gen": task.div_gen.get_state(), "history": history.to_dict(),
        "stopper": {"best": stopper.best, "best_epoch": stopper.best_epoch,
                    "best_state": stopper.best_state, "bad": stopper.bad},
        "device": str(task.device), "num_threads": task.settings.num_threads,
    }


def restore_loop(state: dict[str, Any], *, net, optimizer, scheduler, stopper, task):
    """Put a :func:`loop_state` back; returns ``(epoch done, finished, history, steps)``.

    Another device or thread count than the killed run's is allowed, with a warning: sums
    are then taken in another order, so the weights may differ from an uninterrupted run's in
    the last bits."""
    import warnings

    from movierec.training.history import TrainingHistory

    then = (state["device"], state["num_threads"])
    now = (str(task.device), task.settings.num_threads)
    if then != now:
        warnings.warn(f"resuming on device {now[0]} with num_threads {now[1]}; the checkpoint "
                      f"was written on {then[0]} with {then[1]}: the weights may differ from an "
                      "uninterrupted run's in the last bits", stacklevel=2)

    net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    task.div_gen.set_state(state["div_gen"])
    s = state["stopper"]
    stopper.best, stopper.best_epoch, stopper.bad = s["best"], s["best_epoch"], s["bad"]
    stopper.best_state = s["best_state"]
    if s["best_state"] is not None:
        stopper.best_state = {k: v.to(task.device) for k, v in s["best_state"].items()}
    history = TrainingHistory.from_dict(state["history"])
    return int(state["epoch"]), bool(state["finished"]), history, int(state["steps"])


# ---------------------------------------------------------------------------- the folder
def open_folder(folder: str | Path, resume: bool) -> str:
    """Make ``folder`` ready for a run and say what happened (empty string: nothing to say).

    Without ``resume`` an earlier run's checkpoints are removed. A folder that exists, is not
    empty and lacks movierec's marker is refused: it is not ours to delete or mix into.
    """
    folder = Path(folder)
    ours = (folder / MARKER).is_file()
    if folder.exists() and not ours and (not folder.is_dir() or any(folder.iterdir())):
        raise MovierecError(f"{folder} exists and is not a movierec checkpoint folder; move it "
                            "away or choose another --out")
    said = ""
    if resume:
        kept = ours and any(p.name != MARKER for p in folder.iterdir())
        said = (f"resuming from the checkpoints in {folder}" if kept else
                f"no checkpoint in {folder}: training from the start")
    elif ours and any(p.name != MARKER for p in folder.iterdir()):
        remove_folder(folder)
        said = f"removed the checkpoints of an unfinished earlier run in {folder}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    return said


def remove_folder(folder: str | Path) -> None:
    """Remove a checkpoint folder movierec created (its marker goes last, so a kill part-way
    leaves a folder the next run still recognises and cleans); anything else is left alone."""
    folder = Path(folder)
    if not (folder / MARKER).is_file():
        return
    for child in folder.iterdir():
        if child.name == MARKER:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink(missing_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    folder.rmdir()


def stage_checkpoint(options, stage: str, params: dict[str, Any], data: str,
                     valid: str | None) -> StageCheckpoint | None:
    """The checkpoint of ``stage`` under ``options.checkpoint_dir`` (None without one)."""
    if not options.checkpoint_dir:
        return None
    what = what_is_trained(stage, options.trainer, params, data, valid)
    return StageCheckpoint(Path(options.checkpoint_dir), stage, what, options.resume)
