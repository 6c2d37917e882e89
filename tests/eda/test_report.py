"""The EDA report: every figure is written as a valid PNG and linked from the page, on real
ML-100K (with demographics) and on a tiny CSV-layout release without a user table; empty or
malformed data and unusable folders raise a clear error and leave no half report."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.data.dataset import Dataset
from movierec.data.loading import load_dataset
from movierec.eda import figures, report_dataset, write_report
from movierec.eda.report import PNG_SIGNATURE
from movierec.errors import MovierecError

# What issue 8 asks for; demographics only where the release has a user table.
CORE = {"rating_distribution", "ratings_per_user", "ratings_per_movie", "rating_matrix",
        "ratings_over_time"}
GENRE = {"genre_counts", "genre_boxplots", "genre_cooccurrence", "genre_correlation", "genre_vif"}
USERS = {"users_age", "users_gender", "users_occupation"}


def linked_images(page: Path) -> list[str]:
    return re.findall(r"<img src='([^']+)'", page.read_text(encoding="utf-8"))


def assert_complete_report(folder: Path, expected: set[str]) -> str:
    """The folder holds index.html, which links exactly the PNGs beside it, each a decodable,
    non-blank image; returns the page text."""
    page = folder / "index.html"
    assert page.is_file()
    links = linked_images(page)
    assert {Path(x).stem for x in links} == expected
    assert sorted(links) == sorted(p.name for p in folder.glob("*.png"))
    for name in links:
        path = folder / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, name
        assert float(img[..., :3].std()) > 0.01, f"{name} is blank"
    return page.read_text(encoding="utf-8")


def no_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


# ---------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def ml100k(real_data_dir) -> Dataset:
    return load_dataset("ml-100k", real_data_dir)


def test_ml100k_report_has_every_figure_and_demographics(ml100k, tmp_path):
    page = assert_complete_report(Path(write_report(ml100k, tmp_path / "r").parent),
                                  CORE | GENRE | USERS)
    # the summary table shows the dataset's own numbers, the readings use them
    assert "943" in page and "1,682" in page and "100,000" in page
    assert f"{ml100k.summary()['sparsity']:.4%}" in page
    assert "variance inflation factor below 5" in page  # ML-100K genres are not collinear
    assert page.count("<p class='reading'>") == len(CORE | GENRE | USERS)
    assert no_leftovers(tmp_path) == []


# ---------------------------------------------------------------------- synthetic CSV release
def write_csv_release(folder: Path, seed: int = 0, n_users: int = 30, n_movies: int = 40) -> Path:
    """A tiny ml-latest-style folder (ratings.csv, movies.csv; no user table), half stars,
    three years of timestamps and a few movies without genres."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    genres = ["Action", "Comedy", "Drama", "Sci-Fi", "Romance"]
    rows = []
    for m in range(1, n_movies + 1):
        picked = [g for g in genres if rng.random() < 0.35]
        rows.append(f"{m},Movie {m} ({1980 + m}),{'|'.join(picked) or '(no genres listed)'}")
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(rows) + "\n")
    pairs = {(int(u), int(m)) for u, m in zip(rng.integers(1, n_users + 1, 600),
                                              rng.integers(1, n_movies + 1, 600), strict=True)}
    lines = [f"{u},{m},{rng.integers(1, 11) / 2:.1f},{int(rng.integers(1.2e9, 1.3e9))}"
             for u, m in sorted(pairs)]
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines)
                                        + "\n")
    return folder


def test_cli_on_a_csv_release_without_user_table_replaces_an_earlier_report(tmp_path):
    src = write_csv_release(tmp_path / "tiny")
    out = tmp_path / "report"
    runner = CliRunner()
    for _ in range(2):  # the second run replaces the first report in place
        result = runner.invoke(app, ["eda", str(src), "--out", str(out)])
        assert result.exit_code == 0, result.output
        text = assert_complete_report(out, CORE | GENRE)
        assert "<h1>tiny: exploratory data analysis</h1>" in text and "user table" not in text
    assert no_leftovers(tmp_path) == []


# ---------------------------------------------------------------------- errors, atomicity
def test_empty_dataset_is_a_clear_error_and_writes_nothing(tmp_path):
    empty = pl.DataFrame(schema={"user_id": pl.Int64, "item_id": pl.Int64,
                                 "rating": pl.Float32, "timestamp": pl.Int64})
    with pytest.raises(MovierecError, match="no ratings"):
        write_report(Dataset.from_frames("empty", empty), tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_header_only_ratings_file_is_a_clear_error(tmp_path):
    src = write_csv_release(tmp_path / "tiny")
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(MovierecError):
        report_dataset(str(src), tmp_path / "out")
    assert not (tmp_path / "out").exists() and no_leftovers(tmp_path) == []


def test_malformed_ratings_are_a_clear_error(ml100k, tmp_path):
    bad = ml100k.with_ratings(ml100k.user_idx, ml100k.item_idx,
                              np.where(np.arange(ml100k.n_ratings) == 7, np.nan, ml100k.rating),
                              ml100k.timestamp)
    with pytest.raises(MovierecError, match="not numbers"):
        write_report(bad, tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_no_genres_report_and_a_failure_midway_keeps_it_whole(tmp_path, monkeypatch):
    ratings = pl.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 3, 3],
                            "rating": [4.0, 3.0, 5.0, 1.0, 2.0],
                            "timestamp": [9e8, 9.1e8, 9.2e8, 9.3e8, 9.9e8]})
    ds = Dataset.from_frames("no-genres", ratings)  # no movie table: no genre figures
    out = tmp_path / "r"
    assert_complete_report(write_report(ds, out).parent, CORE)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # the last figure fails: several new PNGs exist by then, none may reach the report folder
    monkeypatch.setattr(figures, "ratings_over_time", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(ds, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert no_leftovers(tmp_path) == []


def test_refuses_a_folder_that_is_not_a_report(tmp_path):
    ratings = pl.DataFrame({"user_id": [1], "item_id": [1], "rating": [4.0], "timestamp": [9e8]})
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(MovierecError, match="holds files movierec did not write"):
        write_report(Dataset.from_frames("one", ratings), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
