"""`movierec train --resume` against a real SIGKILL: a run on ml-100k killed once its first
checkpoint is on disk, then resumed, writes the same `model.npz`, bit for bit, as an uninterrupted
run; a fresh run removes a killed run's checkpoints; another config's checkpoint is refused in
one line; the checkpoints are gone once the artifact is saved. (benchmarks/fault_resume.py kills
at many random moments.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

GMF = ("dataset: ml-100k\nseed: 0\n"
       "model: {name: gmf, params: {factors: 8, epochs: 4, batch_size: 8192}}\n"
       "run: {num_threads: 1, progress: false}\n")
NEUMF = ("dataset: ml-100k\nseed: 0\n"
         "model: {name: neumf, params: {factors: 8, mlp_factors: 8, layers: [16, 8], "
         "dropout: 0.2, pretrain: true, pretrain_epochs: [2, 3], epochs: 2, "
         "batch_size: 8192}}\n"
         "run: {num_threads: 1, progress: false}\n")


def _train(config: Path, out: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "movierec.cli", "train", str(config), "--out",
                           str(out), "--data-dir", str(data), *extra],
                          capture_output=True, text=True)


def _train_killed_when(config: Path, out: Path, data: Path, appears: Path) -> None:
    """Start a fresh `movierec train` and SIGKILL it as soon as ``appears`` exists."""
    proc = subprocess.Popen([sys.executable, "-m", "movierec.cli", "train", str(config), "--out",
                             str(out), "--data-dir", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not appears.exists():
        assert proc.poll() is None, "the run ended before the checkpoint to kill at appeared"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.npz").exists()  # it really died before the end


def _weights(artifact: Path) -> dict[str, np.ndarray]:
    with np.load(artifact / "model.npz") as z:
        return {k: z[k] for k in z.files}


def _same(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_gmf_killed_then_resumed_writes_the_uninterrupted_weights(real_data_dir, tmp_path):
    config = tmp_path / "gmf.yaml"
    config.write_text(GMF)
    out, checkpoints = tmp_path / "gmf", tmp_path / "gmf.checkpoints"
    _train_killed_when(config, out, real_data_dir, checkpoints / "gmf.pt")
    fresh = _train(config, out, real_data_dir)  # the reference, and stale checkpoints go
    assert fresh.returncode == 0, fresh.stderr
    assert "removed the checkpoints of an unfinished earlier run" in fresh.stdout
    assert not checkpoints.exists()
    reference = tmp_path / "reference"
    out.rename(reference)

    _train_killed_when(config, out, real_data_dir, checkpoints / "gmf.pt")
    other = _train(config, out, real_data_dir, "--resume", "--set", "model.params.lr=0.5")
    assert other.returncode == 2
    assert other.stderr.strip().count("\n") == 0
    assert "checkpoint of another run (lr 0.001 -> 0.5)" in other.stderr
    assert (checkpoints / "gmf.pt").exists()  # refused, not deleted
    resumed = _train(config, out, real_data_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoints" in resumed.stdout
    assert _same(out, reference)
    assert not checkpoints.exists()


@pytest.mark.slow
def test_neumf_killed_during_mlp_pretraining_resumes_to_the_same_weights(real_data_dir,
                                                                         tmp_path):
    config = tmp_path / "neumf.yaml"
    config.write_text(NEUMF)
    reference = tmp_path / "reference"
    assert _train(config, reference, real_data_dir).returncode == 0
    out, checkpoints = tmp_path / "neumf", tmp_path / "neumf.checkpoints"
    _train_killed_when(config, out, real_data_dir, checkpoints / "mlp.pt")
    assert not (checkpoints / "neumf.pt").exists()
    resumed = _train(config, out, real_data_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _same(out, reference)
    assert not checkpoints.exists()


def test_resume_without_checkpoints_trains_from_the_start(real_data_dir, tmp_path):
    config = tmp_path / "gmf.yaml"
    config.write_text(GMF.replace("epochs: 4", "epochs: 1"))
    done = _train(config, tmp_path / "gmf", real_data_dir, "--resume")
    assert done.returncode == 0, done.stderr
    assert "no checkpoint in" in done.stdout and "training from the start" in done.stdout
    assert (tmp_path / "gmf" / "model.npz").exists()
