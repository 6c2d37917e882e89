"""Comparison tables and charts: the rich table, a Markdown table, a bar chart per metric
(:func:`movierec.evaluation.report_html.write_outputs` writes them all with the HTML page).

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written result next to complete ones.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.table import Table

from movierec.evaluation.compare import Comparison, RunResult
from movierec.files import write_bytes_atomically

HEADLINE = {
    "p1": ["HR@10", "NDCG@10", "MRR"],
    "p2": ["HR@10", "NDCG@10", "Precision@10", "Recall@10", "Coverage@10", "Diversity@10",
           "Novelty@10", "GenreNDCG@10", "TailHR@10", "HeadHR@10"],
    "p3": ["RMSE", "MAE", "RMSE u1", "RMSE u2", "RMSE u3", "RMSE u4", "RMSE u5"],
    "p4": ["HR@10", "NDCG@10", "Recall@10", "Coverage@10", "Diversity@10", "GenreNDCG@10",
           "Novelty@10", "PopularityPercentile@10", "TailHR@10", "HeadHR@10", "UnknownPicks",
           "users", "FoldInMs"],
    "p4-vae": ["NDCG@100", "Recall@20", "Recall@50", "users", "FoldInMs"],
    "holdout": ["Precision@{k}", "Recall@{k}", "NDCG@{k}", "MAP@{k}", "MAP-MSR@{k}",
                "Coverage@{k}", "Diversity@{k}", "Novelty@{k}", "GenreNDCG@{k}", "TailHR@{k}",
                "HeadHR@{k}"],
}
_LIST_LENGTH = re.compile(r"^Coverage@(\d+)$")


def headline_metrics(protocol: str, results: list[RunResult]) -> list[str]:
    """The metrics shown for ``protocol``, in a stable order, limited to those measured (the
    holdout's list length ``k`` is read from its ``Coverage@k``)."""
    present = set().union(*(r.metrics for r in results)) if results else set()
    k = next((m.group(1) for key in sorted(present) if (m := _LIST_LENGTH.match(key))), "10")
    wanted = [m.format(k=k) for m in HEADLINE.get(protocol, [])]
    wanted = [m for m in wanted if m in present]
    return wanted or sorted(present)


def label(r: RunResult) -> str:
    """A result's row name: the model, and its protocol variant (P4's ``n=5``) when it has one."""
    return f"{r.model} · {r.variant}" if r.variant else r.model


def _cell(r: RunResult, metric: str) -> str:
    mean = r.metrics.get(metric)
    if mean is None:
        return "-"
    if len(r.seeds) > 1:
        return f"{mean:.4f}±{r.spread.get(metric, 0.0):.4f}"
    return f"{mean:.4f}"


def groups(comparison: Comparison) -> dict[tuple[str, str], list[RunResult]]:
    """Results grouped by (dataset, protocol), in the order they were run; P4's rows (one per
    model and ``n``) are ordered by ``n``, then by run order, so each ``n`` reads as one block."""
    out: dict[tuple[str, str], list[RunResult]] = {}
    for r in comparison.results:
        out.setdefault((r.dataset, r.protocol), []).append(r)
    for key, rows in out.items():
        if all(r.variant.startswith("n=") for r in rows):
            out[key] = sorted(rows, key=lambda r: int(r.variant[2:]))
    return out


def rich_tables(comparison: Comparison) -> list[Table]:
    tables = []
    for (dataset, protocol), results in groups(comparison).items():
        metrics = headline_metrics(protocol, results)
        t = Table(title=f"{dataset} · {protocol.upper()}")
        t.add_column("model", style="bold")
        for m in metrics:
            t.add_column(m, justify="right")
        t.add_column("fit s", justify="right")
        t.add_column("eval s", justify="right")
        t.add_column("seeds", justify="right")
        for r in results:
            t.add_row(label(r), *(_cell(r, m) for m in metrics), f"{r.train_seconds:.2f}",
                      f"{r.eval_seconds:.2f}", str(len(r.seeds)))
        tables.append(t)
    return tables


def machine_line(m: dict) -> str:
    """One sentence naming the machine a comparison ran on."""
    load = m.get("load_average")
    return (f"Machine: {m.get('cpu', 'unknown CPU')}, {m.get('cpus')} CPUs, {m.get('platform')}, "
            f"Python {m.get('python')}" + (f", load average at the end {load}" if load else "")
            + ".")


def markdown(comparison: Comparison) -> str:
    lines = [f"# {comparison.name}", "",
             f"{machine_line(comparison.machine)} "
             "Mean ± standard deviation over seeds where a model has randomness.", ""]
    for (dataset, protocol), results in groups(comparison).items():
        metrics = headline_metrics(protocol, results)
        lines += [f"## {dataset} · {protocol.upper()}", "",
                  "| model | " + " | ".join(metrics) + " | fit s | eval s | params |",
                  "|---|" + "---:|" * (len(metrics) + 2) + "---|"]
        for r in results:
            params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())) or "-"
            lines.append(f"| {label(r)} | " + " | ".join(_cell(r, x) for x in metrics)
                         + f" | {r.train_seconds:.2f} | {r.eval_seconds:.2f} | {params} |")
        lines += ["", *(f"{note}\n" for note in validation_notes(results))]
    return "\n".join(lines)


