"""Serving fixtures: a small planted-taste catalogue and its served models, the real
ml-latest-small iALS artifact, a live server in a thread, and Chromium for the browser test."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("fastapi", reason="serving tests need the serve extra (fastapi)")

from movierec.data.dataset import Dataset  # noqa: E402
from movierec.models.base import create  # noqa: E402
from movierec.options import FitOptions  # noqa: E402
from movierec.serving.catalogue import write_catalogue  # noqa: E402

GROUPS = ("Action", "Comedy", "Drama")
PER_GROUP = 12
CHROMIUM = os.environ.get("MOVIEREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]


def planted_dataset(seed: int = 7) -> Dataset:
    """90 users in three taste groups; each rates 6-10 movies of its group's genre and one
    other. Movie ids 10, 20, ... ; the last movie (id 9990) is in the catalogue but unrated."""
    rng = np.random.default_rng(seed)
    titles, genres, item_ids = [], [], []
    for g, genre in enumerate(GROUPS):
        for j in range(PER_GROUP):
            item_ids.append(10 * (g * PER_GROUP + j + 1))
            titles.append(f"{genre} Story {j + 1} ({1990 + j})")
            genres.append([genre] if j % 3 else [genre, "Romance"])
    titles[0] = "Usual Suspects, The (1995)"
    titles[1] = "<script>alert('x')</script> & Co (1999)"
    genres[2] = []
    item_ids.append(9990)
    titles.append("Never Rated (2001)")
    genres.append(["Drama"])
    rows = []
    n_rated = len(GROUPS) * PER_GROUP
    for u in range(90):
        g = u % len(GROUPS)
        own = rng.choice(PER_GROUP, size=int(rng.integers(6, 11)), replace=False)
        picks = list(g * PER_GROUP + own) + [int(rng.integers(0, n_rated))]
        for t, i in enumerate(dict.fromkeys(picks)):
            rows.append((u + 1, item_ids[i], float(rng.integers(3, 6)), 1_000_000 + 60 * t))
    ratings = pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"],
                           orient="row")
    years = [int(t[-5:-1]) for t in titles]
    items = pl.DataFrame({"item_id": item_ids, "title": titles, "year": years,
                          "genres": genres, "tmdb_id": [1000 + i for i in item_ids]})
    return Dataset.from_frames("planted", ratings, items)


@pytest.fixture(scope="session")
def planted() -> Dataset:
    return planted_dataset()


def _artifact(dataset: Dataset, folder: Path, name: str, **params) -> Path:
    model = create(name, **params).fit(dataset, options=FitOptions(num_threads=1))
    path = model.save(folder / name)
    write_catalogue(dataset, path)
    return path


@pytest.fixture(scope="session")
def planted_artifacts(planted, tmp_path_factory) -> dict[str, Path]:
    """Artifacts (with catalogue) of a factor model (iALS) and a non-factor one (ItemKNN)."""
    folder = tmp_path_factory.mktemp("planted-artifacts")
    return {
        "ials": _artifact(planted, folder, "ials", factors=8, iterations=10),
        "itemknn": _artifact(planted, folder, "itemknn", k=20),
    }


@pytest.fixture(scope="session")
def store(planted_artifacts):
    from movierec.serving.store import Store

    return Store.open(planted_artifacts["ials"])


@pytest.fixture(scope="session")
def client(store):
    from fastapi.testclient import TestClient

    from movierec.serving.app import create_app

    with TestClient(create_app(store)) as c:
        yield c


@pytest.fixture(scope="session")
def real_artifact(real_data_dir, tmp_path_factory) -> Path:
    """iALS trained on all of ml-latest-small (about 2 s), catalogue not yet written."""
    from movierec.data.loading import load_dataset

    ds = load_dataset("ml-latest-small", real_data_dir)
    model = create("ials", factors=32, iterations=10).fit(ds, options=FitOptions(num_threads=1))
    return model.save(tmp_path_factory.mktemp("real") / "ials")


@pytest.fixture(scope="session")
def real_store(real_artifact, real_data_dir):
    from movierec.serving.store import Store

    return Store.open(real_artifact, real_data_dir)


class LiveServer:
    """uvicorn serving an app in a background thread on a free 127.0.0.1 port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def live_real_server(real_store):
    from movierec.serving.app import create_app

    with LiveServer(create_app(real_store)) as server:
        yield server


def chromium_or_skip() -> str:
    """The Chromium binary; skips when it is missing, except in CI where it must be there."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if path is None:
        msg = (f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
               "(never `playwright install`) or set MOVIEREC_CHROMIUM")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    pytest.importorskip("playwright", reason="the browser test needs playwright (dev extra)")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig):
    """pytest-playwright's launch arguments: Debian's Chromium, headless, with the flags that
    work on these machines (ENVIRONMENT.md)."""
    return {"executable_path": chromium_or_skip(), "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def live_two_models(real_store, real_data_dir):
    """A live server with two artifacts: the real iALS (default) and a popularity model."""
    from movierec.data.loading import load_dataset
    from movierec.serving.app import create_app
    from movierec.serving.catalogue import catalogue_of
    from movierec.serving.served import ServedModels
    from movierec.serving.store import Store

    ds = load_dataset("ml-latest-small", real_data_dir)
    pop = Store(create("popularity").fit(ds), catalogue_of(ds), name="pop")
    served = ServedModels({"ials": real_store, "pop": pop}, "ials")
    with LiveServer(create_app(served)) as server:
        yield server
