"""Baseline tables for issue 3: P1 and P2 on ml-100k and ml-latest-small, every baseline.

Runs the two comparison configs (selection on the validation item, 3 seeds for models with
randomness) and prints their Markdown tables with fit and evaluation wall times.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_baselines.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from movierec.config import CompareConfig, load_config
from movierec.evaluation.comparison import run_comparison
from movierec.evaluation.report import markdown
from movierec.evaluation.report_html import write_outputs

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "baselines"))
    parser.add_argument("configs", nargs="*", default=[
        str(ROOT / "configs" / "baselines-ml100k.yaml"),
        str(ROOT / "configs" / "baselines-ml-latest-small.yaml"),
    ])
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for config in args.configs:
        cfg = load_config(config, CompareConfig)
        t0 = time.perf_counter()
        comparison = run_comparison(cfg, args.data_dir)
        seconds = time.perf_counter() - t0
        write_outputs(comparison, Path(args.out) / cfg.name)
        print(markdown(comparison))
        print(f"{cfg.name}: whole comparison (selection + seeds + evaluation) {seconds:.1f} s\n")


if __name__ == "__main__":
    main()
