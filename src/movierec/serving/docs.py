"""``/docs`` (Swagger UI) and ``/redoc`` that work offline: their JavaScript and CSS come from
the installed ``fastapi-offline`` package (which ships swagger-ui and redoc builds), served under
``/docs-assets``, instead of FastAPI's default CDN links."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_dir() -> Path:
    """The folder holding :data:`ASSET_FILES` (from the ``fastapi-offline`` package)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).with_name("static")


def add_offline_docs(app: FastAPI) -> None:
    """Mount the assets and add ``/docs`` and ``/redoc`` pages that use them (the app must be
    created with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title}: API reference",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False)
        # ReDoc's bundle links its "powered by" logo from a CDN: images and fetches stay local
        page.headers["Content-Security-Policy"] = "img-src 'self' data:; connect-src 'self'"
        return page
