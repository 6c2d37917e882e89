"""The FastAPI app: routes only translate HTTP to :class:`~movierec.serving.store.Store` calls.

``create_app(store)`` builds the app for a loaded store; ``create_app_from_env()`` is the
factory for ``uvicorn --factory`` (artifact from ``MOVIEREC_ARTIFACT``, data folder from
``MOVIEREC_DATA``). Unknown movies and users answer 404, invalid input 422, both with a
``detail`` message. Static files are served by Starlette's ``StaticFiles``, which refuses paths
that leave the static folder.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from movierec import __version__
from movierec.serving import schemas
from movierec.serving.posters import TmdbPosters, genre_colour, poster_svg
from movierec.serving.store import BadRequest, NotFound, Recommendation, Store

STATIC_DIR = Path(__file__).with_name("static")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

_MOVIE_ID = Annotated[int, PathParam(ge=1, le=schemas.MAX_ID, description="MovieLens movie id.")]
_K = Annotated[int, Query(ge=1, le=schemas.MAX_K, description="How many (1-100).")]
_ERRORS = {404: {"model": schemas.ErrorMessage}}
USER_CACHE_SIZE = 4096
"""Answers of ``GET /users/{id}/recommendations`` kept as bytes (the model never changes)."""


class JSONBytes(Response):
    """A JSON answer serialised with the standard library and no second validation pass: the
    payloads are built from the store in the response models' shape (the fuzz test checks
    every answer against the schema)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return content if isinstance(content, bytes) else _dump(content)


