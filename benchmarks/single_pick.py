"""What the app answers to one pick: personal or popular?

For each of the ``--top`` most-rated movies picked alone, asks each served artifact for ten
recommendations exactly as ``POST /recommendations`` does (``Store.answer_picks``) and reports,
per model, the mean genre Jaccard between the pick and its ten results (how much the answer is
about the pick) and the mean popularity percentile of the results in the model's training data
(100 = the most rated movie). The popularity row is the ten most-rated movies other than the pick.
``--content-weights`` adds one row per weight for each hybrid artifact of the blend form (issue
16): the content term's weight changed on the loaded model (a scoring-time setting, nothing is
retrained).

    .venv/bin/python benchmarks/single_pick.py --artifact neumf=artifacts/quickstart/neumf \\
        --artifact ials=artifacts/quickstart/ials [--top 100] [--json out.json] \\
        [--artifact hybrid=DIR --content-weights 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def jaccard(a: list[str], b: list[str]) -> float:
    """Genre Jaccard; two empty sets give 0 (as EVALUATION.md defines it)."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def percentiles(counts: np.ndarray) -> np.ndarray:
    """Each item's percentile in the popularity ranking (100 = most rated; ties share a rank)."""
    order = np.argsort(np.argsort(counts, kind="stable"), kind="stable")
    return 100.0 * (order + 1) / len(counts)


def measure(name: str, store, picks: np.ndarray, k: int = 10) -> dict:
    pct = percentiles(store.popularity.astype(np.float64))
    jac, pop, popular_answers = [], [], 0
    for item in picks:
        movie_id = int(store.item_ids[item])
        answer = store.answer_picks([movie_id], [], k)
        popular_answers += bool(answer.popular)
        results = [r.item_idx for r in answer.recommendations]
        jac.append(np.mean([jaccard(store.genres[item], store.genres[r]) for r in results]))
        pop.append(np.mean(pct[results]))
    return {"model": name, "picks": len(picks), "genre_jaccard": float(np.mean(jac)),
            "popularity_percentile": float(np.mean(pop)), "popular_fallbacks": popular_answers}


def popularity_row(store, picks: np.ndarray, k: int = 10) -> dict:
    pct = percentiles(store.popularity.astype(np.float64))
    by_pop = np.argsort(-store.popularity, kind="stable")
    jac, pop = [], []
    for item in picks:
        results = [r for r in by_pop[: k + 1] if r != item][:k]
        jac.append(np.mean([jaccard(store.genres[item], store.genres[r]) for r in results]))
        pop.append(np.mean(pct[results]))
    return {"model": "popularity", "picks": len(picks), "genre_jaccard": float(np.mean(jac)),
            "popularity_percentile": float(np.mean(pop)), "popular_fallbacks": 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", action="append", required=True, help="NAME=DIR (repeat)")
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--content-weights", default=None,
                    help="hybrid artifacts: also measure these content_weight values (0,1,2)")
    args = ap.parse_args()

    from movierec.machine import machine_info
    from movierec.serving.served import parse_artifacts
    from movierec.serving.store import Store
    from movierec.serving.threads import limit_compute_threads

    limit_compute_threads(1)  # as the server runs
    rows = []
    first = None
    for name, folder in parse_artifacts(args.artifact):
        store = Store.open(folder, args.data_dir)
        picks = np.argsort(-store.n_ratings, kind="stable")[: args.top]
        if first is None:
            first = store
            rows.append(popularity_row(store, picks))
        rows.append(measure(name, store, picks))
        params = store.model.get_params()
        if args.content_weights and params.get("form") == "blend":  # a hybrid's scoring term
            for w in (float(x) for x in args.content_weights.split(",")):
                store.model.set_params(content_weight=w)
                rows.append(measure(f"{name} (content_weight {w:g})", store, picks))
            store.model.set_params(content_weight=params["content_weight"])
    print(f"# {args.top} most-rated movies picked alone; machine {machine_info()}",
          file=sys.stderr)
    print("| model | mean genre Jaccard (pick, results) | mean popularity percentile | "
          "popular fallbacks |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['genre_jaccard']:.3f} | {r['popularity_percentile']:.1f} | "
              f"{r['popular_fallbacks']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
