"""A synthetic release says so wherever its name is shown; a real one does not."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.data.loading import load_dataset
from movierec.data.provenance import SYNTHETIC_FILE, display_name, is_synthetic_name
from movierec.models.artifacts import read_config, save
from movierec.models.base import create

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def synthetic_100k(tmp_path_factory):
    """A synthetic ML-100K written by the CLI into a folder named like the real release."""
    folder = tmp_path_factory.mktemp("data") / "ml-100k"
    result = run("datasets", "synthesize", "ml-100k", "--out", str(folder), "--seed", "4",
                 "--json")
    assert result.exit_code == 0, result.output
    return folder


def test_synthesize_writes_the_real_layout_and_a_marker(synthetic_100k):
    names = {p.name for p in synthetic_100k.iterdir()}
    assert {"u.data", "u.item", "u.user", "u1.base", SYNTHETIC_FILE} <= names
    marker = json.loads((synthetic_100k / SYNTHETIC_FILE).read_text())
    assert marker["preset"] == "ml-100k" and marker["seed"] == 4
    assert marker["n_ratings"] == 100_000


def test_info_json_says_synthetic_and_the_real_release_does_not(synthetic_100k, real_data_dir):
    fake = json.loads(run("datasets", "info", str(synthetic_100k), "--json").stdout)
    assert fake["name"] == "ml-100k (synthetic, seed 4)"
    # through the registry name too: a synthetic folder where the real release would be
    by_name = run("datasets", "info", "ml-100k", "--data-dir", str(synthetic_100k.parent),
                  "--json")
    assert json.loads(by_name.stdout)["name"] == "ml-100k (synthetic, seed 4)"
    real = json.loads(run("datasets", "info", "ml-100k", "--data-dir", str(real_data_dir),
                          "--json").stdout)
    assert real["name"] == "ml-100k" and not is_synthetic_name(real["name"])


def test_info_table_title_says_synthetic(synthetic_100k):
    assert "ml-100k (synthetic, seed 4)" in run("datasets", "info", str(synthetic_100k)).stdout


def test_a_saved_artifact_records_the_synthetic_name(synthetic_100k, tmp_path):
    ds = load_dataset(synthetic_100k)
    model = create("popularity").fit(ds)
    save(model, tmp_path / "art")
    assert is_synthetic_name(read_config(tmp_path / "art")["dataset"]["name"])


def test_evaluate_json_says_synthetic(synthetic_100k, real_data_dir):
    result = run("evaluate", "--model", "popularity", "--dataset", str(synthetic_100k),
                 "--protocol", "p2", "--split", "generate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"] == "ml-100k (synthetic, seed 4)"
    real = run("evaluate", "--model", "popularity", "--data-dir", str(real_data_dir),
               "--protocol", "p2", "--json")
    assert json.loads(real.stdout)["dataset"] == "ml-100k"


def test_a_damaged_marker_still_marks_the_folder(tmp_path):
    (tmp_path / SYNTHETIC_FILE).write_text("{not json")
    assert display_name("x", tmp_path) == "x (synthetic)"
    assert display_name("x", tmp_path / "elsewhere") == "x"


def test_synthesize_refuses_a_folder_of_other_files_before_any_work(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["datasets", "synthesize", "ml-1m", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_synthesize_refuses_an_unknown_preset_and_a_layout_that_cannot_hold_it(tmp_path):
    bad = runner.invoke(app, ["datasets", "synthesize", "ml-7m", "--out", str(tmp_path / "a")])
    assert bad.exit_code != 0 and "ml-32m" in str(bad.exception)
    half = runner.invoke(app, ["datasets", "synthesize", "ml-20m", "--out",
                               str(tmp_path / "b"), "--layout", "ml-100k"])
    assert half.exit_code != 0 and "whole stars" in str(half.exception)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
