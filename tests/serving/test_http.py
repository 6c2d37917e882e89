"""HTTP that cannot be pushed over: non-finite numbers, oversized and hostile bodies, lax types,
HEAD, the documented 422 body, offline docs (each a finding of issue 13)."""

from __future__ import annotations

import re

import pytest

from movierec.serving.schemas import ValidationProblem

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body", [
    b'{"liked": [NaN]}', b'{"liked": [10], "k": Infinity}', b'{"liked": [10], "k": -Infinity}',
    b'{"liked": [1e400]}', b'{"liked": [10], "k": 1e400}', b'{"disliked": [NaN], "liked": [10]}',
])
def test_non_finite_numbers_are_422_not_500(client, body):
    response = client.post("/recommendations", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    ValidationProblem.model_validate(response.json())


@pytest.mark.parametrize("value", ["true", "false", '"10"', "10.5", "[10]", "null", "{}"])
def test_picks_are_strict_integers(client, value):
    """`true` is not movie 1, `"10"` is not movie 10."""
    body = f'{{"liked": [{value}], "k": 5}}'.encode()
    response = client.post("/recommendations", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "liked", 0]
    assert client.post("/recommendations", content=b'{"liked": [10], "k": true}',
                       headers=JSON).status_code == 422


def test_whole_floats_are_integers_as_json_schema_says(client):
    as_float = client.post("/recommendations", content=b'{"liked": [10.0, 130], "k": 4.0}',
                           headers=JSON)
    as_int = client.post("/recommendations", content=b'{"liked": [10, 130], "k": 4}',
                         headers=JSON)
    assert as_float.status_code == 200 and as_float.content == as_int.content


def test_body_over_the_limit_is_413_before_parsing(client):
    big = b'{"liked": [' + b"10," * 40_000 + b'10]}'  # 120 KB of valid JSON
    response = client.post("/recommendations", content=big, headers=JSON)
    assert response.status_code == 413 and "bytes" in response.json()["detail"]
    assert len(response.content) < 200


def test_streamed_body_over_the_limit_is_413(client):
    def chunks():  # no Content-Length: chunked transfer, counted as it arrives
        yield b'{"liked": ['
        for _ in range(200):
            yield b"10," * 200
        yield b"10]}"

    response = client.post("/recommendations", content=chunks(), headers=JSON)
    assert response.status_code == 413


@pytest.mark.parametrize("body", [
    '{"liked": ["' + "A" * 50_000 + '"]}',
    '{"' + "B" * 50_000 + '": 1, "liked": [10]}',
    '{"liked": [10], "k": "' + "C" * 50_000 + '"}',
    '{"liked": [' + "9" * 50_000 + "]}",
    "{" + "D" * 50_000,
])
def test_errors_never_echo_the_input(client, body):
    response = client.post("/recommendations", content=body.encode(), headers=JSON)
    assert response.status_code == 422
    assert len(response.content) < 2_000
    assert not re.search(r"A{50}|B{50}|C{50}|9{50}|D{50}",
                         response.text)
    ValidationProblem.model_validate(response.json())


def test_query_errors_do_not_echo_either(client):
    response = client.get("/movies", params={"query": "x" * 5000})
    assert response.status_code == 422 and len(response.content) < 1_000


def _get_routes(app) -> list[str]:
    return sorted(r.path for r in app.routes if "GET" in getattr(r, "methods", ()) and
                  r.include_in_schema)


def test_head_answers_on_every_get_route(client):
    samples = {"/movies/{movie_id}": "/movies/10", "/movies/{movie_id}/similar":
               "/movies/10/similar", "/users/{user_id}/recommendations":
               "/users/1/recommendations", "/posters/{movie_id}": "/posters/10"}
    paths = _get_routes(client.app)
    assert len(paths) >= 8
    for path in [*paths, "/", "/docs", "/redoc", "/static/app.js"]:
        url = samples.get(path, path)
        get, head = client.get(url), client.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        if "content-length" in get.headers:
            assert head.headers["content-length"] == get.headers["content-length"]
    assert client.head("/movies/12345").status_code == 404


def test_documented_422_is_the_real_one(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if op.get("parameters") or op.get("requestBody"):
                ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ValidationProblem"), (method, path)
    for response in (client.post("/recommendations", json={"liked": [10], "k": 0}),
                     client.get("/movies", params={"genre": "Opera"}),
                     client.get("/movies?model=nope")):
        assert response.status_code == 422
        body = ValidationProblem.model_validate(response.json())
        assert set(response.json()) == {"detail", "errors"} and body.detail


def test_docs_pages_use_no_cdn(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html) + re.findall(
            r"""url: ["']([^"']+)""", html)
        assert urls and all(u.startswith("/") for u in urls), urls
        assert "cdn" not in html.lower()
        for url in urls:
            if url.startswith("/docs-assets/"):
                asset = client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 1000, url
