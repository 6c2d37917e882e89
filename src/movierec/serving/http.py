"""HTTP plumbing in front of the routes: body limit, HEAD, error bodies, strict and fast JSON.

- :class:`Guard` (outermost ASGI layer): a request body over :data:`MAX_BODY` bytes is answered
  413 before anything parses it (from ``Content-Length`` at once, else while it streams in);
  ``HEAD`` is answered as ``GET`` without the body on every route.
- :func:`validation_problem`: the one 422 body (``detail``: one line; ``errors``: where and
  what, never the input itself), the same for FastAPI's validation and the store's
  :class:`~movierec.serving.store.BadRequest`, and documented as :class:`ValidationProblem`.
- :class:`StrictJSONRoute`: request bodies parsed by orjson, which refuses ``NaN`` and
  ``Infinity``, turns ``1e400`` and 5,000-digit integers into errors or floats (the strict
  models refuse those) instead of the standard library's 500 or 400.
- :class:`JSONBytes`: orjson rendering of payloads built in the response models' shape (movie
  parts are pre-serialised :class:`orjson.Fragment`), with no second pydantic pass.
"""

from __future__ import annotations

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

MAX_BODY = 64 * 1024
"""Bytes a request body may have: 500 picks of 10-digit ids take about 6 KiB."""
MAX_ERRORS = 10
MAX_LOC_PART = 40
MAX_DETAIL = 300
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class JSONBytes(Response):
    """A JSON answer rendered by orjson (bytes are sent as they are)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)


def dumps(payload) -> bytes:
    return orjson.dumps(payload)


class _OrjsonRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())  # JSONDecodeError: FastAPI's 422
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON bodies are parsed by orjson (see the module docstring)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            return await handler(_OrjsonRequest(request.scope, request.receive))
        return route


def _short(part) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)
    return text if len(text) <= MAX_LOC_PART else text[:MAX_LOC_PART] + "…"


def validation_problem(exc: RequestValidationError | Exception) -> dict:
    """The 422 body for ``exc``: ``{"detail": one line, "errors": [{loc, msg, type}]}``.

    No part of the input is echoed except the first characters of each location (a field name
    a client sent), so a huge or hostile body never comes back.
    """
    if not isinstance(exc, RequestValidationError):
        return {"detail": str(exc)[:MAX_DETAIL], "errors": []}
    errors = [{"loc": [_short(p) for p in e.get("loc", ())][:8],
               "msg": str(e.get("msg", ""))[:200], "type": str(e.get("type", ""))[:50]}
              for e in list(exc.errors())[:MAX_ERRORS]]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    more = len(exc.errors()) - 1
    detail = f"{where}: {first['msg']}" + (f" (and {more} more)" if more > 0 else "")
    return {"detail": detail[:MAX_DETAIL], "errors": errors}


async def _send_json(send, status: int, payload: dict, headers=()) -> None:
    body = dumps(payload)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Outermost ASGI layer: body limit (413) and HEAD answered as GET without a body."""

    def __init__(self, app, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "HEAD":
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
            return
        if method not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        too_big = {"detail": f"request body over {self.max_body:,} bytes"}
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_body:
                    await _send_json(send, 413, too_big, [(b"connection", b"close")])
                    return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_json(send, 413, too_big, [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)


def replay_body(body: bytes, receive):
    """An ASGI ``receive`` that first gives ``body`` (already read) as one message, then
    whatever ``receive`` gives (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


def _without_body(send):
    async def send_head(message):
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)
    return send_head
