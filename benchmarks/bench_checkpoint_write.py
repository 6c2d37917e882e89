"""What a resumable run pays per epoch: the time to write one plain-loop checkpoint (state_dict,
Adam state, best weights, random states; temp file, fsync, rename) for the NeuMF recipes' network
sizes (64 + 64 factors, tower [128, 64]).

    PYTHONPATH=src python benchmarks/bench_checkpoint_write.py
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from movierec.training.checkpoints import StageCheckpoint, loop_state, what_is_trained
from movierec.training.history import EarlyStopping, TrainingHistory
from movierec.training.networks import NeuMF

SIZES = {"ml-100k": (943, 1682), "ml-latest-small": (610, 9742), "ml-1m": (6040, 3706)}


def main() -> None:
    for name, (n_users, n_items) in SIZES.items():
        net = NeuMF(n_users, n_items, 64, 64, [128, 64], 0.2)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        idx = torch.zeros(4, dtype=torch.long)
        net(idx, idx).sum().backward()
        opt.step()  # Adam's moments exist, as after any epoch
        scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, 1.0)
        stopper = EarlyStopping(3)
        stopper.update(1, 0.5, lambda net=net: copy.deepcopy(net.state_dict()))
        task = SimpleNamespace(device=torch.device("cpu"), div_gen=torch.Generator(),
                               settings=SimpleNamespace(num_threads=2))
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = StageCheckpoint(Path(folder), "neumf",
                                         what_is_trained("neumf", "torch", {}, "data", None), False)
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                checkpoint.save(loop_state(epoch=1, finished=False, net=net, optimizer=opt,
                                           scheduler=scheduler, stopper=stopper,
                                           history=TrainingHistory("neumf"), steps=1, task=task))
                times.append(time.perf_counter() - t0)
            size = checkpoint.path.stat().st_size / 1e6
        times.sort()
        print(f"{name}: checkpoint {size:.1f} MB, write {times[0] * 1e3:.0f} ms (min of 7), "
              f"median {times[3] * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
