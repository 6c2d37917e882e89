"""Lightning DDP with two CPU processes (gloo): the processes split the batches, stay in sync,
and the model learns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")

SCRIPT = Path(__file__).with_name("ddp_train.py")


def _run(out: Path, world: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out), str(world)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_ddp_two_processes_split_batches_and_agree(tmp_path):
    _run(tmp_path, 2)
    reports = [json.loads((tmp_path / f"rank{r}-of-2.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["weights"] == reports[1]["weights"]  # gradients averaged: same replicas
    # each process takes every other batch of an epoch: half of ceil(samples / batch) per epoch
    per_epoch = -(-reports[0]["samples_per_epoch"] // reports[0]["batch_size"])
    assert reports[0]["steps"] == reports[1]["steps"] == reports[0]["epochs"] * (per_epoch // 2)
    assert reports[0]["hit_rate"] >= 0.4  # popularity reaches about 0.27 on this data
