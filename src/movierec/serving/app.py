"""The FastAPI app: routes only translate HTTP to :class:`~movierec.serving.store.Store` calls.

``create_app(served)`` builds the app for loaded artifacts (a :class:`ServedModels`, or one
:class:`Store`); ``create_app_from_env()`` is the factory each ``--workers`` process runs (see
:mod:`movierec.serving.launch`). Requests pick an artifact with ``?model=NAME`` (default: the
first served). Unknown movies and users answer 404, invalid input 422 (one documented body,
:class:`~movierec.serving.schemas.ValidationProblem`), a body over 64 KiB 413; HEAD works on
every GET route. Valid picks and known-user requests are answered by
:class:`~movierec.serving.fastpath.FastPaths` before FastAPI's routing (the routes below still
define, document and answer everything else, errors included); quick model calls run on the
event loop, slow ones in the thread pool.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from movierec import __version__
from movierec.serving import schemas
from movierec.serving.docs import add_offline_docs
from movierec.serving.fastpath import (
    FastPaths,
    compute,
    picks_payload,
    remember,
    user_cache_key,
    user_payload,
)
from movierec.serving.http import MAX_BODY, Guard, JSONBytes, StrictJSONRoute, validation_problem
from movierec.serving.posters import TmdbPosters, genre_colour, poster_svg
from movierec.serving.served import ServedModels
from movierec.serving.store import BadRequest, NotFound, Store
from movierec.serving.threads import compute_threads

STATIC_DIR = Path(__file__).with_name("static")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
USER_CACHE_SIZE = 4096
"""Answers of ``GET /users/{id}/recommendations`` kept as bytes (models never change)."""

_MOVIE_ID = Annotated[int, PathParam(ge=1, le=schemas.MAX_ID, description="MovieLens movie id.")]
_K = Annotated[int, Query(ge=1, le=schemas.MAX_K, description="How many (1-100).")]
_422: dict[int | str, dict[str, Any]] = {422: {"model": schemas.ValidationProblem}}
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorMessage}, **_422}


def create_app(served: ServedModels | Store, posters: TmdbPosters | None = None,
               user_cache_size: int = USER_CACHE_SIZE) -> FastAPI:
    """The app serving ``served``; ``posters`` fetches TMDB images (None: SVG cards only);
    ``user_cache_size`` 0 turns the known-user answer cache off."""
    if isinstance(served, Store):
        served = ServedModels({served.name: served}, served.name)
    app = FastAPI(
        title="movierec", version=__version__, docs_url=None, redoc_url=None,
        description="Movie recommendations from MovieLens models: browse and search movies, "
        "similar movies, recommendations for known users and, from a few picks, for anyone. "
        f"Request bodies over {MAX_BODY // 1024} KiB are answered 413.",
    )
    app.router.route_class = StrictJSONRoute
    app.state.served = served
    app.state.store = served.get(None)
    add_offline_docs(app)
    user_cache: OrderedDict | None = OrderedDict() if user_cache_size > 0 else None
    app.add_middleware(FastPaths, served=served, cache=user_cache, cache_size=user_cache_size)
    app.add_middleware(Guard)
    all_genres = sorted({g for store in served.stores.values() for g in store.genre_names})
    known_genres = {g.casefold() for g in all_genres}
    model_query = Query(None, max_length=64, description="Served artifact to ask (see /models); "
                        f"default: {served.default}.", json_schema_extra={"enum": served.names})

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return JSONBytes({"detail": str(exc)[:300]}, status_code=404)

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> Response:
        return JSONBytes(validation_problem(exc), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return JSONBytes(validation_problem(exc), status_code=422)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    infos = [_model_info(name, store, name == served.default)
             for name, store in served.stores.items()]
    default = served.get(None)
    health_fields = {
        "status": "ok", "model": default.model.name, "artifact": served.default,
        "dataset": _dataset(default), "n_users": len(default.user_ids),
        "n_items": len(default.item_ids), "posters": "tmdb" if posters is not None else "svg",
        "models": infos, "compute_threads": compute_threads()}

    @app.get("/health", response_model=schemas.Health, tags=["service"])
    async def health() -> Response:
        return JSONBytes(health_fields)

    @app.get("/models", response_model=list[schemas.ModelInfo], tags=["service"])
    async def models() -> Response:
        """The served artifacts; requests choose one with `?model=NAME`."""
        return JSONBytes(infos)

    @app.get("/genres", response_model=list[schemas.Genre], tags=["movies"], responses=_422)
    async def genres(model: str | None = model_query) -> Response:
        store = served.get(model)
        return JSONBytes([{"name": g, "colour": genre_colour(g), "n_movies": int(n)}
                          for g, n in zip(store.genre_names, store.genre_counts, strict=True)])

    @app.get("/movies", response_model=schemas.MoviePage, tags=["movies"], responses=_422)
    async def movies(
        query: Annotated[str | None, Query(max_length=200, description="Words of the title, "
                                           "any order, any case, accents and small typos "
                                           "forgiven.")] = None,
        genre: str | None = Query(None, max_length=50, description="A genre name (see "
                                  "/genres).", json_schema_extra={"enum": all_genres}),
        year: Annotated[int | None, Query(ge=1800, le=2100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        model: str | None = model_query,
    ) -> Response:
        """Search and browse the movies the model can recommend: without a query, popular and
        varied movies first; with one, best matches first."""
        store = served.get(model)
        if genre is not None and genre.casefold() in known_genres and \
                genre.casefold() not in store.genre_lookup:  # another served model's genre
            return JSONBytes({"total": 0, "offset": offset, "limit": limit, "movies": []})
        if query and query.strip():
            total, page = await run_in_threadpool(store.search, query, genre, year, limit,
                                                  offset)
        else:
            total, page = store.search(None, genre, year, limit, offset)
        return JSONBytes({"total": total, "offset": offset, "limit": limit,
                          "movies": [store.movie_json[i] for i in page]})

    @app.get("/movies/{movie_id}", response_model=schemas.Movie, tags=["movies"],
             responses=_ERRORS)
    async def movie(movie_id: _MOVIE_ID, model: str | None = model_query) -> Response:
        store = served.get(model)
        return JSONBytes(store.movie_json[int(store.item_index([movie_id])[0])])

    @app.get("/movies/{movie_id}/similar", response_model=schemas.SimilarMovies,
             tags=["movies"], responses=_ERRORS)
    async def similar(movie_id: _MOVIE_ID, k: _K = 10, model: str | None = model_query) -> Response:
        """The movies closest to this one in the model's item space (plus a genre term)."""
        store = served.get(model)
        pairs = store.similar(movie_id, k)
        return JSONBytes({"model": store.name,
                          "movie": store.movie_json[int(store.item_index([movie_id])[0])],
                          "similar": [{"movie": store.movie_json[i], "similarity": s}
                                      for i, s in pairs]})

    @app.get("/users/{user_id}/recommendations", response_model=schemas.Recommendations,
             tags=["recommendations"], responses=_ERRORS)
    async def user_recommendations(
        user_id: Annotated[int, PathParam(ge=0, le=schemas.MAX_ID)], k: _K = 10,
        model: str | None = model_query,
    ) -> Response:
        """Top k for a user the model was trained on; movies they rated are left out."""
        store = served.get(model)
        recs = await compute(store, store.for_user, user_id, k)
        body = user_payload(store, user_id, recs)
        remember(user_cache, user_cache_key(user_id, k, model), body, user_cache_size)
        return JSONBytes(body)

    @app.post("/recommendations", response_model=schemas.Recommendations,
              tags=["recommendations"], responses={
                  **_ERRORS, 413: {"model": schemas.ErrorMessage,
                                   "description": "Request body too large"}})
    async def recommendations(picks: schemas.PicksRequest, model: str | None = model_query
                              ) -> Response:
        """Top k for a new person from their picks (no account, no retraining): the model folds
        the liked movies in, in the order given (oldest first: a sequential model recommends
        what comes after the last one); movies like the disliked ones are pushed down; picks
        never come back. Picks the model knows nothing about are ignored and listed in
        `ignored`; with no usable like, popular movies come back (`popular`). Each result names
        the liked movie it is closest to in the model's item space."""
        store = served.get(model)
        answer = await compute(store, store.answer_picks, picks.liked, picks.disliked,
                               picks.k)
        return JSONBytes(picks_payload(store, answer))

    @app.get("/posters/{movie_id}", tags=["movies"], responses={
        200: {"content": {"image/svg+xml": {}, "image/jpeg": {}}}, **_ERRORS})
    def poster(movie_id: _MOVIE_ID) -> Response:
        """The movie's poster: the TMDB image when configured and available, else an SVG card
        with its title, year and genre colours."""
        store = served.with_movie(movie_id)
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


