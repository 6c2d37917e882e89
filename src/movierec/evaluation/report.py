"""Comparison tables and charts: the rich table, a Markdown table, a bar chart per metric
(:func:`movierec.evaluation.report_html.write_outputs` writes them all with the HTML page).

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written result next to complete ones.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from movierec.evaluation.compare import Comparison, RunResult
from movierec.files import write_bytes_atomically

HEADLINE = {
    "p1": ["HR@10", "NDCG@10", "MRR"],
    "p2": ["HR@10", "NDCG@10", "Precision@10", "Recall@10", "Coverage@10", "Diversity@10",
           "Novelty@10", "GenreNDCG@10"],
    "p3": ["RMSE", "MAE", "RMSE u1", "RMSE u2", "RMSE u3", "RMSE u4", "RMSE u5"],
}


def headline_metrics(protocol: str, results: list[RunResult]) -> list[str]:
    """The metrics shown for ``protocol``, in a stable order, limited to those measured."""
    present = set().union(*(r.metrics for r in results)) if results else set()
    wanted = [m for m in HEADLINE.get(protocol, []) if m in present]
    return wanted or sorted(present)


def _cell(r: RunResult, metric: str) -> str:
    mean = r.metrics.get(metric)
    if mean is None:
        return "-"
    if len(r.seeds) > 1:
        return f"{mean:.4f}±{r.spread.get(metric, 0.0):.4f}"
    return f"{mean:.4f}"


def groups(comparison: Comparison) -> dict[tuple[str, str], list[RunResult]]:
    """Results grouped by (dataset, protocol), in the order they were run."""
    out: dict[tuple[str, str], list[RunResult]] = {}
    for r in comparison.results:
        out.setdefault((r.dataset, r.protocol), []).append(r)
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
            t.add_row(r.model, *(_cell(r, m) for m in metrics), f"{r.train_seconds:.2f}",
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
            lines.append(f"| {r.model} | " + " | ".join(_cell(r, x) for x in metrics)
                         + f" | {r.train_seconds:.2f} | {r.eval_seconds:.2f} | {params} |")
        lines.append("")
    return "\n".join(lines)


def _atomic_write(path: Path, data: bytes) -> None:
    write_bytes_atomically(path, data)


def bar_charts(comparison: Comparison, out_dir: Path) -> dict[tuple[str, str], list[Path]]:
    """One PNG per (dataset, protocol, metric): a bar per model with its spread over seeds.
    Returns the files per (dataset, protocol)."""
    import io

    from matplotlib.figure import Figure

    written: dict[tuple[str, str], list[Path]] = {}
    for (dataset, protocol), results in groups(comparison).items():
        for metric in headline_metrics(protocol, results):
            rows = [r for r in results if metric in r.metrics]
            fig = Figure(figsize=(max(4.0, 0.9 * len(rows) + 2), 3.6))
            ax = fig.add_subplot()
            names = [r.model for r in rows]
            ax.bar(names, [r.metrics[metric] for r in rows],
                   yerr=[r.spread.get(metric, 0.0) for r in rows], capsize=4, color="#4c72b0")
            ax.set_title(f"{dataset} · {protocol.upper()} · {metric}")
            ax.set_ylabel(metric)
            ax.tick_params(axis="x", labelrotation=30)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            safe = metric.replace("@", "at").replace("/", "_").replace(" ", "-")
            path = out_dir / f"{dataset}-{protocol}-{safe}.png"
            _atomic_write(path, buf.getvalue())
            written.setdefault((dataset, protocol), []).append(path)
    return written
