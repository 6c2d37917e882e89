"""Comparison outputs: JSON, Markdown and the HTML report with every figure it links."""

from __future__ import annotations

import json
import re

import numpy as np

from movierec.evaluation.compare import Comparison, RunResult, learning_curves
from movierec.evaluation.report import markdown
from movierec.evaluation.report_html import write_outputs
from movierec.training.history import TrainingHistory

PNG = b"\x89PNG\r\n\x1a\n"


def result(model: str, protocol: str, hr10: float, seeds=(0,), curves=()) -> RunResult:
    metrics = {f"HR@{k}": min(1.0, hr10 * k / 10) for k in range(1, 21)}
    metrics |= {f"NDCG@{k}": metrics[f"HR@{k}"] / 2 for k in range(1, 21)}
    metrics["MRR"] = hr10 / 3
    spread = {k: 0.01 * (len(seeds) > 1) for k in metrics}
    return RunResult("toy", protocol, model, {"l2": 1.0}, list(seeds), metrics, spread,
                     [metrics] * len(seeds), 0.5, 0.1, curves=list(curves))


def comparison() -> Comparison:
    curve = {"name": "GMF", "epochs": [1, 2, 3], "best_epoch": 2,
             "series": {"log_loss": [0.6, 0.4, 0.35], "HR@10": [0.3, 0.5, 0.48]}}
    return Comparison("toy-run", [
        result("popularity", "p1", 0.3),
        result("gmf", "p1", 0.5, seeds=(0, 1, 2), curves=[curve]),
    ], {"cpus": 2, "platform": "test", "python": "3.11"})


def test_markdown_shows_spread_only_for_repeated_models():
    text = markdown(comparison())
    assert re.search(r"\| gmf \| 0\.5000±0\.0100 \|", text)
    assert "| popularity | 0.3000 |" in text


def test_html_report_links_every_figure_and_each_is_a_png(tmp_path):
    written = write_outputs(comparison(), tmp_path)
    page = written["html"].read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    linked = sorted(set(re.findall(r'src="([^"]+\.png)"', page)))
    assert linked == pngs
    assert any("cutoff-curves" in p for p in pngs)  # HR@K / NDCG@K for K = 1..20
    assert any("time-vs-quality" in p for p in pngs)
    assert any(p.startswith("curve-toy-gmf") for p in pngs)  # the learning curve
    for name in pngs:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    data = json.loads(written["json"].read_text())
    assert {r["model"] for r in data["results"]} == {"popularity", "gmf"}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_learning_curves_come_from_every_training_stage():
    ncf = TrainingHistory("gmf pre-training", monitor="valid HR@10")
    ncf.add(**{"train loss": 0.5, "seconds": 1.0, "valid HR@10": 0.2})
    svd = TrainingHistory("svd", monitor="valid RMSE", mode="min")
    svd.add(**{"train RMSE": 1.0, "valid RMSE": 1.1})
    svd.add(**{"train RMSE": 0.9})
    svd.best_epoch = 1

    class Trained:
        def training_history(self):
            return [ncf, svd, TrainingHistory("empty")]

    class OneShot:
        def training_history(self):
            return []

    first, second = learning_curves(Trained())  # an empty history draws nothing
    assert first["name"] == "gmf pre-training"
    assert set(first["series"]) == {"train loss", "valid HR@10"}  # timings are not a curve
    assert second["series"]["train RMSE"] == [1.0, 0.9]
    assert np.isnan(second["series"]["valid RMSE"][1]) and second["best_epoch"] == 1
    assert learning_curves(OneShot()) == []
