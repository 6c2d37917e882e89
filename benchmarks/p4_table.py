"""The P4 (new users) table: every folding model at n = 1, 3, 5, 10, 20, and the Mult-VAE form.

    python benchmarks/p4_table.py configs/newuser-ml100k.yaml \\
        configs/newuser-ml-latest-small.yaml --data-dir ../shared/data [--out results/p4]
    python benchmarks/p4_table.py --from results/newuser-ml-100k/results.json ...   # print only

Runs each `compare` config (protocol p4; see docs/evaluation.md) unless ``--from`` names
``results.json`` files a compare run wrote, then prints Markdown tables: per dataset, one row per
model and n with HR@10, NDCG@10, recall@10, coverage@10, novelty@10 and the popularity percentile
(mean ± std over the model seeds), each model's HR@10 and NDCG@10 over popularity's at the same n,
and the Mult-VAE form (NDCG@100, recall@20, recall@50). States the machine and its load before
and after: fold-in times are wall clock on a shared machine. Quality, not speed: no target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

P4_COLUMNS = ["HR@10", "NDCG@10", "Recall@10", "Coverage@10", "Novelty@10",
              "PopularityPercentile@10", "FoldInMs"]
VAE_COLUMNS = ["NDCG@100", "Recall@20", "Recall@50", "FoldInMs"]


def _cell(row: dict, key: str) -> str:
    mean, spread = row["metrics"].get(key), row["spread"].get(key, 0.0)
    if mean is None:
        return "-"
    digits = 1 if key in ("PopularityPercentile@10", "FoldInMs") else 4
    if len(row["seeds"]) > 1 and key != "FoldInMs":
        return f"{mean:.{digits}f} ± {spread:.{digits}f}"
    return f"{mean:.{digits}f}"


def tables(results: list[dict]) -> str:
    """Markdown: per dataset, the first-n rows by n then model, then the Mult-VAE form."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset and r["protocol"] == "p4"]
        rows.sort(key=lambda r: int(r["variant"][2:]))
        floor = {r["variant"]: r["metrics"] for r in rows if r["model"] == "popularity"}
        out += [f"## {dataset} · P4 (new users; first n ratings folded in)", "",
                "| n | model | users | " + " | ".join(P4_COLUMNS)
                + " | HR / pop | NDCG / pop | seeds |",
                "|---:|---|---:|" + "---:|" * (len(P4_COLUMNS) + 3)]
        for r in rows:
            pop = floor.get(r["variant"], {})
            ratio = [f"{r['metrics'][m] / pop[m]:.2f}" if pop.get(m) else "-"
                     for m in ("HR@10", "NDCG@10")]
            out.append(f"| {r['variant'][2:]} | {r['model']} | {r['metrics']['users']:.0f} | "
                       + " | ".join(_cell(r, c) for c in P4_COLUMNS)
                       + f" | {' | '.join(ratio)} | {len(r['seeds'])} |")
        vae = [r for r in results if r["dataset"] == dataset and r["protocol"] == "p4-vae"]
        if vae:
            out += ["", f"## {dataset} · P4, Mult-VAE form (fold in 80%, predict 20%)", "",
                    "| model | users | " + " | ".join(VAE_COLUMNS) + " | seeds |",
                    "|---|---:|" + "---:|" * (len(VAE_COLUMNS) + 1)]
            out += [f"| {r['model']} | {r['metrics']['users']:.0f} | "
                    + " | ".join(_cell(r, c) for c in VAE_COLUMNS) + f" | {len(r['seeds'])} |"
                    for r in vae]
        params = {r["model"]: r["params"] for r in rows}
        out += ["", "Hyper-parameters: " + "; ".join(
            f"{m} {p or '(defaults)'}" for m, p in params.items()), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="*", type=Path, help="compare configs with protocol p4")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("results/p4"),
                        help="folder for each run's compare outputs")
    parser.add_argument("--from", dest="from_files", type=Path, nargs="*", default=[],
                        help="results.json files of earlier compare runs (nothing is run)")
    args = parser.parse_args(argv)
    if not args.configs and not args.from_files:
        parser.error("give compare configs to run, or --from results.json files")

    from movierec.machine import machine_info

    print(f"machine before: {machine_info()}", file=sys.stderr)
    results: list[dict] = []
    for path in args.from_files:
        results += json.loads(path.read_text())["results"]
    if args.configs:
        from movierec.config import CompareConfig, load_config
        from movierec.evaluation.comparison import run_comparison
        from movierec.evaluation.report import write_outputs

        for config in args.configs:
            cfg = load_config(config, CompareConfig)
            comparison = run_comparison(cfg, args.data_dir,
                                        progress=lambda m: print(m, file=sys.stderr))
            write_outputs(comparison, args.out / cfg.name)
            results += comparison.to_dict()["results"]
    print(tables(results))
    load = os.getloadavg()
    print(f"\nmachine: {machine_info()['cpu']}, {os.cpu_count()} CPUs; load average at the end "
          f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)")


if __name__ == "__main__":
    main()
