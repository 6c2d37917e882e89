"""The command line as a user drives it: output shapes, exit codes, error messages."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from movierec.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def run_main(*args: str, capsys=None):
    """Through the real entry point, which turns library errors into exit code 2."""
    import sys

    from movierec.cli import main

    old = sys.argv
    sys.argv = ["movierec", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    return exc.value.code


def test_datasets_list_names_every_release(real_data_dir):
    result = run("datasets", "list", "--data-dir", str(real_data_dir), "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                         "ml-latest-small", "ml-latest"}
    assert rows["ml-100k"]["local"].endswith("ml-100k")
    assert rows["ml-20m"]["local"] is None


@pytest.mark.parametrize(
    ("name", "users", "ratings", "items"),
    [("ml-100k", 943, 100_000, 1682), ("ml-latest-small", 610, 100_836, 9742)],
)
def test_datasets_info_json(real_data_dir, name, users, ratings, items):
    result = run("datasets", "info", name, "--data-dir", str(real_data_dir), "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert (info["n_users"], info["n_ratings"], info["n_items"]) == (users, ratings, items)
    assert sum(info["rating_histogram"].values()) == ratings


def test_datasets_info_table(real_data_dir):
    result = run("datasets", "info", "ml-100k", "--data-dir", str(real_data_dir))
    assert result.exit_code == 0
    assert "rating histogram" in result.stdout and "Drama" in result.stdout


def test_unknown_dataset_lists_known_ones(capsys, tmp_path):
    code = run_main("datasets", "info", "ml-1000k", "--data-dir", str(tmp_path))
    assert code == 2
    err = capsys.readouterr().err
    assert "ml-1000k" in err and "ml-100k" in err and "ml-latest-small" in err


def test_missing_offline_dataset_says_where_to_put_files(capsys, tmp_path):
    code = run_main("datasets", "info", "ml-100k", "--data-dir", str(tmp_path), "--no-download")
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "u.data" in err and str(tmp_path) in err


def test_evaluate_popularity_oracle(real_data_dir):
    """The issue's check: the most-popular model under P1 on the fixed files."""
    result = run("evaluate", "--model", "popularity", "--dataset", "ml-100k", "--data-dir",
                 str(real_data_dir), "--protocol", "p1", "--json")
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert (round(out["HR@10"], 4), round(out["NDCG@10"], 4)) == (0.3160, 0.1659)


def test_evaluate_with_another_negatives_file(real_data_dir, tmp_path):
    """--negatives: a freshly generated negatives file (another seed) gives other figures."""
    from movierec.data.loading import load_dataset
    from movierec.data.splits import generate_loo, write_loo_files

    full = load_dataset("ml-100k", real_data_dir)
    folder = write_loo_files(generate_loo(full, seed=7), tmp_path / "seed7")
    result = run("evaluate", "--model", "popularity", "--dataset", "ml-100k", "--data-dir",
                 str(real_data_dir), "--negatives", str(folder / "loo_negatives.tsv"), "--json")
    assert result.exit_code == 0
    hr = json.loads(result.stdout)["HR@10"]
    assert hr != pytest.approx(0.31601, abs=1e-5) and 0.25 < hr < 0.40


def test_evaluate_p2_prints_beyond_accuracy(real_data_dir):
    result = run("evaluate", "--model", "popularity", "--dataset", "ml-100k", "--data-dir",
                 str(real_data_dir), "--protocol", "p2", "--json")
    out = json.loads(result.stdout)
    for key in ("HR@10", "NDCG@10", "Coverage@10", "Diversity@10", "Novelty@10",
                "GenreNDCG@10"):
        assert 0 <= out[key]


def test_evaluate_without_a_model_is_an_error(capsys, real_data_dir):
    code = run_main("evaluate", "--dataset", "ml-100k", "--data-dir", str(real_data_dir))
    assert code == 2
    assert "--model" in capsys.readouterr().err


def test_train_then_evaluate_artifact_gives_same_figures(real_data_dir, tmp_path):
    config = tmp_path / "pop.yaml"
    config.write_text("dataset: ml-100k\nmodel: {name: popularity}\n")
    art = tmp_path / "art"
    assert run("train", str(config), "--data-dir", str(real_data_dir), "--out",
               str(art)).exit_code == 0
    assert (art / "config.json").exists()
    result = run("evaluate", "--artifact", str(art), "--dataset", "ml-100k", "--data-dir",
                 str(real_data_dir), "--json")
    assert round(json.loads(result.stdout)["HR@10"], 4) == 0.3160


