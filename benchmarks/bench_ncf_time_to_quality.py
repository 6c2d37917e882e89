"""Time to quality: from a cold start to a saved NeuMF artifact on ml-100k, then its P1 figures.

Target (issue 4): a saved artifact with ml-100k HR@10 >= 0.59 (P1, fixed files) within 60 s of
wall time on the reference 2-core machine. The clock covers the whole ``movierec train`` process
(interpreter start, imports, loading and splitting the data, training, writing the artifact);
the evaluation afterwards (``movierec evaluate --artifact``) is not timed. Prints one JSON
object per seed.

    .venv/bin/python benchmarks/bench_ncf_time_to_quality.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from movierec.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
MOVIEREC = [sys.executable, "-m", "movierec.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "neumf-ml100k-fast.yaml"))
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "artifact"
            t0 = time.perf_counter()
            subprocess.run([*MOVIEREC, "train", str(args.config), "--data-dir", args.data_dir,
                            "--out", str(out), "--seed", str(seed)], check=True,
                           capture_output=True)
            seconds = time.perf_counter() - t0
            ev = subprocess.run([*MOVIEREC, "evaluate", "--artifact", str(out), "--dataset",
                                 "ml-100k", "--data-dir", args.data_dir, "--protocol", "p1",
                                 "--json"], check=True, capture_output=True, text=True)
            metrics = json.loads(ev.stdout)
        print(json.dumps({
            "benchmark": "ncf_time_to_quality", "config": str(args.config), "seed": seed,
            "seconds_to_artifact": round(seconds, 1), "HR@10": round(metrics["HR@10"], 4),
            "NDCG@10": round(metrics["NDCG@10"], 4), "target_seconds": 60,
            "target_HR@10": 0.59, "met": bool(seconds <= 60 and metrics["HR@10"] >= 0.59),
            "machine": machine_info(),
        }), flush=True)


if __name__ == "__main__":
    main()
