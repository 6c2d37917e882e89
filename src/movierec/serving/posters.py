"""Movie posters: TMDB images when ``TMDB_API_KEY`` is set, else generated SVG poster cards.

The browser only ever asks this server for ``/posters/{movie_id}``; TMDB is contacted from the
server (with short timeouts), so the key never reaches the browser. Fetched images are cached on
disk (``$MOVIEREC_CACHE/posters`` by default), failures are remembered for a while so that a
missing or slow TMDB does not slow every page, and any failure falls back to the SVG card.
The key is never logged: log lines name the TMDB id, never a URL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from movierec.files import write_bytes_atomically

log = logging.getLogger(__name__)

GENRE_COLOURS: dict[str, str] = {
    "Action": "#c0392b",
    "Adventure": "#d35400",
    "Animation": "#f39c12",
    "Children": "#f1c40f",
    "Comedy": "#e67e22",
    "Crime": "#34495e",
    "Documentary": "#16a085",
    "Drama": "#8e44ad",
    "Fantasy": "#9b59b6",
    "Film-Noir": "#2c3e50",
    "Horror": "#7b1113",
    "IMAX": "#2980b9",
    "Musical": "#e84393",
    "Mystery": "#4a4e69",
    "Romance": "#d63384",
    "Sci-Fi": "#1f6f8b",
    "Thriller": "#5d3a3a",
    "War": "#556b2f",
    "Western": "#a0522d",
}
"""Colour of each MovieLens genre on poster cards and genre chips."""

_FALLBACK_PALETTE = ("#3d5a80", "#6d597a", "#355070", "#6b705c", "#5f0f40", "#0f4c5c")
NO_GENRE_COLOUR = "#555b6e"

IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp"}
MAX_IMAGE_BYTES = 2_000_000
FAILURE_TTL_S = 600.0
"""How long a failed TMDB look-up is remembered before it is tried again."""


def genre_colour(genre: str) -> str:
    """A stable ``#rrggbb`` colour for a genre (known genres have fixed colours)."""
    if genre in GENRE_COLOURS:
        return GENRE_COLOURS[genre]
    digest = hashlib.sha256(genre.encode()).digest()
    return _FALLBACK_PALETTE[digest[0] % len(_FALLBACK_PALETTE)]


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines (the last one ellipsised)."""
    words, lines, line = text.split(), [], ""
    for word in words:
        while len(word) > width:  # a very long word is cut across lines
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = f"{line} {word}".strip()
        if len(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return lines or [""]


def poster_svg(title: str, year: int | None, genres: list[str]) -> str:
    """An SVG poster card (2:3, 200 x 300 user units): title, year and genre colour bands.

    Every piece of text is XML-escaped, so any title is safe to embed.
    """
    colours = [genre_colour(g) for g in genres[:3]] or [NO_GENRE_COLOUR]
    top, bottom = colours[0], colours[-1] if len(colours) > 1 else "#1b1b24"
    size = 22 if len(title) <= 24 else 19 if len(title) <= 48 else 16
    width = {22: 13, 19: 16, 16: 19}[size]
    lines = _wrap(title, width, 5)
    y0 = 128 - (len(lines) - 1) * size * 0.6
    text = "".join(
        f'<tspan x="100" y="{y0 + i * size * 1.2:.0f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    bands = "".join(
        f'<rect x="{16 + i * 58}" y="262" width="52" height="6" rx="3" fill="{c}" '
        f'stroke="#fff" stroke-opacity=".5"/>'
        for i, c in enumerate(colours)
    )
    genre_text = escape(" · ".join(genres[:3]) if genres else "no genre")
    year_text = escape(str(year)) if year is not None else ""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 300" width="200" height="300" '
        f'role="img" aria-label="{escape(title)}">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        "</linearGradient></defs>"
        '<rect width="200" height="300" fill="url(#g)"/>'
        '<rect x="8" y="8" width="184" height="284" rx="6" fill="none" stroke="#fff" '
        'stroke-opacity=".35"/>'
        '<text font-family="Georgia, serif" font-weight="700" fill="#fff" text-anchor="middle" '
        f'font-size="{size}">{text}</text>'
        '<text x="100" y="222" font-family="Helvetica, Arial, sans-serif" font-size="18" '
        f'fill="#fff" fill-opacity=".9" text-anchor="middle">{year_text}</text>'
        '<text x="100" y="250" font-family="Helvetica, Arial, sans-serif" font-size="11" '
        f'fill="#fff" fill-opacity=".85" text-anchor="middle">{genre_text}</text>'
        f"{bands}</svg>"
    )


def default_poster_cache() -> Path:
    """``$MOVIEREC_CACHE/posters``, else ``$MOVIEREC_DATA/parsed/posters`` or the home cache."""
    if os.environ.get("MOVIEREC_CACHE"):
        return Path(os.environ["MOVIEREC_CACHE"]) / "posters"
    base = os.environ.get("MOVIEREC_DATA")
    root = Path(base) / "parsed" if base else Path.home() / ".cache" / "movierec" / "parsed"
    return root / "posters"


@dataclass
class TmdbPosters:
    """Poster images from TMDB, fetched server-side and cached on disk.

    ``api_key`` is a v3 key (sent as the ``api_key`` query parameter) or a v4 read access token
    (a long ``eyJ...`` string, sent as a Bearer header). ``api_url`` and ``image_url`` exist so
    tests can point at a local fake server.
    """

    api_key: str = field(repr=False)
    cache_dir: Path = field(default_factory=default_poster_cache)
    api_url: str = "https://api.themoviedb.org/3"
    image_url: str = "https://image.tmdb.org/t/p/w342"
    timeout_s: float = 3.0
    _failed: dict[int, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, cache_dir: Path | None = None) -> TmdbPosters | None:
        """A fetcher configured by ``TMDB_API_KEY`` (and optional ``TMDB_API_URL``,
        ``TMDB_IMAGE_URL``), or None when no key is set."""
        key = os.environ.get("TMDB_API_KEY", "").strip()
        if not key:
            return None
        kwargs: dict = {"api_key": key}
        if cache_dir is not None:
            kwargs["cache_dir"] = cache_dir
        if os.environ.get("TMDB_API_URL"):
            kwargs["api_url"] = os.environ["TMDB_API_URL"].rstrip("/")
        if os.environ.get("TMDB_IMAGE_URL"):
            kwargs["image_url"] = os.environ["TMDB_IMAGE_URL"].rstrip("/")
        return cls(**kwargs)

    def image(self, tmdb_id: int) -> tuple[bytes, str] | None:
        """``(image bytes, media type)`` of a movie's poster, or None when there is none (no
        poster on TMDB, TMDB unreachable or slow, a bad answer). Never raises for TMDB trouble."""
        cached = self._cached(tmdb_id)
        if cached is not None:
            return cached
        with self._lock:
            failed_at = self._failed.get(tmdb_id)
        if failed_at is not None and time.monotonic() - failed_at < FAILURE_TTL_S:
            return None
        try:
            result = self._fetch(tmdb_id)
        except (OSError, ValueError) as e:  # URLError, timeouts, HTTP errors, bad JSON
            status = getattr(e, "code", None)
            log.warning("TMDB poster for tmdb id %d not fetched (%s%s); using the SVG card",
                        tmdb_id, type(e).__name__, f" {status}" if status else "")
            result = None
        if result is None:
            with self._lock:
                self._failed[tmdb_id] = time.monotonic()
            return None
        self._store(tmdb_id, *result)
        return result

    # ------------------------------------------------------------------ internals
    def _paths(self, tmdb_id: int) -> tuple[Path, Path]:
        return self.cache_dir / f"{tmdb_id}.img", self.cache_dir / f"{tmdb_id}.type"

    def _cached(self, tmdb_id: int) -> tuple[bytes, str] | None:
        img, kind = self._paths(tmdb_id)
        try:
            media_type = kind.read_text().strip()
            data = img.read_bytes()
        except OSError:
            return None
        return (data, media_type) if media_type in IMAGE_TYPES and data else None

    def _store(self, tmdb_id: int, data: bytes, media_type: str) -> None:
        img, kind = self._paths(tmdb_id)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for path, payload in ((img, data), (kind, media_type.encode())):
                write_bytes_atomically(path, payload, lock=False)  # no temp left on failure
        except OSError as e:
            log.warning("poster cache %s not writable (%s); posters are fetched each time",
                        self.cache_dir, type(e).__name__)

    def _get(self, url: str, params: dict[str, str]) -> tuple[bytes, str]:
        headers = {"Accept": "application/json, image/*"}
        if self.api_key.startswith("eyJ"):
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif params:
            params = {**params, "api_key": self.api_key}
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            body = response.read(MAX_IMAGE_BYTES + 1)
            media_type = response.headers.get_content_type()
        if len(body) > MAX_IMAGE_BYTES:
            raise ValueError(f"answer larger than {MAX_IMAGE_BYTES} bytes")
        return body, media_type

    def _fetch(self, tmdb_id: int) -> tuple[bytes, str] | None:
        body, _ = self._get(f"{self.api_url}/movie/{int(tmdb_id)}", {"language": "en-US"})
        info = json.loads(body)
        poster_path = info.get("poster_path") if isinstance(info, dict) else None
        if not isinstance(poster_path, str) or not poster_path.startswith("/") or ".." in \
                poster_path or "?" in poster_path:
            return None
        data, media_type = self._get(f"{self.image_url}{poster_path}", {})
        if media_type not in IMAGE_TYPES:
            raise ValueError(f"poster answer is {media_type}, not an image")
        return data, media_type
