"""On real ml-latest-small: `movierec serve` in its own process answers the issue's check, the
catalogue is built from the dataset named in the artifact, and quickstart trains and reuses."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from movierec.errors import MovierecError

CHECK_PICKS = [1, 260, 296, 318, 356]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_movierec_serve_answers_the_check(real_artifact, real_data_dir, tmp_path):
    artifact = shutil.copytree(real_artifact, tmp_path / "served")
    (artifact / "catalogue.parquet").unlink(missing_ok=True)
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("TMDB_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", "serve", "--artifact", str(artifact),
         "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(real_data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"movierec serve did not start:\n{out}")
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["dataset"] == "ml-latest-small"
        answer = httpx.post(f"{url}/recommendations", json={"liked": CHECK_PICKS, "k": 10},
                            timeout=10)
        assert answer.status_code == 200
        recs = answer.json()["recommendations"]
        ids = [r["movie"]["id"] for r in recs]
        assert len(ids) == 10 == len(set(ids)) and not set(ids) & set(CHECK_PICKS)
        assert all(r["reason"].startswith("because you liked ") and r["because_id"] in
                   CHECK_PICKS for r in recs)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (artifact / "catalogue.parquet").is_file()  # built from the dataset, kept


def test_catalogue_needs_the_dataset_or_the_file(real_artifact, tmp_path, monkeypatch):
    from movierec.serving.store import Store

    artifact = shutil.copytree(real_artifact, tmp_path / "bare")
    (artifact / "catalogue.parquet").unlink(missing_ok=True)
    empty = tmp_path / "empty-data"
    empty.mkdir()
    with pytest.raises(MovierecError, match="--data-dir"):
        Store.open(artifact, empty)


def test_real_store_answers(real_store):
    ids = real_store.item_ids[[i for i, _ in real_store.similar(1, 10)]]
    family = {3114, 2355, 364, 588, 595, 1, 2081}  # Toy Story 2, A Bug's Life, Lion King, ...
    assert 1 not in ids and len(family & set(ids.tolist())) >= 2
    total, page = real_store.search("matrix")
    assert [real_store.titles[i] for i in page[:3]] == [
        "The Matrix", "The Matrix Reloaded", "The Matrix Revolutions"]
    recs = real_store.for_user(int(real_store.user_ids[0]), 10)
    seen = set(real_store.model.seen_[0].indices.tolist())
    assert len(recs) == 10 and not {r.item_idx for r in recs} & seen


def test_quickstart_trains_once_then_reuses(real_data_dir, tmp_path):
    from movierec.serving.quickstart import prepare_quickstart

    said: list[str] = []
    ((name, path),) = prepare_quickstart(real_data_dir, tmp_path / "qs", ("ials",),
                                         progress=said.append)
    assert name == "ials" and path == tmp_path / "qs" / "ials"
    assert (path / "config.json").is_file() and (path / "catalogue.parquet").is_file()
    assert any(m.startswith("ials: trained in") for m in said)
    said.clear()
    assert prepare_quickstart(real_data_dir, tmp_path / "qs", ("ials",),
                              progress=said.append) == [("ials", path)]
    assert any("already trained" in m for m in said)


def test_quickstart_serves_the_shipped_neumf_recipe():
    """The app's hero model is the tuned recipe of configs/, not a copy that drifts from it."""
    from movierec.config import TrainConfig, load_config
    from movierec.serving.quickstart import QUICKSTART_MODELS, RECIPES

    root = Path(__file__).resolve().parents[2]
    recipe = load_config(root / "configs" / "neumf-ml-latest-small.yaml", TrainConfig)
    assert QUICKSTART_MODELS[0] == "neumf" and RECIPES["neumf"] == recipe.model.params


def test_train_writes_the_catalogue_so_serving_needs_no_data(real_data_dir, tmp_path):
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.serving.store import Store

    config = tmp_path / "pop.yaml"
    config.write_text("dataset: ml-100k\nmodel: {name: popularity}\nsplit: none\n")
    art = tmp_path / "art"
    result = CliRunner().invoke(app, ["train", str(config), "--data-dir", str(real_data_dir),
                                      "--out", str(art)])
    assert result.exit_code == 0, result.output
    assert (art / "catalogue.parquet").is_file()
    empty = tmp_path / "no-data"
    empty.mkdir()
    store = Store.open(art, empty)
    assert store.titles[int(store.item_index([50])[0])] == "Star Wars"


@pytest.mark.parametrize(("query", "expect"), [
    ("matrix the", "The Matrix"),
    ("Matrix, The", "The Matrix"),
    ("THE MATRIX", "The Matrix"),
    ("matirx", "The Matrix"),  # two letters swapped
    ("lord rings", "The Lord of the Rings: The Fellowship of the Ring"),
    ("rings lord two", "The Lord of the Rings: The Two Towers"),
    ("shawshenk redemption", "The Shawshank Redemption"),  # a typo
    ("amelie", "Amelie (Fabuleux destin d'Amélie Poulain, Le)"),
    ("amélie poulain", "Amelie (Fabuleux destin d'Amélie Poulain, Le)"),  # accents both ways
    ("schindlers list", "Schindler's List"),
    ("usual suspects, the", "The Usual Suspects"),
    ("termin", "Terminator 2: Judgment Day"),  # still typing
    ("alien", "Alien"),  # the whole title before longer ones
    ("pulp fiction 1994", "Pulp Fiction"),
])
def test_search_finds_movies_as_people_type_them(real_store, query, expect):
    total, page = real_store.search(query)
    assert total >= 1 and real_store.titles[page[0]] == expect, \
        [real_store.titles[i] for i in page[:5]]


def test_search_does_not_match_everything(real_store):
    assert real_store.search("qwxzv")[0] == 0
    assert real_store.search("matrix zzzzzz")[0] == 0  # every real word must match
    total, page = real_store.search("toy story")
    assert total <= 5 and [real_store.titles[i] for i in page[:3]] == [
        "Toy Story", "Toy Story 2", "Toy Story 3"]
