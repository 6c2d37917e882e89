"""Resumable training: a run killed after any epoch and resumed ends with the same weights as an
uninterrupted one; stale checkpoints go; another run's checkpoint is refused in one line.

Kills are simulated in-process by raising from ``EpochBuilder.epoch`` (called at the start of every
epoch by both drivers) once the previous epoch's checkpoint is written; the real SIGKILL of a
``movierec train`` process is in ``test_train_resume_cli.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from movierec.data.labels import NegativeSampler  # noqa: E402
from movierec.errors import ModelError, MovierecError  # noqa: E402
from movierec.training.batches import EpochBuilder  # noqa: E402
from movierec.training.checkpoints import (  # noqa: E402
    MARKER,
    StageCheckpoint,
    open_folder,
    remove_folder,
    what_is_trained,
)
from movierec.training.loop import FitSettings, Task, train_plain  # noqa: E402
from movierec.training.networks import MLP  # noqa: E402
from movierec.training.validation import ValidationSet  # noqa: E402

N_USERS, N_ITEMS, GROUPS = 60, 40, 4


class Killed(Exception):
    """Stands for a SIGKILL at the start of an epoch."""


def kill_at_epoch_call(monkeypatch, n: int) -> None:
    """Make the ``n``-th call (0-based, counted over every builder) of ``EpochBuilder.epoch``
    raise :class:`Killed`: the run dies after ``n`` epochs (of all stages) were checkpointed."""
    real = EpochBuilder.epoch
    calls = {"n": 0}

    def epoch(self, e):
        calls["n"] += 1
        if calls["n"] > n:
            raise Killed
        return real(self, e)

    monkeypatch.setattr(EpochBuilder, "epoch", epoch)


def _mlp_task(lr=0.1, patience=3, log_dir=None):
    """An MLP on users who each like 8 items of their own group (item % GROUPS), validated on a
    ninth; every random source matters: dropout (torch's global RNG), the diversity penalty's
    generator, a decaying learning rate and early stopping."""
    rng = np.random.default_rng(0)
    own = [np.flatnonzero(np.arange(N_ITEMS) % GROUPS == u % GROUPS) for u in range(N_USERS)]
    items = np.stack([rng.choice(o, 9, replace=False) for o in own])  # test data only
    users = np.repeat(np.arange(N_USERS), 8)
    train_items = items[:, :8].ravel()
    sampler = NegativeSampler(users, train_items, N_USERS, N_ITEMS)
    builder = EpochBuilder(users, train_items, np.ones(len(users), np.float32), sampler, 4, 250,
                           seed=0)
    negatives = NegativeSampler(np.r_[users, np.arange(N_USERS)], np.r_[train_items, items[:, 8]],
                                N_USERS, N_ITEMS).sample(np.arange(N_USERS), 20, rng)
    validation = ValidationSet(torch.arange(N_USERS),
                               torch.from_numpy(np.column_stack([items[:, 8], negatives])))
    torch.manual_seed(5)
    net = MLP(N_USERS, N_ITEMS, 8, [16, 8], dropout=0.3, init_std=0.1)
    settings = FitSettings(epochs=7, lr=lr, lr_decay=0.8, patience=patience, seed=0,
                           num_threads=1, diversity_alpha=0.05, log_dir=log_dir)
    genres = np.eye(GROUPS, dtype=np.float32)[np.arange(N_ITEMS) % GROUPS]
    return Task(net, builder, settings, validation, genres)


def _checkpoint(folder, resume, lr=0.1) -> StageCheckpoint:
    what = what_is_trained("mlp", "torch", {"lr": lr}, "data-fp", "valid-fp")
    return StageCheckpoint(folder, "mlp", what, resume)


def _rows(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]


@pytest.fixture(scope="module")
def uninterrupted():
    task = _mlp_task()
    history, stats = train_plain(task, "mlp")
    return task.net.state_dict(), history, stats, torch.get_rng_state()


@pytest.mark.parametrize("killed_after", [1, 4])
def test_a_killed_plain_run_resumes_to_bit_identical_weights(tmp_path, monkeypatch,
                                                             uninterrupted, killed_after):
    weights, history, stats, rng = uninterrupted
    logs = str(tmp_path / "logs")
    with monkeypatch.context() as m:
        kill_at_epoch_call(m, killed_after)
        with pytest.raises(Killed):
            train_plain(_mlp_task(log_dir=logs), "mlp", _checkpoint(tmp_path, resume=False))
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file beside the checkpoint
    torch.manual_seed(123)  # the resumed process starts from another random state
    task = _mlp_task(log_dir=logs)
    got, got_stats = train_plain(task, "mlp", _checkpoint(tmp_path, resume=True))
    lines = (tmp_path / "logs" / "metrics.csv").read_text().splitlines()
    assert len(lines) == 1 + len(history.epochs)  # the epochs before the kill are logged too
    for key, value in weights.items():
        assert torch.equal(task.net.state_dict()[key], value), key
    assert _rows(got) == _rows(history) and got.best_epoch == history.best_epoch
    assert got.stopped_early == history.stopped_early and got_stats.steps == stats.steps
    assert torch.equal(torch.get_rng_state(), rng)  # what trains next draws the same numbers


def test_a_finished_stage_loads_its_weights_and_random_state_without_training(
        tmp_path, monkeypatch, uninterrupted):
    weights, history, _, rng = uninterrupted
    train_plain(_mlp_task(), "mlp", _checkpoint(tmp_path, resume=False))
    torch.manual_seed(123)
    kill_at_epoch_call(monkeypatch, 0)  # any epoch trained would raise
    task = _mlp_task()
    got, _ = train_plain(task, "mlp", _checkpoint(tmp_path, resume=True))
    assert all(torch.equal(task.net.state_dict()[k], v) for k, v in weights.items())
    assert _rows(got) == _rows(history)
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_checkpoint_of_another_run_is_refused_in_one_line(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        kill_at_epoch_call(m, 2)
        with pytest.raises(Killed):
            train_plain(_mlp_task(), "mlp", _checkpoint(tmp_path, resume=False))
    with pytest.raises(ModelError) as err:
        train_plain(_mlp_task(lr=0.05), "mlp", _checkpoint(tmp_path, resume=True, lr=0.05))
    message = str(err.value)
    assert "\n" not in message and "mlp.pt" in message
    assert "another run" in message and "lr 0.1 -> 0.05" in message and "--resume" in message


def test_an_unreadable_checkpoint_is_one_line(tmp_path):
    (tmp_path / "mlp.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="unreadable checkpoint") as err:
        train_plain(_mlp_task(), "mlp", _checkpoint(tmp_path, resume=True))
    assert "\n" not in str(err.value)


def test_without_resume_a_stale_checkpoint_is_ignored_and_overwritten(tmp_path, monkeypatch,
                                                                      uninterrupted):
    with monkeypatch.context() as m:
        kill_at_epoch_call(m, 2)
        with pytest.raises(Killed):
            train_plain(_mlp_task(lr=0.05), "mlp", _checkpoint(tmp_path, False, lr=0.05))
    task = _mlp_task()
    train_plain(task, "mlp", _checkpoint(tmp_path, resume=False))
    assert all(torch.equal(task.net.state_dict()[k], v) for k, v in uninterrupted[0].items())
    saved = torch.load(tmp_path / "mlp.pt", weights_only=True)
    assert saved["finished"] and '"lr": 0.1' in saved["what"]


def test_resuming_with_another_thread_count_warns_that_last_bits_may_differ(tmp_path,
                                                                             monkeypatch):
    with monkeypatch.context() as m:
        kill_at_epoch_call(m, 2)
        with pytest.raises(Killed):
            train_plain(_mlp_task(), "mlp", _checkpoint(tmp_path, resume=False))
    task = _mlp_task()
    task.settings.num_threads = 2
    with pytest.warns(UserWarning, match="num_threads 2; the checkpoint was written on cpu "
                                         "with 1"):
        train_plain(task, "mlp", _checkpoint(tmp_path, resume=True))


# ------------------------------------------------------------------------------ the folder
def test_a_fresh_run_removes_the_checkpoints_of_a_killed_one(tmp_path):
    folder = tmp_path / "gmf.checkpoints"
    assert open_folder(folder, resume=True) == f"no checkpoint in {folder}: training from the start"
    (folder / "gmf.pt").write_bytes(b"x")
    (folder / "neumf.lightning").mkdir()
    (folder / "neumf.lightning" / "last.ckpt").write_bytes(b"x")
    assert open_folder(folder, resume=True).startswith("resuming from")
    assert (folder / "gmf.pt").exists()
    assert open_folder(folder, resume=False).startswith("removed the checkpoints")
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]
    remove_folder(folder)
    assert not folder.exists()


def test_a_folder_movierec_did_not_create_is_never_deleted(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(MovierecError, match="not a movierec checkpoint folder"):
        open_folder(folder, resume=False)
    remove_folder(folder)
    assert (folder / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ Lightning
@pytest.mark.parametrize(("patience", "killed_after"), [(None, 3), (3, 2)])
def test_a_killed_lightning_run_resumes_to_bit_identical_weights(tmp_path, monkeypatch, patience,
                                                                 killed_after):
    from movierec.training.lightning_module import train_lightning

    task = _mlp_task(patience=patience)
    history, stats = train_lightning(task, name="mlp")
    weights, rng = task.net.state_dict(), torch.get_rng_state()
    with monkeypatch.context() as m:
        kill_at_epoch_call(m, killed_after)
        with pytest.raises(Killed):
            train_lightning(_mlp_task(patience=patience), name="mlp",
                            checkpoint=_checkpoint(tmp_path, resume=False))
    assert (tmp_path / "mlp.lightning" / "last.ckpt").is_file()
    torch.manual_seed(123)
    task = _mlp_task(patience=patience)
    got, got_stats = train_lightning(task, name="mlp", checkpoint=_checkpoint(tmp_path, True))
    assert all(torch.equal(task.net.state_dict()[k], v) for k, v in weights.items())
    assert _rows(got) == _rows(history) and got.best_epoch == history.best_epoch
    assert got_stats.steps == stats.steps and torch.equal(torch.get_rng_state(), rng)
    # finished: loaded without training, the same weights again
    kill_at_epoch_call(monkeypatch, 0)
    task = _mlp_task(patience=patience)
    train_lightning(task, name="mlp", checkpoint=_checkpoint(tmp_path, True))
    assert all(torch.equal(task.net.state_dict()[k], v) for k, v in weights.items())


def test_a_fresh_lightning_run_removes_the_best_checkpoints_an_earlier_run_left(tmp_path,
                                                                                monkeypatch):
    from movierec.training.lightning_module import train_lightning

    logs = tmp_path / "logs"
    stale = logs / "checkpoints" / "epoch=5-step=60.ckpt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a killed run's best epoch")
    (logs / "checkpoints" / "notes.txt").write_text("mine")
    train_lightning(_mlp_task(patience=None, log_dir=str(logs)), name="mlp")
    left = sorted(p.name for p in (logs / "checkpoints").iterdir())
    assert "epoch=5-step=60.ckpt" not in left and "notes.txt" in left
    assert len([n for n in left if n.endswith(".ckpt")]) == 1  # this run's best only


@pytest.mark.parametrize(("env", "first"), [
    ({}, True), ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"RANK": "3", "LOCAL_RANK": "1"}, False),
    ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, False),  # a process Lightning DDP started itself
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
])
def test_only_the_first_ddp_process_cleans_or_removes_the_checkpoint_folder(monkeypatch, env,
                                                                            first):
    from movierec.evaluation.runner import is_rank_zero

    for key in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert is_rank_zero() is first
