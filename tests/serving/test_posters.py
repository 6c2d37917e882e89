"""Posters: SVG cards, and TMDB images fetched server-side from a fake local TMDB (never the
internet): disk cache, timeouts, fallbacks, and the key kept out of logs and responses."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from movierec.serving.posters import TmdbPosters, genre_colour, poster_svg

KEY = "k3y-0123456789abcdef-SECRET"
JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg body" * 20


class FakeTmdb:
    """A local TMDB: /3/movie/{id} answers JSON with a poster path, /img/... the image.
    Movie 404 is unknown to it; movie 777 answers too slowly; 555 has no poster."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                fake.headers.append(dict(self.headers))
                if self.path.startswith("/3/movie/"):
                    tmdb_id = int(self.path.split("/")[3].split("?")[0])
                    if tmdb_id == 777:
                        time.sleep(1.5)
                    if tmdb_id == 404:
                        return self._send(404, b'{"status_message": "not found"}',
                                          "application/json")
                    poster = None if tmdb_id == 555 else f"/p{tmdb_id}.jpg"
                    return self._send(200, json.dumps({"id": tmdb_id, "poster_path": poster})
                                      .encode(), "application/json")
                if self.path.startswith("/img/"):
                    return self._send(200, JPEG, "image/jpeg")
                return self._send(404, b"", "text/plain")

            def _send(self, status, body, media_type):
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # do not wait for the slow answer on close
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def tmdb():
    fake = FakeTmdb()
    yield fake
    fake.close()


@pytest.fixture()
def fetcher(tmdb, tmp_path, monkeypatch):
    monkeypatch.setenv("TMDB_API_KEY", KEY)
    monkeypatch.setenv("TMDB_API_URL", f"{tmdb.url}/3")
    monkeypatch.setenv("TMDB_IMAGE_URL", f"{tmdb.url}/img")
    posters = TmdbPosters.from_env(cache_dir=tmp_path / "posters")
    posters.timeout_s = 0.5
    return posters


def test_svg_card_shows_title_year_and_genre_colours():
    svg = poster_svg("A Very Long Title That Needs Several Lines To Fit", 1999,
                     ["Drama", "Sci-Fi"])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "1999" in svg and "Drama · Sci-Fi" in svg
    assert genre_colour("Drama") in svg and genre_colour("Sci-Fi") in svg
    assert svg.count("<tspan") >= 3  # wrapped
    hostile = poster_svg('</text><script>alert(1)</script>"&', None, [])
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile and "no genre" in hostile


def test_no_key_means_no_fetcher(monkeypatch):
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    assert TmdbPosters.from_env() is None


def test_fetches_once_then_serves_from_disk(fetcher, tmdb):
    image = fetcher.image(862)
    assert image == (JPEG, "image/jpeg")
    assert tmdb.requests[0].startswith("/3/movie/862?") and f"api_key={KEY}" in tmdb.requests[0]
    assert tmdb.requests[1] == "/img/p862.jpg"  # the image request carries no key
    n = len(tmdb.requests)
    again = TmdbPosters(api_key=KEY, cache_dir=fetcher.cache_dir, api_url="http://127.0.0.1:9")
    assert again.image(862) == (JPEG, "image/jpeg") and len(tmdb.requests) == n  # from disk


def test_bearer_token_goes_in_a_header(fetcher, tmdb):
    fetcher.api_key = "eyJhbGciOiJIUzI1NiJ9.token"
    assert fetcher.image(862) is not None
    assert "api_key" not in tmdb.requests[0]
    assert tmdb.headers[0]["Authorization"] == "Bearer eyJhbGciOiJIUzI1NiJ9.token"


def test_failures_fall_back_fast_and_are_remembered(fetcher, tmdb, caplog):
    caplog.set_level(logging.DEBUG)
    t0 = time.perf_counter()
    assert fetcher.image(777) is None  # slower than the timeout
    assert time.perf_counter() - t0 < 1.4
    assert fetcher.image(404) is None and fetcher.image(555) is None
    n = len(tmdb.requests)
    assert fetcher.image(404) is None and len(tmdb.requests) == n  # not asked again soon
    assert "tmdb id 404" in caplog.text
    assert KEY not in caplog.text


def test_api_serves_tmdb_image_or_svg_and_never_leaks_the_key(store, fetcher, tmdb, caplog):
    from fastapi.testclient import TestClient

    from movierec.serving.app import create_app

    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(store, fetcher)) as c:
        image = c.get("/posters/30")  # tmdb id 1030 in the planted catalogue
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content == JPEG
        fetcher.api_url = "http://127.0.0.1:9"  # TMDB unreachable now: SVG card instead
        card = c.get("/posters/40")
        assert card.status_code == 200 and card.headers["content-type"].startswith(
            "image/svg+xml")
        bodies = [c.get(p).text for p in ("/", "/static/app.js", "/health", "/movies",
                                          "/movies/30", "/openapi.json")]
        assert c.get("/health").json()["posters"] == "tmdb"
    assert all(KEY not in b for b in bodies)
    assert KEY not in caplog.text
