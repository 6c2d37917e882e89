"""Grid selection at scale scores a seeded sample of the validation users, and says so."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from movierec.cli import app
from movierec.config import ModelSpec, ValidationSpec
from movierec.data.loading import load_dataset
from movierec.data.splits import prepare_split, with_validation
from movierec.evaluation.compare import run_model, sample_validation_users
from movierec.evaluation.report import markdown


def _split(real_data_dir):
    full = load_dataset("ml-100k", real_data_dir)
    return with_validation(prepare_split(full, real_data_dir, "fixed"), "last", 0.1, 0, 99)


def test_sample_is_seeded_and_keeps_negatives_aligned(real_data_dir):
    split = _split(real_data_dir)
    cut, used, total = sample_validation_users(split, 200, seed=3)
    assert (used, total) == (200, 943)
    assert len(np.unique(cut.valid.user_idx)) == 200 == cut.valid.n_ratings
    assert cut.valid_negatives.shape == (200, 99)
    keep = np.isin(split.valid.user_idx, cut.valid.user_idx)
    np.testing.assert_array_equal(cut.valid_negatives, split.valid_negatives[keep])
    assert cut.train is split.train  # train is untouched
    again, _, _ = sample_validation_users(split, 200, seed=3)
    other, _, _ = sample_validation_users(split, 200, seed=4)
    np.testing.assert_array_equal(again.valid.user_idx, cut.valid.user_idx)
    assert not np.array_equal(other.valid.user_idx, cut.valid.user_idx)
    whole, used, total = sample_validation_users(split, None, seed=3)
    assert whole is split and used == total == 943


def test_run_model_selects_on_the_sample_and_the_report_says_how_many(real_data_dir):
    full = load_dataset("ml-100k", real_data_dir)
    split = prepare_split(full, real_data_dir, "fixed")
    spec = ModelSpec(name="itemknn", grid={"k": [10, 50]})
    [result] = run_model(spec, split, ValidationSpec(max_users=300), ["p1"], [0])
    assert (result.validation_users, result.validation_users_total) == (300, 943)
    assert len(result.selection) == 2
    from movierec.evaluation.compare import Comparison

    text = markdown(Comparison("t", [result], {}))
    assert "chosen on 300 of 943 validation users" in text
    [whole] = run_model(spec, split, ValidationSpec(), ["p1"], [0])  # default 10,000 > 943
    assert (whole.validation_users, whole.validation_users_total) == (943, 943)
    assert "validation users" not in markdown(Comparison("t", [whole], {}))


def test_compare_config_takes_max_users(real_data_dir, tmp_path):
    config = tmp_path / "cmp.yaml"
    config.write_text("name: s\ndatasets: [ml-100k]\nprotocols: [p1]\nseeds: [0]\n"
                      "validation: {max_users: 100, seed: 1}\n"
                      "models:\n  - {name: itemknn, grid: {k: [10, 50]}}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compare", str(config), "--data-dir", str(real_data_dir),
                                      "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    [row] = json.loads((out / "results.json").read_text())["results"]
    assert (row["validation_users"], row["validation_users_total"]) == (100, 943)
    assert "chosen on 100 of 943 validation users" in (out / "index.html").read_text()