def test_evaluate_takes_the_dataset_from_config_and_artifact(real_data_dir, tmp_path):
    """Without --dataset, the config's dataset (or the artifact's release) is evaluated."""
    config = tmp_path / "pop.yaml"
    config.write_text("dataset: ml-latest-small\nmodel: {name: popularity}\n")
    result = run("evaluate", "--config", str(config), "--data-dir", str(real_data_dir), "--json")
    out = json.loads(result.stdout)
    assert out["dataset"] == "ml-latest-small" and out["n_test_users"] == 610
    assert round(out["HR@10"], 4) == 0.5951
    art = tmp_path / "art"
    assert run("train", str(config), "--data-dir", str(real_data_dir), "--out",
               str(art)).exit_code == 0
    result = run("evaluate", "--artifact", str(art), "--data-dir", str(real_data_dir), "--json")
    assert json.loads(result.stdout)["dataset"] == "ml-latest-small"


def test_compare_writes_tables_and_charts(real_data_dir, tmp_path):
    config = tmp_path / "cmp.yaml"
    config.write_text(
        "name: tiny\ndatasets: [ml-100k]\nprotocols: [p1]\nseeds: [0, 1]\n"
        "models:\n  - name: random\n  - name: popularity\n"
        "  - name: itemknn\n    grid: {k: [20, 50]}\n    params: {shrink: 10.0}\n"
    )
    out = tmp_path / "out"
    result = run("compare", str(config), "--data-dir", str(real_data_dir), "--out", str(out))
    assert result.exit_code == 0, result.stdout
    data = json.loads((out / "results.json").read_text())
    by_model = {r["model"]: r for r in data["results"]}
    assert by_model["random"]["seeds"] == [0, 1]  # random repeats over seeds
    assert by_model["popularity"]["seeds"] == [0]  # deterministic: one run
    assert len(by_model["itemknn"]["selection"]) == 2  # both grid points tried on validation
    assert round(by_model["popularity"]["metrics"]["HR@10"], 4) == 0.3160
    assert "| popularity |" in (out / "results.md").read_text()
    pngs = sorted(out.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    page = (out / "index.html").read_text()
    assert all(f'src="{p.name}"' in page for p in pngs)


def test_compare_config_typo_is_named(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("datasets: [ml-100k]\nmodels: [{name: popularity}]\nprotocol: [p1]\n")
    assert run_main("compare", str(config)) == 2
    assert "protocol" in capsys.readouterr().err


def test_compare_p3_runs_the_five_canonical_folds(real_data_dir, tmp_path):
    """P3 in compare: u1..u5 per fold and their mean; a grid is searched on a slice of u1.base."""
    config = tmp_path / "p3.yaml"
    config.write_text(
        "name: p3\ndatasets: [ml-100k]\nprotocols: [p3]\nseeds: [0]\nmodels:\n"
        "  - {name: global-mean, grid: {}}\n"
        "  - {name: biases, grid: {reg_user: [5.0, 15.0]}, params: {reg_item: 10.0}}\n"
    )
    out = tmp_path / "out"
    assert run("compare", str(config), "--data-dir", str(real_data_dir), "--out",
               str(out)).exit_code == 0
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    mean = rows["global-mean"]["metrics"]
    folds = [mean[f"RMSE u{i}"] for i in range(1, 6)]
    assert mean["RMSE"] == pytest.approx(sum(folds) / 5)
    assert 1.05 < mean["RMSE"] < 1.2  # predicting the mean: about 1.13 stars of error
    assert rows["biases"]["metrics"]["RMSE"] < mean["RMSE"] - 0.1
    assert len(rows["biases"]["selection"]) == 2


def test_datasets_labels_exports_the_labelled_table(real_data_dir, tmp_path):
    """Soft labels of the fixed train part: each rating then its 4 sampled unrated items."""
    import polars as pl

    out = tmp_path / "labels.tsv"
    result = run("datasets", "labels", "ml-100k", "--out", str(out), "--mode", "soft",
                 "--data-dir", str(real_data_dir), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    table = pl.read_csv(out, separator="\t")
    assert table.columns == ["index", "userid", "movieid", "interaction", "rating"]
    assert summary["observed"] == 100_000 - 943 and table.height == 5 * summary["observed"]
    observed = table.filter(pl.col("rating").is_not_null())
    by_rating = dict(observed.group_by("rating").agg(pl.col("interaction").first()).iter_rows())
    assert by_rating == {5.0: 1.0, 4.0: 1.0, 3.0: 0.75, 2.0: 0.25, 1.0: 0.0}
    assert (table.filter(pl.col("rating").is_null())["interaction"] == 0).all()
    assert not list(tmp_path.glob(".*tmp"))


def test_datasets_labels_rejects_an_unknown_mode(capsys, real_data_dir, tmp_path):
    code = run_main("datasets", "labels", "ml-100k", "--out", str(tmp_path / "x.csv"),
                    "--mode", "fuzzy", "--data-dir", str(real_data_dir))
    assert code == 2 and "binary, hard, soft" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


@pytest.fixture(scope="module")
def ease_artifact(real_data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ease")
    config = folder / "ease.yaml"
    config.write_text("dataset: ml-100k\nmodel: {name: ease}\n")
    assert run("train", str(config), "--data-dir", str(real_data_dir), "--out",
               str(folder / "art")).exit_code == 0
    return folder / "art"


def test_recommend_for_a_known_user_leaves_out_rated_movies(real_data_dir, ease_artifact):
    from movierec.data.loading import load_dataset

    result = run("recommend", "--artifact", str(ease_artifact), "--user", "1", "--k", "7",
                 "--data-dir", str(real_data_dir), "--json")
    assert result.exit_code == 0, result.output
    recs = json.loads(result.stdout)["recommendations"]
    assert len(recs) == 7 and all(r["title"] for r in recs)
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    full = load_dataset("ml-100k", real_data_dir)
    rated_by_1 = set(full.item_ids[full.item_idx[full.user_ids[full.user_idx] == 1]].tolist())
    # the fixed split held out one item of user 1 (its test item), which may come back
    assert len({r["id"] for r in recs} & rated_by_1) <= 1


def test_recommend_for_liked_movies_and_errors(capsys, real_data_dir, ease_artifact):
    result = run("recommend", "--artifact", str(ease_artifact), "--liked", "1,50,181",
                 "--data-dir", str(real_data_dir), "--json")
    ids = [r["id"] for r in json.loads(result.stdout)["recommendations"]]
    assert len(ids) == 10 and not {1, 50, 181} & set(ids)
    assert run_main("recommend", "--artifact", str(ease_artifact), "--user", "99999",
                    "--data-dir", str(real_data_dir)) == 2
    assert "unknown user id 99999" in capsys.readouterr().err
    assert run_main("recommend", "--artifact", str(ease_artifact), "--data-dir",
                    str(real_data_dir)) == 2
    assert "--user ID or --liked" in capsys.readouterr().err


def test_an_explicit_grid_overrides_params_and_the_documented_grid_does_not():
    from movierec.config import ModelSpec
    from movierec.evaluation.compare import grid_points

    explicit = ModelSpec(name="itemknn", params={"k": 20, "shrink": 10.0}, grid={"k": [5, 50]})
    assert [p["k"] for p in grid_points(explicit)] == [5, 50]
    assert all(p["shrink"] == 10.0 for p in grid_points(explicit))
    documented = ModelSpec(name="itemknn", params={"k": 20})
    assert {p["k"] for p in grid_points(documented)} == {20}


def test_train_off_a_terminal_prints_progress_lines(real_data_dir, tmp_path):
    """A CI log or a nohup run of `movierec train` is not silent; `run: {progress: false}` is."""
    import subprocess
    import sys

    config = tmp_path / "gmf.yaml"
    config.write_text("dataset: ml-100k\nmodel: {name: gmf, params: {epochs: 5, factors: 8}}\n"
                      "run: {num_threads: 1}\n")
    cmd = [sys.executable, "-m", "movierec.cli", "train", str(config), "--data-dir",
           str(real_data_dir), "--out", str(tmp_path / "a"), "--set", "model.params.epochs=2"]
    loud = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "gmf: epoch 2/2" in loud.stderr  # --set took effect, and the last epoch was reported
    quiet = subprocess.run([*cmd, "--set", "run.progress=false"], capture_output=True,
                           text=True, check=True)
    assert "epoch" not in quiet.stderr


@pytest.mark.parametrize(("params", "run_section", "message"), [
    ("{lr: fast}", "{}", "lr: 'fast' is not allowed"),
    ("{lr: true}", "{}", "lr: True is a boolean"),
    ("{factors: -8}", "{}", "factors: -8 is not allowed"),
    ("{n_negatives: -1}", "{}", "n_negatives: -1 is not allowed"),
    ("{layers: abc}", "{}", "layers: 'abc' is not allowed"),
    ("{epochs: -3}", "{}", "epochs: -3 is not allowed"),
    ("{batch_size: 0}", "{}", "batch_size: 0 is not allowed"),
    ("{dropout: 2.0}", "{}", "dropout: 2.0 is not allowed"),
    ("{num_threads: 2}", "{}", "'num_threads' is a run option"),
    ("{}", "{device: cuda}", "'cuda' is not available on this machine"),
    ("{}", "{device: tpu}", "unknown device 'tpu'"),
])
def test_bad_config_values_fail_before_any_data_loads(tmp_path, capsys, params, run_section,
                                                      message):
    """One line naming the key, the value and what is allowed; the (missing) dataset is never
    reached, so no data was loaded."""
    import torch

    if "cuda" in run_section and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tmp_path / "bad.yaml"
    config.write_text(f"dataset: no-such-release\nmodel: {{name: neumf, params: {params}}}\n"
                      f"run: {run_section}\n")
    assert run_main("train", str(config)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "no-such-release" not in err and len(err.splitlines()) == 1
