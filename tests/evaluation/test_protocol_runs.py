"""P4 and P5 from the command line and from `compare`: the same figures as the library, selection
that never sees the test users or ratings, artifacts that may have seen them refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.evaluation import protocol_runs

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _ml100k(real_data_dir):
    from movierec.data.loading import load_dataset

    return load_dataset("ml-100k", real_data_dir)


@pytest.mark.real_data
def test_evaluate_p4_is_the_library_p4(real_data_dir):
    from movierec.evaluation.newuser import evaluate_p4, evaluate_p4_vae, hold_out_users
    from movierec.models.base import create

    result = run("evaluate", "--model", "popularity", "--dataset", "ml-100k", "--data-dir",
                 str(real_data_dir), "--protocol", "p4", "--split-seed", "3", "--json")
    assert result.exit_code == 0, result.stdout
    out = json.loads(result.stdout)
    assert [r["n"] for r in out["rows"]] == [1, 3, 5, 10, 20]
    assert out["heldout_users"] == 189  # round(0.2 * 943)
    split = hold_out_users(_ml100k(real_data_dir), 0.2, 3)
    model = create("popularity").fit(split.train)
    for got, want in zip(out["rows"], evaluate_p4(model, split), strict=True):
        for key in ("users", "HR@10", "NDCG@10", "Recall@10", "Coverage@10", "Novelty@10",
                    "PopularityPercentile@10"):
            assert got[key] == pytest.approx(want[key]), key
    assert out["rows"][0]["PopularityPercentile@10"] > 99  # popularity shows the top 10
    assert out["vae"]["NDCG@100"] == pytest.approx(evaluate_p4_vae(model, split)["NDCG@100"])
    table = run("evaluate", "--model", "popularity", "--dataset", "ml-100k", "--data-dir",
                str(real_data_dir), "--protocol", "p4")
    assert "Mult-VAE form" in table.stdout and "PopularityPercentile@10" in table.stdout


@pytest.mark.real_data
def test_evaluate_holdout_takes_p5_and_k(real_data_dir):
    from movierec.evaluation.holdout import evaluate_holdout, holdout_split
    from movierec.models.base import create

    result = run("evaluate", "--model", "popularity", "--dataset", "ml-100k", "--data-dir",
                 str(real_data_dir), "--protocol", "p5", "--k", "5", "--json")
    assert result.exit_code == 0, result.stdout
    out = json.loads(result.stdout)
    assert out["protocol"] == "holdout" and out["settings"] == {
        "ratio": 0.25, "method": "random", "k": 5, "seed": 42}
    split = holdout_split(_ml100k(real_data_dir), 0.25, "random", 42)
    want = evaluate_holdout(create("popularity").fit(split.train), split, 5, ks=(10,))
    for key in ("Precision@5", "Recall@5", "NDCG@5", "MAP@5", "NDCG@10", "GenreNDCG@5"):
        assert out[key] == pytest.approx(want[key]), key
    assert out["test_ratings"] == split.test.n_ratings


@pytest.mark.real_data
def test_p4_and_p5_refuse_an_artifact_that_saw_the_test_part(real_data_dir, tmp_path, capsys,
                                                              monkeypatch):
    import sys

    from movierec.cli import main

    config = tmp_path / "pop.yaml"
    config.write_text("dataset: ml-100k\nsplit: none\nmodel: {name: popularity}\n")
    assert run("train", str(config), "--data-dir", str(real_data_dir), "--out",
               str(tmp_path / "art")).exit_code == 0
    for protocol in ("p4", "holdout"):
        monkeypatch.setattr(sys, "argv", ["movierec", "evaluate", "--artifact",
                                          str(tmp_path / "art"), "--data-dir",
                                          str(real_data_dir), "--protocol", protocol])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        assert "may have seen" in capsys.readouterr().err
    for option, value in (("--ratio", "1.5"), ("--holdout", "latest")):  # before any work
        monkeypatch.setattr(sys, "argv", ["movierec", "evaluate", "--model", "popularity",
                                          "--protocol", "holdout", option, value])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert option in err and len(err.strip().splitlines()) == 1


@pytest.mark.real_data
def test_compare_p4_and_holdout_select_on_training_data_only(real_data_dir, tmp_path,
                                                            monkeypatch):
    fitted_on: list[set[int]] = []
    real_build = protocol_runs.build

    def spying_build(spec, params, seed):
        model = real_build(spec, params, seed)
        fit = model.fit

        def recording_fit(train, valid=None, options=None):
            fitted_on.append({(int(u), int(i)) for u, i in zip(train.user_idx, train.item_idx,
                                                                 strict=True)})
            return fit(train, valid, options)

        model.fit = recording_fit
        return model

    monkeypatch.setattr(protocol_runs, "build", spying_build)
    config = tmp_path / "cmp.yaml"
    config.write_text(
        "name: newusers\ndatasets: [ml-100k]\nprotocols: [p4, p5]\nseeds: [0]\n"
        "p4: {n: [1, 5]}\nholdout: {k: 5}\n"
        "models:\n  - name: popularity\n"
        "  - name: itemknn\n    grid: {k: [20, 50]}\n"
    )
    out = tmp_path / "out"
    result = run("compare", str(config), "--data-dir", str(real_data_dir), "--out", str(out))
    assert result.exit_code == 0, result.stdout
    rows = json.loads((out / "results.json").read_text())["results"]
    p4 = [(r["model"], r["variant"]) for r in rows if r["protocol"] == "p4"]
    assert sorted(p4) == [("itemknn", "n=1"), ("itemknn", "n=5"), ("popularity", "n=1"),
                          ("popularity", "n=5")]
    knn = {(r["protocol"], r["variant"]): r for r in rows if r["model"] == "itemknn"}
    assert len(knn[("p4", "n=1")]["selection"]) == 2 == len(knn[("holdout", "")]["selection"])
    assert {"NDCG@100", "Recall@20", "Recall@50"} <= set(knn[("p4-vae", "")]["metrics"])
    assert "MAP@5" in knn[("holdout", "")]["metrics"]
    # the grid points were fitted on training data only: no held-out user, no held-out rating
    from movierec.evaluation.holdout import holdout_split
    from movierec.evaluation.newuser import hold_out_users

    full = _ml100k(real_data_dir)
    p4_test = hold_out_users(full, 0.2, 0)
    test_users = set(p4_test.users.tolist())
    p5_test = holdout_split(full, 0.25, "random", 42).test
    p5_pairs = set(zip(p5_test.user_idx.tolist(), p5_test.item_idx.tolist(), strict=True))
    # fits in run order: popularity p4, itemknn p4 (2 grid + 1 final), popularity p5, itemknn p5
    assert len(fitted_on) == 8
    p4_fits, p5_fits = fitted_on[:4], fitted_on[4:]
    assert all(not {u for u, _ in pairs} & test_users for pairs in p4_fits)
    assert all(not pairs & p5_pairs for pairs in p5_fits)
    grid_fits = p4_fits[1:3]  # itemknn's grid: on the training users minus a validation carve
    assert all(len(g) < len(p4_fits[3]) for g in grid_fits)
    # the report: P4 rows ordered by n, the model and n in the row name
    md = (out / "results.md").read_text()
    assert md.index("| popularity · n=1 |") < md.index("| itemknn · n=1 |") \
        < md.index("| popularity · n=5 |")
    page = (out / "index.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs and all(f'src="{p}"' in page for p in pngs)
    assert np.isfinite(knn[("p4", "n=5")]["metrics"]["HR@10"])
