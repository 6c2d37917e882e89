"""The HTTP API over a small planted-taste catalogue: answers, exclusions, reasons, bad input."""

from __future__ import annotations

import pytest

from tests.serving.conftest import GROUPS, PER_GROUP


def group_of(movie_id: int) -> int:
    return (movie_id // 10 - 1) // PER_GROUP


def test_health(client, store):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"] == "ials"
    assert body["n_items"] == len(store.item_ids) and body["n_users"] == 90
    assert body["posters"] == "svg"


def test_browse_lists_every_rated_movie_once_popular_first(client, planted):
    first = client.get("/movies", params={"limit": 200}).json()
    ids = [m["id"] for m in first["movies"]]
    rated = set(planted.item_ids[planted.rated_items].tolist())
    assert first["total"] == len(rated) == len(ids) and set(ids) == rated  # unrated id 9990 out
    counts = [m["n_ratings"] for m in first["movies"]]
    assert sum(counts[:12]) > sum(counts[-12:])  # popular first
    assert {group_of(i) for i in ids[:4]} == {0, 1, 2}  # varied: neighbours differ in genre
    page = client.get("/movies", params={"limit": 5, "offset": 5}).json()
    assert [m["id"] for m in page["movies"]] == ids[5:10]


def test_movie_payload_display_title_and_escaping(client):
    movie = client.get("/movies/10").json()
    assert movie["title"] == "The Usual Suspects" and movie["year"] == 1995
    assert movie["poster_url"] == "/posters/10" and movie["tmdb_id"] == 1010
    assert movie["n_ratings"] > 0 and 3 <= movie["mean_rating"] <= 5
    svg = client.get("/posters/20")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<script>" not in svg.text and "&lt;script&gt;" in svg.text


@pytest.mark.parametrize(("params", "expect"), [
    ({"query": "usual suspects"}, [10]),
    ({"query": "THE USUAL"}, [10]),
    ({"query": "comedy story 1", "limit": 50}, None),
    ({"genre": "comedy", "year": 1991}, [10 * (PER_GROUP + 2)]),
    ({"query": "no such title"}, []),
])
def test_search_filters(client, params, expect):
    body = client.get("/movies", params=params).json()
    ids = [m["id"] for m in body["movies"]]
    assert body["total"] == len(ids)
    if expect is not None:
        assert ids == expect
    else:  # "Comedy Story 1", "... 10", "... 11", "... 12": title-prefix matches
        assert sorted(ids) == sorted(10 * (PER_GROUP + j) for j in (1, 10, 11, 12))


def test_genre_filter_and_unknown_genre(client):
    body = client.get("/movies", params={"genre": "Romance", "limit": 200}).json()
    assert body["total"] > 0 and all("Romance" in m["genres"] for m in body["movies"])
    bad = client.get("/movies", params={"genre": "Opera"})
    assert bad.status_code == 422 and "Comedy" in bad.json()["detail"]


def test_genres_endpoint(client):
    genres = {g["name"]: g for g in client.get("/genres").json()}
    assert set(genres) == {*GROUPS, "Romance"}
    assert all(g["colour"].startswith("#") and g["n_movies"] > 0 for g in genres.values())


def test_similar_movies_share_the_taste_group(client):
    body = client.get("/movies/50/similar", params={"k": 5}).json()
    ids = [s["movie"]["id"] for s in body["similar"]]
    assert len(ids) == 5 and 50 not in ids and 9990 not in ids
    assert sum(group_of(i) == group_of(50) for i in ids) >= 4
    sims = [s["similarity"] for s in body["similar"]]
    assert sims == sorted(sims, reverse=True)


def test_user_recommendations_exclude_seen(client, store, planted):
    for user_id in (1, 2, 3):
        body = client.get(f"/users/{user_id}/recommendations", params={"k": 8}).json()
        recs = body["recommendations"]
        u = int(planted.user_index([user_id])[0])
        seen = set(planted.item_ids[planted.item_idx[planted.user_idx == u]].tolist())
        ids = [r["movie"]["id"] for r in recs]
        assert len(ids) == 8 and not seen & set(ids) and 9990 not in ids
        assert all(r["because_id"] in seen and r["reason"].startswith("because you watched")
                   for r in recs)
        scores = [r["score"] for r in recs]
        assert scores == sorted(scores, reverse=True)
    again = client.get("/users/1/recommendations", params={"k": 8}).json()  # cached answer
    assert again == client.get("/users/1/recommendations", params={"k": 8}).json()


def test_new_person_recommendations(client):
    liked = [10 * (PER_GROUP + j) for j in (1, 2, 3, 4, 5)]  # five comedies
    body = client.post("/recommendations", json={"liked": liked, "k": 6}).json()
    recs = body["recommendations"]
    ids = [r["movie"]["id"] for r in recs]
    assert body["user_id"] is None and len(ids) == 6 and not set(ids) & set(liked)
    assert sum(group_of(i) == 1 for i in ids) >= 5  # the model folded the comedy taste in
    for r in recs:
        assert r["because_id"] in liked
        title = client.get(f"/movies/{r['because_id']}").json()["title"]
        assert r["reason"] == f"because you liked {title}"


def test_dislikes_are_excluded_and_push_similar_movies_down(client):
    liked = [10 * (PER_GROUP + 1)]
    plain = client.post("/recommendations", json={"liked": liked, "k": 10}).json()
    plain_ids = [r["movie"]["id"] for r in plain["recommendations"]]
    disliked = plain_ids[:2]
    body = client.post("/recommendations",
                       json={"liked": liked, "disliked": disliked, "k": 10}).json()
    ids = [r["movie"]["id"] for r in body["recommendations"]]
    assert len(ids) == 10 and not set(ids) & set(disliked) and liked[0] not in ids


def test_no_likes_gives_popular_movies(client):
    body = client.post("/recommendations", json={"liked": [], "k": 3}).json()
    recs = body["recommendations"]
    assert len(recs) == 3 and all(r["reason"].startswith("popular") for r in recs)
    assert all(r["because_id"] is None for r in recs)


def test_k_larger_than_candidates_returns_all_candidates(client, planted):
    n_rated = int(planted.rated_items.sum())
    body = client.post("/recommendations", json={"liked": [10, 20], "k": 100}).json()
    assert len(body["recommendations"]) == n_rated - 2


@pytest.mark.parametrize(("method", "url", "body", "status", "words"), [
    ("get", "/movies/12345", None, 404, "unknown movie id"),
    ("get", "/movies/12345/similar", None, 404, "unknown movie id"),
    ("get", "/posters/12345", None, 404, "unknown movie id"),
    ("get", "/users/9999/recommendations", None, 404, "unknown user id 9999"),
    ("post", "/recommendations", {"liked": [10, 12345, 777]}, 404, "777, 12345"),
    ("post", "/recommendations", {"liked": [10], "k": 0}, 422, None),
    ("post", "/recommendations", {"liked": [10], "k": 101}, 422, None),
    ("post", "/recommendations", {"liked": list(range(1, 402))}, 422, "at most 400"),
    ("post", "/recommendations", {"liked": list(range(1, 300)),
                                  "disliked": list(range(300, 405))}, 422, "at most 100"),
    ("post", "/recommendations", {"liked": ["ten"]}, 422, None),
    ("post", "/recommendations", {"liked": [10], "colour": "red"}, 422, None),
    ("post", "/recommendations", [10, 20], 422, None),
    ("get", "/movies/0", None, 422, None),
    ("get", "/movies/abc", None, 422, None),
    ("get", "/movies/10/similar?k=0", None, 422, None),
    ("get", "/movies/10/similar?k=101", None, 422, None),
    ("get", "/users/1/recommendations?k=-3", None, 422, None),
    ("get", "/movies?limit=0", None, 422, None),
    ("get", "/movies?offset=-1", None, 422, None),
    ("get", "/movies?year=12", None, 422, None),
])
def test_bad_input(client, method, url, body, status, words):
    response = client.request(method.upper(), url, json=body)
    assert response.status_code == status, response.text
    if words:
        assert words in str(response.json()["detail"])


def test_malformed_json_is_422(client):
    response = client.post("/recommendations", content=b"{liked: [1,",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/movies", "/movies/{movie_id}", "/movies/{movie_id}/similar",
            "/users/{user_id}/recommendations", "/recommendations"} <= set(paths)


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers[
        "content-security-policy"]
    assert '<script src="/static/app.js"' in page.text and "http" not in page.text.split(
        "<footer>")[0].replace("https://movielens.org", "")  # nothing from a CDN
    for name in ("app.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200


@pytest.mark.parametrize("path", [
    "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
    "/static/%2e%2e%2f%2e%2e%2fcli.py", "/static//etc/passwd", "/static/....//app.py",
    "/static/%252e%252e/app.py", "/static/..\\app.py",
])
def test_static_paths_cannot_leave_the_folder(client, path):
    response = client.get(path)
    assert response.status_code in (404, 405)
    assert "create_app" not in response.text and "root:" not in response.text


def test_non_factor_model_uses_cooccurrence_similarity(planted_artifacts):
    from fastapi.testclient import TestClient

    from movierec.serving.app import create_app
    from movierec.serving.store import Store

    store = Store.open(planted_artifacts["itemknn"])
    assert not isinstance(store.vectors, type(None)) and hasattr(store.vectors, "tocsr")
    with TestClient(create_app(store)) as c:
        ids = [s["movie"]["id"] for s in c.get("/movies/50/similar?k=5").json()["similar"]]
        assert sum(group_of(i) == group_of(50) for i in ids) >= 4
        liked = [10 * (2 * PER_GROUP + j) for j in (1, 2, 3)]
        recs = c.post("/recommendations", json={"liked": liked, "k": 5}).json()
        assert len(recs["recommendations"]) == 5
        assert all(r["because_id"] in liked for r in recs["recommendations"])


def test_answer_cache_only_serves_what_the_app_answered(client):
    fresh = client.get("/users/5/recommendations?k=4")
    cached = client.get("/users/5/recommendations?k=4")
    assert fresh.status_code == cached.status_code == 200 and fresh.content == cached.content
    assert cached.headers["content-type"] == "application/json"
    assert client.get("/users/5/recommendations").json()["recommendations"][:4] == \
        fresh.json()["recommendations"]  # k defaults to 10; same order
    assert client.get("/users/5/recommendations?k=0").status_code == 422
    assert client.get("/users/5/recommendations?k=4&k=500").status_code == 422
    assert client.get("/users/99999/recommendations?k=4").status_code == 404
    assert client.post("/users/5/recommendations?k=4").status_code == 405


def test_a_pick_without_ratings_is_ignored_and_said_so(client):
    """Movie 9990 has no ratings: the model knows nothing about it."""
    comedies = [10 * (PER_GROUP + j) for j in (1, 2, 3)]
    body = client.post("/recommendations", json={"liked": [9990, *comedies], "k": 6}).json()
    assert body["ignored"] == [9990] and body["popular"] is False
    recs = body["recommendations"]
    assert all(r["because_id"] in comedies for r in recs)
    assert sum(group_of(r["movie"]["id"]) == 1 for r in recs) >= 4


def test_only_unknowable_picks_give_popular_movies_and_say_so(client):
    body = client.post("/recommendations", json={"liked": [9990], "k": 5}).json()
    assert body["ignored"] == [9990] and body["popular"] is True
    recs = body["recommendations"]
    assert len(recs) == 5 and 9990 not in [r["movie"]["id"] for r in recs]
    assert all(r["because_id"] is None and r["reason"].startswith("popular") for r in recs)
    counts = [r["movie"]["n_ratings"] for r in recs]
    assert counts == sorted(counts, reverse=True)
    plain = client.post("/recommendations", json={"liked": [10], "k": 3}).json()
    assert plain["ignored"] == [] and plain["popular"] is False


def test_reasons_name_the_closest_pick_in_the_model_space(client, store):
    import numpy as np

    liked = [10 * (PER_GROUP + 1), 10 * (2 * PER_GROUP + 2), 10 * 3]  # one of each group
    recs = client.post("/recommendations", json={"liked": liked, "k": 12}).json()[
        "recommendations"]
    vectors = store.model.item_vectors()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    picks = store.item_index(liked)
    for r in recs:
        v = vectors[store.item_index([r["movie"]["id"]])[0]]
        closest = liked[int(np.argmax(vectors[picks] @ v))]
        assert r["because_id"] == closest


def test_models_route_and_model_parameter(planted_artifacts):
    from fastapi.testclient import TestClient

    from movierec.serving.app import create_app
    from movierec.serving.served import ServedModels, parse_artifacts

    served = ServedModels.open(parse_artifacts([planted_artifacts["ials"],
                                                f"knn={planted_artifacts['itemknn']}"]))
    with TestClient(create_app(served)) as c:
        models = c.get("/models").json()
        assert [(m["name"], m["model"], m["default"]) for m in models] == [
            ("ials", "ials", True), ("knn", "itemknn", False)]
        assert c.get("/health").json()["models"] == models
        for name in ("ials", "knn"):
            for response in (c.post(f"/recommendations?model={name}", json={"liked": [10]}),
                             c.get(f"/users/1/recommendations?model={name}"),
                             c.get(f"/movies/10/similar?model={name}")):
                assert response.status_code == 200 and response.json()["model"] == name
        assert c.post("/recommendations", json={"liked": [10]}).json()["model"] == "ials"
        bad = c.post("/recommendations?model=nope", json={"liked": [10]})
        assert bad.status_code == 422 and "ials, knn" in bad.json()["detail"]
        # answers cached per model: the second artifact's answer is not the first's
        a = c.get("/users/1/recommendations?model=ials&k=4").json()
        b = c.get("/users/1/recommendations?k=4&model=knn").json()
        assert (a["model"], b["model"]) == ("ials", "knn")
        assert c.get("/users/1/recommendations?model=ials&k=4").json() == a


@pytest.mark.parametrize(("specs", "words"), [
    (["{ials}", "{ials}"], "two artifacts are named 'ials'"),
    (["bad name={ials}"], "may only hold"),
    (["{missing}"], "not an artifact folder"),
    ([], "no artifact"),
])
def test_artifact_list_errors(planted_artifacts, tmp_path, specs, words):
    from movierec.errors import MovierecError
    from movierec.serving.served import parse_artifacts

    paths = {"ials": planted_artifacts["ials"], "missing": tmp_path / "nothing"}
    with pytest.raises(MovierecError, match=words):
        parse_artifacts([s.format(**paths) for s in specs])


def test_known_user_cache_can_be_off(store):
    from fastapi.testclient import TestClient

    from movierec.serving.app import create_app

    app = create_app(store, user_cache_size=0)
    with TestClient(app) as c:
        first = c.get("/users/2/recommendations?k=3")
        assert first.status_code == 200 and c.get("/users/2/recommendations?k=3").json() == \
            first.json()
    cache_layer = app.build_middleware_stack()
    while not hasattr(cache_layer, "cache"):
        cache_layer = cache_layer.app
    assert cache_layer.cache is None


@pytest.mark.parametrize("fast_cache", [0, 100])
def test_fast_path_answers_as_the_route_does(store, fast_cache):
    """Valid picks and known-user requests skip FastAPI's routing (serving/fastpath.py); the
    route, reached by a request the fast path leaves alone, gives the same bytes."""
    from fastapi.testclient import TestClient

    from movierec.serving.app import create_app

    with TestClient(create_app(store, user_cache_size=fast_cache)) as c:
        body = b'{"liked": [130, 140, 9990], "disliked": [20], "k": 7}'
        fast = c.post("/recommendations", content=body,
                      headers={"content-type": "application/json"})
        routed = c.post("/recommendations", content=body,
                        headers={"content-type": "application/json;charset=UTF-8"})
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content and fast.json()["ignored"] == [9990]
        for user in (1, 2):
            fast = c.get(f"/users/{user}/recommendations?k=5")
            routed = c.get(f"/users/{user}/recommendations?k=5&unused=1")
            assert fast.status_code == routed.status_code == 200
            assert fast.content == routed.content
        assert c.get("/users/99999/recommendations").status_code == 404  # fast path declines
        assert c.post("/recommendations", json={"liked": [12345]}).status_code == 404


def test_a_movie_both_liked_and_disliked_is_ignored(client):
    body = client.post("/recommendations", json={"liked": [10, 130], "disliked": [10]}).json()
    assert body["ignored"] == [10] and body["popular"] is False
    assert all(r["because_id"] == 130 for r in body["recommendations"])
    assert 10 not in [r["movie"]["id"] for r in body["recommendations"]]
