"""Run by test_ddp.py (not collected by pytest): trains NeuMF with Lightning DDP on the planted
data and writes what each process saw to OUT/rank<r>.json. Usage: python ddp_train.py OUT WORLD"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))

from conftest import hit_rate, make_planted  # noqa: E402

from movierec.models.base import create  # noqa: E402
from movierec.options import FitOptions  # noqa: E402


def main(out: Path, world: int) -> None:
    planted = make_planted()
    params = {"epochs": 6, "batch_size": 1000, "lr": 0.02, "holdout": True}
    run = {"num_threads": 1, "device": "cpu", "trainer": "lightning"}
    if world > 1:
        run.update(strategy="ddp", devices=world)
    model = create("neumf", **params).fit(planted.train, options=FitOptions(**run))
    (h,) = model.training_history()
    stats = model.run_stats_
    report = {
        "rank": stats.rank, "world_size": stats.world_size, "steps": stats.steps,
        "weights": hashlib.sha256(model.weights_.tobytes()).hexdigest(),
        "hit_rate": hit_rate(model, planted), "epochs": len(h.epochs),
        "batch_size": params["batch_size"],
        # holdout=True keeps one train rating per user for validation; 4 negatives per rating
        "samples_per_epoch": (planted.train.n_ratings - planted.train.n_users) * 5,
    }
    (out / f"rank{stats.rank}-of-{world}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