def _dump(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


_USER_RECS_PATH = re.compile(r"/users/(\d{1,10})/recommendations")
_K_QUERY = re.compile(rb"(?:k=(\d{1,3}))?")


class UserRecommendationsCache:
    """ASGI layer that answers a repeated ``GET /users/{id}/recommendations[?k=N]`` straight
    from the bytes cache, without routing or validation: an entry exists only for a request the
    app itself validated and answered before, and the model never changes while serving.
    Everything else goes to the app."""

    def __init__(self, app, cache: OrderedDict[tuple[int, int], bytes]) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = _USER_RECS_PATH.fullmatch(scope["path"])
            query = _K_QUERY.fullmatch(scope["query_string"]) if path else None
            if query:
                body = self.cache.get((int(path[1]), int(query[1] or 10)))
                if body is not None:
                    await send({"type": "http.response.start", "status": 200, "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


def create_app(store: Store, posters: TmdbPosters | None = None) -> FastAPI:
    """The app serving ``store``; ``posters`` fetches TMDB images (None: SVG cards only)."""
    app = FastAPI(
        title="movierec",
        version=__version__,
        description="Movie recommendations from a MovieLens model: browse and search movies, "
        "similar movies, recommendations for known users and, from a few picks, for anyone.",
    )
    app.state.store = store
    user_cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
    app.add_middleware(UserRecommendationsCache, cache=user_cache)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", response_model=schemas.Health, tags=["service"])
    def health() -> dict:
        return {"status": "ok", "model": store.model.name, "artifact": store.name,
                "dataset": getattr(store.model, "dataset_name_", ""),
                "n_users": len(store.user_ids), "n_items": len(store.item_ids),
                "posters": "tmdb" if posters is not None else "svg"}

    @app.get("/genres", response_model=list[schemas.Genre], tags=["movies"])
    def genres() -> list[dict]:
        return [{"name": g, "colour": genre_colour(g), "n_movies": int(n)}
                for g, n in zip(store.genre_names, store.genre_counts, strict=True)]

    @app.get("/movies", response_model=schemas.MoviePage, tags=["movies"],
             responses={422: {"model": schemas.ErrorMessage}})
    async def movies(
        query: Annotated[str | None, Query(max_length=200, description="Words of the title "
                                           "(case-insensitive).")] = None,
        genre: Annotated[str | None, Query(max_length=50, description="A genre name "
                                           "(see /genres).")] = None,
        year: Annotated[int | None, Query(ge=1800, le=2100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Response:
        """Search and browse: without a query, popular and varied movies come first."""
        total, page = store.search(query, genre, year, limit, offset)
        return JSONBytes({"total": total, "offset": offset, "limit": limit,
                          "movies": [store.movie(i) for i in page]})

    @app.get("/movies/{movie_id}", response_model=schemas.Movie, tags=["movies"],
             responses=_ERRORS)
    async def movie(movie_id: _MOVIE_ID) -> Response:
        return JSONBytes(store.movie(int(store.item_index([movie_id])[0])))

    @app.get("/movies/{movie_id}/similar", response_model=schemas.SimilarMovies,
             tags=["movies"], responses=_ERRORS)
    async def similar(movie_id: _MOVIE_ID, k: _K = 10) -> Response:
        """The movies closest to this one in the model's item space (plus a genre term)."""
        pairs = store.similar(movie_id, k)
        return JSONBytes({"movie": store.movie(int(store.item_index([movie_id])[0])),
                          "similar": [{"movie": store.movie(i), "similarity": s}
                                      for i, s in pairs]})

    @app.get("/users/{user_id}/recommendations", response_model=schemas.Recommendations,
             tags=["recommendations"], responses=_ERRORS)
    async def user_recommendations(
        user_id: Annotated[int, PathParam(ge=0, le=schemas.MAX_ID)], k: _K = 10
    ) -> Response:
        """Top k for a user the model was trained on; movies they rated are left out."""
        key = (user_id, k)
        body = user_cache.get(key)
        if body is None:
            recs = await run_in_threadpool(store.for_user, user_id, k)
            body = _dump({"user_id": user_id, "recommendations": _recs(store, recs)})
            user_cache[key] = body
            if len(user_cache) > USER_CACHE_SIZE:
                user_cache.popitem(last=False)
        return JSONBytes(body)

    @app.post("/recommendations", response_model=schemas.Recommendations,
              tags=["recommendations"],
              responses={404: {"model": schemas.ErrorMessage},
                         422: {"model": schemas.ErrorMessage}})
    async def recommendations(picks: schemas.PicksRequest) -> Response:
        """Top k for a new person from their picks (no account, no retraining): the model folds
        the liked movies in; movies like the disliked ones are pushed down; picks never come
        back. Each result says which liked movie it is closest to."""
        recs = await run_in_threadpool(
            store.for_picks, picks.liked, picks.disliked, picks.k)
        return JSONBytes({"user_id": None, "recommendations": _recs(store, recs)})

    @app.get("/posters/{movie_id}", tags=["movies"], responses={
        200: {"content": {"image/svg+xml": {}, "image/jpeg": {}}}, **_ERRORS})
    def poster(movie_id: _MOVIE_ID) -> Response:
        """The movie's poster: the TMDB image when configured and available, else an SVG card
        with its title, year and genre colours."""
        i = int(store.item_index([movie_id])[0])
        headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        tmdb_id = store.tmdb_ids[i]
        if posters is not None and tmdb_id is not None:
            image = posters.image(int(tmdb_id))
            if image is not None:
                return Response(image[0], media_type=image[1], headers=headers)
        svg = poster_svg(store.titles[i], store.years[i], store.genres[i])
        return Response(svg, media_type="image/svg+xml",
                        headers={**headers, "Content-Security-Policy": "default-src 'none'; "
                                 "style-src 'unsafe-inline'"})

    return app


def _recs(store: Store, recs: list[Recommendation]) -> list[dict]:
    return [{"movie": store.movie(r.item_idx), "score": r.score, "reason": r.reason,
             "because_id": None if r.because_idx is None else int(store.item_ids[r.because_idx])}
            for r in recs]


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory movierec.serving.app:create_app_from_env``:
    the artifact folder from ``MOVIEREC_ARTIFACT``, the data folder from ``MOVIEREC_DATA``."""
    artifact = os.environ.get("MOVIEREC_ARTIFACT")
    if not artifact:
        raise RuntimeError("set MOVIEREC_ARTIFACT to the artifact folder to serve")
    store = Store.open(artifact, os.environ.get("MOVIEREC_DATA") or None)
    return create_app(store, TmdbPosters.from_env())