def validation_notes(results: list[RunResult]) -> list[str]:
    """One sentence per model whose grid was scored on a sample of the validation users."""
    return [f"{label(r)}: hyper-parameters chosen on {r.validation_users:,} of "
            f"{r.validation_users_total:,} validation users (a seeded sample; "
            "validation.max_users)." for r in results
            if r.validation_users and r.validation_users < r.validation_users_total]


def _atomic_write(path: Path, data: bytes) -> None:
    write_bytes_atomically(path, data)


def _by_n(ax, rows: list[RunResult], metric: str) -> None:
    """P4: the metric against the number of picks, one line per model (spread as error bars)."""
    lines: dict[str, list[RunResult]] = {}
    for r in rows:
        lines.setdefault(r.model, []).append(r)
    for model, points in lines.items():
        points.sort(key=lambda r: int(r.variant[2:]))
        ax.errorbar([int(r.variant[2:]) for r in points], [r.metrics[metric] for r in points],
                    yerr=[r.spread.get(metric, 0.0) for r in points], marker="o", capsize=3,
                    label=model)
    ax.set_xlabel("n (picks folded in)")
    ax.set_xscale("log")
    ax.set_xticks(sorted({int(r.variant[2:]) for r in rows}))
    ax.set_xticklabels([str(n) for n in sorted({int(r.variant[2:]) for r in rows})])
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def bar_charts(comparison: Comparison, out_dir: Path) -> dict[tuple[str, str], list[Path]]:
    """One PNG per (dataset, protocol, metric): a bar per model with its spread over seeds (for
    P4, a line per model against n). Returns the files per (dataset, protocol)."""
    import io

    from matplotlib.figure import Figure

    written: dict[tuple[str, str], list[Path]] = {}
    for (dataset, protocol), results in groups(comparison).items():
        per_n = all(r.variant.startswith("n=") for r in results)
        for metric in headline_metrics(protocol, results):
            rows = [r for r in results if metric in r.metrics]
            fig = Figure(figsize=(6.0, 3.8) if per_n else (max(4.0, 0.9 * len(rows) + 2), 3.6))
            ax = fig.add_subplot()
            if per_n:
                _by_n(ax, rows, metric)
            else:
                ax.bar([label(r) for r in rows], [r.metrics[metric] for r in rows],
                       yerr=[r.spread.get(metric, 0.0) for r in rows], capsize=4,
                       color="#4c72b0")
                ax.tick_params(axis="x", labelrotation=30)
                for tick in ax.get_xticklabels():
                    tick.set_horizontalalignment("right")
            ax.set_title(f"{dataset} · {protocol.upper()} · {metric}")
            ax.set_ylabel(metric)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            safe = metric.replace("@", "at").replace("/", "_").replace(" ", "-")
            path = out_dir / f"{dataset}-{protocol}-{safe}.png"
            _atomic_write(path, buf.getvalue())
            written.setdefault((dataset, protocol), []).append(path)
    return written
