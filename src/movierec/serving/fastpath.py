"""The two busy answers without the framework's per-request work, and the answer bodies.

:class:`FastPaths` is an ASGI layer (inside :class:`~movierec.serving.http.Guard`) that answers
a *valid* ``POST /recommendations`` and ``GET /users/{id}/recommendations`` itself: one pydantic
validation of the raw JSON (``PicksRequest.model_validate_json``), the store call, and bytes out;
measured, FastAPI's routing, dependency solving and response wrapping cost about as much CPU as
an iALS answer. Anything it does not fully accept (invalid or unusual input, unknown ids, another
content type) goes on to the FastAPI route, which gives the documented answer or error, so
errors have one source. Answers come from the same builders (:func:`picks_payload`,
:func:`user_payload`) either way; known-user answers are cached as bytes when the cache is on.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import anyio
import anyio.to_thread
from pydantic import ValidationError

from movierec.serving.http import dumps, replay_body
from movierec.serving.schemas import MAX_ID, MAX_K, PicksRequest
from movierec.serving.served import ServedModels
from movierec.serving.store import BadRequest, NotFound, PicksAnswer, Recommendation, Store

INLINE_MS = 2.0
"""A store whose model calls took less CPU than this at warm-up answers on the event loop: a
hop to the thread pool would cost more than the work."""

_USER_RECS_PATH = re.compile(r"/users/(\d{1,10})/recommendations")
_QUERY_PART = re.compile(rb"(k)=(\d{1,3})|(model)=([A-Za-z0-9_.-]{1,64})")
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


_COMPUTE: anyio.CapacityLimiter | None = None


async def compute(store: Store, fn, *args):
    """``fn(*args)`` on the event loop when the store's model is quick, else in a worker thread,
    one at a time: numerical work in forty threads at once only thrashes the cores (a slow model
    measured 4.9 ms of CPU per answer that way, against 1.5 ms alone); the rest wait their turn
    while the event loop keeps reading and writing."""
    global _COMPUTE
    if max(store.timings_ms.values(), default=0.0) < INLINE_MS:
        return fn(*args)
    if _COMPUTE is None:
        _COMPUTE = anyio.CapacityLimiter(1)
    return await anyio.to_thread.run_sync(fn, *args, limiter=_COMPUTE)


def recommendation_items(store: Store, recs: list[Recommendation]) -> list[dict]:
    return [{"movie": store.movie_json[r.item_idx], "score": r.score, "reason": r.reason,
             "because_id": None if r.because_idx is None else int(store.item_ids[r.because_idx])}
            for r in recs]


def user_payload(store: Store, user_id: int, recs: list[Recommendation]) -> bytes:
    return dumps({"user_id": user_id, "model": store.name, "ignored": [], "popular": False,
                  "recommendations": recommendation_items(store, recs)})


def picks_payload(store: Store, answer: PicksAnswer) -> bytes:
    return dumps({"user_id": None, "model": store.name, "ignored": answer.ignored,
                  "popular": answer.popular,
                  "recommendations": recommendation_items(store, answer.recommendations)})


def user_cache_key(user_id: int, k: int, model: str | None) -> tuple[str, int, int]:
    return (model or "", user_id, k)


def remember(cache: OrderedDict | None, key, body: bytes, size: int) -> None:
    """Keep ``body`` under ``key``, dropping the oldest entry past ``size`` entries."""
    if cache is None:
        return
    cache[key] = body
    if len(cache) > size:
        cache.popitem(last=False)


class FastPaths:
    """ASGI layer: valid picks and known-user requests answered directly (see the module
    docstring); ``cache`` (None: off) holds known-user answers as bytes."""

    def __init__(self, app, served: ServedModels, cache: OrderedDict | None,
                 cache_size: int) -> None:
        self.app, self.served, self.cache, self.cache_size = app, served, cache, cache_size

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            if method == "GET":
                path = _USER_RECS_PATH.fullmatch(scope["path"])
                query = _query(scope["query_string"]) if path else None
                if path is not None and query is not None and await self._user(
                        int(path[1]), query, send):
                    return
            elif method == "POST" and scope["path"] == "/recommendations":
                query = _query(scope["query_string"])
                if query is not None and "k" not in query and _is_json(scope["headers"]):
                    body, receive = await _read_body(receive)
                    if await self._picks(body, query.get("model"), send):
                        return
        await self.app(scope, receive, send)

    async def _user(self, user_id: int, query: dict[str, str], send) -> bool:
        k, model = int(query.get("k", "10")), query.get("model")
        key = user_cache_key(user_id, k, model)
        body = self.cache.get(key) if self.cache is not None else None
        if body is None:
            if not (user_id <= MAX_ID and 1 <= k <= MAX_K) or not self._knows(model):
                return False
            store = self.served.get(model)
            try:
                recs = await compute(store, store.for_user, user_id, k)
            except NotFound:
                return False
            body = user_payload(store, user_id, recs)
            remember(self.cache, key, body, self.cache_size)
        await _send_json(send, body)
        return True

    async def _picks(self, body: bytes, model: str | None, send) -> bool:
        if not self._knows(model):
            return False
        try:
            picks = PicksRequest.model_validate_json(body)
        except ValidationError:
            return False
        store = self.served.get(model)
        try:
            answer = await compute(store, store.answer_picks, picks.liked, picks.disliked,
                                   picks.k)
        except (NotFound, BadRequest):
            return False
        await _send_json(send, picks_payload(store, answer))
        return True

    def _knows(self, model: str | None) -> bool:
        return model is None or model in self.served.stores


def _query(query: bytes) -> dict[str, str] | None:
    """``k`` and ``model`` of a plain query string, or None for anything else (repeated or
    other parameters, unusual spellings): the FastAPI route judges those."""
    found: dict[str, str] = {}
    for part in query.split(b"&") if query else ():
        m = _QUERY_PART.fullmatch(part)
        if m is None:
            return None
        name, value = (m[1], m[2]) if m[1] else (m[3], m[4])
        if name.decode() in found:
            return None
        found[name.decode()] = value.decode()
    return found


def _is_json(headers) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.lower() in _JSON_TYPES
    return False


async def _read_body(receive):
    """The whole body, and a ``receive`` that gives it again to the next layer."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, replay_body(body, receive)


async def _send_json(send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
