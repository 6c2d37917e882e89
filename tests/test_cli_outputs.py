"""What the commands write: only into folders movierec made (or empty ones, or with --force), never
over their own inputs, never deleting a file they did not write; bad paths are one line."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from movierec.models.base import Recommender


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str) -> Done:
    """The real entry point (``movierec.cli.main``), in this process; what a user would see."""
    from movierec.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    old = sys.argv
    sys.argv = ["movierec", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    finally:
        sys.argv = old
    return Done(code, out.getvalue(), err.getvalue())


def one_line_error(done: Done, *phrases: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    text = " ".join(done.stderr.split())  # rich wraps at the terminal width
    assert text.startswith("error:") and all(p in text for p in phrases), text


@pytest.fixture()
def small_release(ml_latest_small_dir, tmp_path) -> Path:
    folder = tmp_path / "data" / "ml-latest-small"
    folder.mkdir(parents=True)
    for name in ("ratings.csv", "movies.csv"):
        shutil.copy(ml_latest_small_dir / name, folder / name)
    return folder


def test_labels_onto_the_releases_own_ratings_file_is_refused(small_release):
    """Issue 14: ``datasets labels --out`` onto the release's ratings.csv overwrote it."""
    ratings = small_release / "ratings.csv"
    before = ratings.read_bytes()
    for force in ([], ["--force"]):
        done = cli("datasets", "labels", "ml-latest-small", "--data-dir", small_release.parent,
                   "--split", "none", "--out", ratings, *force)
        one_line_error(done, "is an input of this command")
    assert ratings.read_bytes() == before


def test_labels_replace_an_existing_file_only_with_force(small_release, tmp_path):
    out = tmp_path / "labels.csv"
    out.write_text("my own table\n")
    args = ("datasets", "labels", small_release, "--split", "none", "--negatives", "1",
            "--out", out)
    one_line_error(cli(*args), "exists; refusing to overwrite it", "--force")
    assert out.read_text() == "my own table\n"
    done = cli(*args, "--force")
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("index,userid,movieid,interaction,rating")


def test_data_dir_that_is_a_file_is_one_line(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    one_line_error(cli("datasets", "info", "ml-100k", "--data-dir", afile), "is a file")


def _config(tmp_path: Path, dataset: Path, model: dict, run: dict | None = None) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"dataset": str(dataset), "split": "none", "model": model,
                                    "run": run or {}}))
    return path


def test_train_out_onto_an_artifact_folder_keeps_the_other_files(small_release, tmp_path):
    """Issue 14: ``train --out`` onto an existing artifact folder deleted every other file."""
    out = tmp_path / "artifact"
    config = _config(tmp_path, small_release, {"name": "popularity"})
    assert cli("train", config, "--out", out).returncode == 0
    (out / "README.md").write_text("how I trained it")
    (out / "runs").mkdir()
    (out / "runs" / "1.txt").write_text("first")
    config = _config(tmp_path, small_release, {"name": "itemknn"})
    done = cli("train", config, "--out", out)
    assert done.returncode == 0, done.stderr
    assert type(Recommender.load(out)).__name__ == "ItemKNN"
    assert (out / "README.md").read_text() == "how I trained it"
    assert (out / "runs" / "1.txt").read_text() == "first"


def test_train_out_onto_a_foreign_folder_needs_force(small_release, tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "paper.tex").write_text("mine")
    config = _config(tmp_path, small_release, {"name": "popularity"})
    one_line_error(cli("train", config, "--out", out), "holds files movierec did not write",
                   "--force")
    assert sorted(p.name for p in out.iterdir()) == ["paper.tex"]
    assert cli("train", config, "--out", out, "--force").returncode == 0
    assert (out / "paper.tex").read_text() == "mine"
    assert type(Recommender.load(out)).__name__ == "Popularity"


def test_train_with_its_log_dir_inside_out(tmp_path):
    """Issue 14: a log_dir inside --out threw the whole training away at save."""
    pytest.importorskip("torch")
    from movierec.data.release_writer import write_release
    from movierec.data.synthetic import generate

    data = write_release(generate(n_users=60, n_items=50, n_ratings=1200, seed=1),
                         tmp_path / "tiny")
    out = tmp_path / "gmf"
    config = _config(tmp_path, data, {"name": "gmf", "params": {"epochs": 2, "factors": 4}},
                     {"log_dir": str(out / "logs")})
    done = cli("train", config, "--out", out)
    assert done.returncode == 0, done.stderr
    assert (out / "logs" / "metrics.csv").read_text().count("\n") >= 2
    assert Recommender.load(out).n_items_ > 0
    done = cli("train", config, "--out", out)  # again: the new logs are kept, the old replaced
    assert done.returncode == 0, done.stderr
    assert (out / "logs" / "metrics.csv").is_file()


def test_eda_out_keeps_the_users_files_beside_an_earlier_report(small_release, tmp_path):
    """Issue 14: ``eda --out`` deleted user files beside an earlier report."""
    out = tmp_path / "report"
    assert cli("eda", small_release, "--out", out).returncode == 0
    (out / "my-notes.md").write_text("what I saw")
    done = cli("eda", small_release, "--out", out)
    assert done.returncode == 0, done.stderr
    assert (out / "my-notes.md").read_text() == "what I saw"
    one_line_error(cli("eda", small_release, "--out", small_release, "--force"),
                   "is an input of this command")


def test_compare_refuses_a_foreign_out_before_training(small_release, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "draft.md").write_text("mine")
    config = tmp_path / "compare.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "datasets": [str(small_release)], "protocols": ["p1"], "seeds": [0],
        "split": "generate", "models": [{"name": "popularity"}]}))
    one_line_error(cli("compare", config, "--out", out), "holds files movierec did not write")
    assert sorted(p.name for p in out.iterdir()) == ["draft.md"]
    done = cli("compare", config, "--out", out, "--force")
    assert done.returncode == 0, done.stderr
    assert (out / "draft.md").read_text() == "mine" and (out / "results.json").is_file()
    # piped, a comparison (hours for the sequential reports) says how far it is, line by line
    assert re.search(r"\[ +\d+ s\] popularity seed 0: fitted in", done.stderr), done.stderr


def test_compare_piped_shows_each_training_loop(small_release, tmp_path):
    """Piped, compare printed nothing until its final tables; now each step is a line, and
    each fit's own plain progress lines come through too (a fit can run for minutes)."""
    config = tmp_path / "compare.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "datasets": [str(small_release)], "protocols": ["p1"], "seeds": [0],
        "split": "generate",
        "models": [{"name": "gmf", "params": {"epochs": 2, "batch_size": 512}, "grid": {}}]}))
    done = cli("compare", config, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "gmf: epoch 2/2" in done.stderr and "gmf seed 0: fitted in" in done.stderr