def _dataset(store: Store) -> str:
    return str(getattr(store.model, "dataset_name_", "") or "")


def _model_info(name: str, store: Store, default: bool) -> dict:
    return {"name": name, "model": store.model.name, "dataset": _dataset(store),
            "n_users": len(store.user_ids), "n_items": len(store.item_ids),
            "n_servable": int(store.servable.sum()), "default": default}


def create_app_from_env() -> FastAPI:
    """App factory for each worker process (``uvicorn --factory``): the artifacts from
    ``MOVIEREC_ARTIFACTS`` (JSON ``[[name, folder], ...]``) or ``MOVIEREC_ARTIFACT``, the default
    from ``MOVIEREC_DEFAULT_MODEL``, the data folder from ``MOVIEREC_DATA``, the known-user cache
    size from ``MOVIEREC_USER_CACHE`` (0: off). Compute threads are limited first."""
    from movierec.serving.served import from_env
    from movierec.serving.threads import limit_compute_threads

    limit_compute_threads(int(os.environ.get("MOVIEREC_COMPUTE_THREADS", "1")))
    artifacts, default = from_env()
    served = ServedModels.open(artifacts, default, os.environ.get("MOVIEREC_DATA") or None)
    limit_compute_threads(int(os.environ.get("MOVIEREC_COMPUTE_THREADS", "1")))  # torch loaded
    cache = int(os.environ.get("MOVIEREC_USER_CACHE", str(USER_CACHE_SIZE)))
    app = create_app(served, TmdbPosters.from_env(), user_cache_size=cache)
    from movierec.serving.threads import freeze_loaded_objects

    freeze_loaded_objects()
    return app
