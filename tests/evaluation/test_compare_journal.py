"""`compare`'s journal: a killed or extended comparison resumes without training again."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import MovierecError
from movierec.evaluation import comparison
from movierec.evaluation.journal import RunJournal

runner = CliRunner()

CONFIG = ("name: j\ndatasets: [ml-100k]\nprotocols: [p1]\nseeds: [0]\nmodels:\n"
          "  - name: popularity\n  - name: itemknn\n    params: {k: 20}\n    grid: {}\n")


@pytest.fixture
def fits(monkeypatch):
    """The labels of the models ``compare`` actually ran (not reused), in order."""
    ran: list[str] = []
    real = comparison.run_model

    def counting(spec, *args, **kwargs):
        ran.append(spec.display_name)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(comparison, "run_model", counting)
    return ran


def compare(config, out, data, *extra):
    result = runner.invoke(app, ["compare", str(config), "--data-dir", str(data), "--out",
                                 str(out), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    return result


def rows(out):
    return {r["model"]: r for r in json.loads((out / "results.json").read_text())["results"]}


def test_resume_reuses_finished_models_and_runs_new_or_changed_ones(real_data_dir, tmp_path,
                                                                     fits):
    config, out = tmp_path / "c.yaml", tmp_path / "out"
    config.write_text(CONFIG)
    compare(config, out, real_data_dir)
    assert fits == ["popularity", "itemknn"]
    first = rows(out)
    assert [json.loads(line)["label"] for line in (out / "runs.jsonl").read_text().splitlines()
            ] == ["ml-100k popularity ranking", "ml-100k itemknn ranking"]

    # a model added, one changed: only those two are trained; the third is the journal's
    config.write_text(CONFIG.replace("k: 20", "k: 30") + "  - name: random\n")
    fits.clear()
    compare(config, out, real_data_dir, "--resume")
    assert fits == ["itemknn", "random"]
    second = rows(out)
    assert second["popularity"] == first["popularity"]
    assert second["itemknn"]["params"]["k"] == 30

    # without --resume everything runs again
    fits.clear()
    compare(config, out, real_data_dir)
    assert fits == ["popularity", "itemknn", "random"]
    # the report's journal holds exactly the report's runs
    assert len((out / "runs.jsonl").read_text().splitlines()) == 3


def test_models_runs_share_one_journal_and_a_last_run_writes_the_report(real_data_dir,
                                                                         tmp_path, fits):
    config, out = tmp_path / "c.yaml", tmp_path / "out"
    config.write_text(CONFIG)
    compare(config, out, real_data_dir, "--models", "itemknn", "--resume")
    compare(config, out, real_data_dir, "--models", "popularity", "--resume")
    assert not (out / "results.json").exists()  # partial runs write no report
    assert fits == ["itemknn", "popularity"]
    fits.clear()
    compare(config, out, real_data_dir, "--resume")
    assert fits == []
    assert set(rows(out)) == {"popularity", "itemknn"}


def test_unknown_model_label_fails_before_any_work(real_data_dir, tmp_path, fits):
    config, out = tmp_path / "c.yaml", tmp_path / "out"
    config.write_text(CONFIG)
    with pytest.raises(MovierecError, match="--models ease: not in the config's models "
                                            r"\(popularity, itemknn\)"):
        runner.invoke(app, ["compare", str(config), "--data-dir", str(real_data_dir), "--out",
                            str(out), "--models", "ease"], catch_exceptions=False)
    assert fits == [] and not out.exists()


def test_a_failing_model_keeps_the_finished_ones_in_the_journal(real_data_dir, tmp_path,
                                                                monkeypatch):
    config, out = tmp_path / "c.yaml", tmp_path / "out"
    config.write_text(CONFIG)
    real = comparison.run_model

    def second_fails(spec, *args, **kwargs):
        if spec.name == "itemknn":
            raise RuntimeError("killed")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(comparison, "run_model", second_fails)
    with pytest.raises(RuntimeError, match="killed"):
        runner.invoke(app, ["compare", str(config), "--data-dir", str(real_data_dir), "--out",
                            str(out)], catch_exceptions=False)
    journal = RunJournal(out)
    assert journal.load() == 1 and not (out / "results.json").exists()


def test_journal_skips_a_cut_last_line_and_names_a_corrupt_one(tmp_path):
    path = tmp_path / "runs.jsonl"
    good = json.dumps({"format": 1, "key": "k1", "label": "x", "results": []})
    path.write_text(good + "\n" + '{"format": 1, "key": "k2", "res')
    journal = RunJournal(tmp_path)
    assert journal.load() == 1 and "k1" in journal.entries
    path.write_text('{"format": 1, "key": "k2", "res\n' + good + "\n")
    with pytest.raises(MovierecError, match=r"runs.jsonl:1: not a movierec compare journal "
                                            "line"):
        RunJournal(tmp_path).load()
