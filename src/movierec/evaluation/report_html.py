"""The comparison's HTML report: tables, HR@K / NDCG@K curves, bar charts with spread over seeds,
fit time against quality, and the learning curves of every trained model.

``write_outputs`` writes ``results.json``, ``results.md`` and the page; ``write_html_report`` draws
every figure into ``out_dir`` and writes ``index.html`` linking them
by relative paths, so the folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

from movierec.evaluation.compare import Comparison, RunResult
from movierec.evaluation.report import (
    _atomic_write,
    _cell,
    bar_charts,
    groups,
    headline_metrics,
    machine_line,
    markdown,
    validation_notes,
)
from movierec.evaluation.report import label as row_label

_CUTOFF = re.compile(r"^(HR|NDCG)@(\d+)$")


def _figure(width: float = 6.0, height: float = 3.8):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _atomic_write(path, buf.getvalue())
    return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"


def cutoff_curves(results: list[RunResult], title: str, path: Path) -> Path | None:
    """HR@K and NDCG@K against K (1..20), one line per model; None when no cut-offs exist."""
    fig, axes = None, None
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in results:
        for key, value in r.metrics.items():
            m = _CUTOFF.match(key)
            if m:
                series.setdefault(m.group(1), {}).setdefault(r.model, []).append(
                    (int(m.group(2)), value))
    if not series or all(len(pts) < 2 for s in series.values() for pts in s.values()):
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("HR", "NDCG"), strict=True):
        for model, pts in series.get(name, {}).items():
            pts.sort()
            ax.plot([k for k, _ in pts], [v for _, v in pts], marker=".", label=model)
        ax.set_xlabel("K (list length)")
        ax.set_ylabel(f"{name}@K")
        ax.set_title(f"{title} · {name}@K")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def time_quality_scatter(results: list[RunResult], metric: str, title: str,
                         path: Path) -> Path | None:
    """Fit time (log scale) against ``metric``: where each model sits on the cost/quality map."""
    rows = [r for r in results if metric in r.metrics]
    if not rows:
        return None
    fig, ax = _figure()
    ranked = sorted(rows, key=lambda r: r.metrics[metric])
    for n, r in enumerate(ranked):
        x = max(r.train_seconds, 1e-3)
        ax.errorbar(x, r.metrics[metric], yerr=r.spread.get(metric, 0.0), fmt="o", capsize=3)
        # neighbours in quality alternate above / below their point so close labels stay apart
        ax.annotate(r.model, (x, r.metrics[metric]), textcoords="offset points",
                    xytext=(6, 5 if n % 2 else -11), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fit time of the final model (s, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{title} · fit time vs {metric}")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def learning_curve_figure(result: RunResult, curve: dict, path: Path) -> Path | None:
    """One trained model's per-epoch series; losses and ranking metrics on separate axes."""
    epochs = curve.get("epochs") or []
    if len(epochs) < 1:
        return None
    fig, ax = _figure()
    twin = None
    for label, values in curve["series"].items():
        loss_like = "loss" in label.lower() or "rmse" in label.lower() or "mae" in label.lower()
        target = ax
        if not loss_like:
            twin = twin or ax.twinx()
            target = twin
        target.plot(epochs, values, marker=".", label=label,
                    linestyle="-" if loss_like else "--")
    if curve.get("best_epoch"):
        ax.axvline(curve["best_epoch"], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / error")
    if twin is not None:
        twin.set_ylabel("validation ranking metric")
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.set_title(f"{result.dataset} · {result.model} · {curve['name']}", fontsize=10)
    return _save(fig, path)


def _table_html(results: list[RunResult], protocol: str) -> str:
    metrics = headline_metrics(protocol, results)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = []
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())) or "-"
        cells = "".join(f"<td>{html.escape(_cell(r, m))}</td>" for m in metrics)
        rows.append(f"<tr><th>{html.escape(row_label(r))}</th>{cells}<td>{r.train_seconds:.2f}</td>"
                    f"<td>{r.eval_seconds:.2f}</td><td>{len(r.seeds)}</td>"
                    f"<td class=p>{html.escape(params)}</td></tr>")
    return (f"<table><tr><th>model</th>{head}<th>fit s</th><th>eval s</th><th>seeds</th>"
            f"<th>hyper-parameters (chosen on validation)</th></tr>{''.join(rows)}</table>")


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;
padding:4px 8px;text-align:right}th:first-child{text-align:left}td.p{text-align:left;
font-size:12px;color:#555}img{max-width:100%;margin:6px 0;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid img{max-width:49%}"""


def write_html_report(comparison: Comparison, out_dir: str | Path) -> Path:
    """Draw every figure into ``out_dir`` and write ``index.html`` linking them; returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bars = bar_charts(comparison, out)
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(comparison.name)}</title>",
             f"<style>{_STYLE}</style><h1>{html.escape(comparison.name)}</h1>",
             f"<p>{html.escape(machine_line(comparison.machine))} Cells are means over seeds ± "
             "standard deviation where a model has randomness; hyper-parameters were chosen on "
             "validation data, never on the test part. Protocols as in docs/evaluation.md.</p>"]
    for (dataset, protocol), results in groups(comparison).items():
        title = f"{dataset} · {protocol.upper()}"
        stem = _safe(f"{dataset}-{protocol}")
        parts.append(f"<h2>{html.escape(title)}</h2>{_table_html(results, protocol)}")
        parts += [f"<p>{html.escape(note)}</p>" for note in validation_notes(results)]
        figures = [
            cutoff_curves(results, title, out / f"{stem}-cutoff-curves.png"),
            time_quality_scatter(results, headline_metrics(protocol, results)[0], title,
                                 out / f"{stem}-time-vs-quality.png"),
        ] if not any(r.variant for r in results) else []  # P4: the lines against n say it
        parts += [f'<img src="{p.name}" alt="{html.escape(p.stem)}">' for p in figures if p]
        parts.append('<div class="grid">' + "".join(
            f'<img src="{p.name}" alt="{html.escape(p.stem)}">'
            for p in bars.get((dataset, protocol), [])) + "</div>")
    curves_html = []
    seen: set[tuple[str, str]] = set()
    for r in comparison.results:
        if (r.dataset, r.model) in seen:
            continue
        seen.add((r.dataset, r.model))
        for i, curve in enumerate(r.curves):
            name = _safe(f"curve-{r.dataset}-{r.model}-{i}")
            path = learning_curve_figure(r, curve, out / f"{name}.png")
            if path:
                curves_html.append(f'<img src="{path.name}" alt="{html.escape(path.stem)}">')
    if curves_html:
        parts.append("<h2>Learning curves (first seed, final fit)</h2><div class=grid>"
                     + "".join(curves_html) + "</div>")
    page = out / "index.html"
    _atomic_write(page, "\n".join(parts).encode())
    return page


def write_outputs(comparison: Comparison, out_dir: str | Path) -> dict[str, Path | list[Path]]:
    """Write ``results.json``, ``results.md`` and the HTML report (``index.html`` with its
    figures: bar charts, HR/NDCG@K curves, fit time vs quality, learning curves)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "results.json",
                  json.dumps(comparison.to_dict(), indent=2, default=str).encode())
    _atomic_write(out / "results.md", markdown(comparison).encode())
    page = write_html_report(comparison, out)
    charts = sorted(out.glob("*.png"))
    return {"json": out / "results.json", "markdown": out / "results.md", "html": page,
            "charts": charts}
