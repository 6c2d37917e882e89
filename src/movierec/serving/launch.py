"""What ``movierec serve`` does, kept out of the CLI so tests reach it: limit compute threads,
bind the port, load the artifacts, run the app with uvicorn (one process or several).
``movierec quickstart`` prepares its artifacts with :mod:`movierec.serving.quickstart`.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from movierec.errors import MovierecError

Progress = Callable[[str], None]


def serve(
    artifacts: Sequence[str | Path] | str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: str | Path | None = None,
    access_log: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
    default: str | None = None,
    user_cache_size: int | None = None,
    compute_threads: int = 1,
) -> None:
    """Load the artifacts and serve the API and web page until interrupted (or SIGTERM).

    Compute threads are limited first (:mod:`movierec.serving.threads`); the port is bound
    before any model loads, so a busy port is a one-line :class:`MovierecError`; every artifact
    is loaded (and checked) before anything claims to be serving. ``workers`` > 1 runs that many
    processes on the one socket, each loading the artifacts once. Idle keep-alive connections
    close after :data:`KEEP_ALIVE_S`; on SIGTERM / Ctrl+C, requests still open after
    :data:`GRACEFUL_S` (a client stalled mid-request) are dropped.
    """
    from movierec.serving.threads import freeze_loaded_objects, limit_compute_threads

    limit_compute_threads(compute_threads)
    try:
        import uvicorn
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise MovierecError("serving needs the serve extra: pip install 'movierec[serve]'") from e
    from movierec.serving.app import USER_CACHE_SIZE, create_app
    from movierec.serving.posters import TmdbPosters
    from movierec.serving.served import ServedModels, parse_artifacts, to_env

    if workers < 1:
        raise MovierecError(f"--workers must be at least 1, got {workers}")
    say = progress or (lambda message: None)
    specs = [artifacts] if isinstance(artifacts, str | Path) else list(artifacts)
    named = parse_artifacts(specs)
    if default is not None and default not in {n for n, _ in named}:
        raise MovierecError(f"--default {default}: no artifact has that name; served: "
                            f"{', '.join(n for n, _ in named)}")
    sock = bind_socket(host, port)
    try:
        if workers > 1:  # each worker loads its own copy: check them in a process that ends
            _check_in_child(named, default, data_dir)
            served = None
        else:
            served = ServedModels.open(named, default, data_dir)
            limit_compute_threads(compute_threads)  # torch is loaded now if a model needs it
            freeze_loaded_objects()
        cache = USER_CACHE_SIZE if user_cache_size is None else user_cache_size
        posters = TmdbPosters.from_env()
        logging.getLogger("movierec").setLevel(logging.INFO)
        options: dict[str, Any] = dict(
            access_log=access_log, log_level="info", timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=GRACEFUL_S)
        where = f"http://{_url_host(host)}:{sock.getsockname()[1]}/"
        if served is not None:
            models = ", ".join(f"{n} ({s.model.name}, {len(s.item_ids):,} movies)"
                               for n, s in served.stores.items())
            app = create_app(served, posters, user_cache_size=cache)
            say(f"serving {models} at {where} (default {served.default}; posters: "
                f"{'TMDB' if posters else 'generated'}; Ctrl+C stops)")
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
            return
        models = ", ".join(n for n, _ in named)
        os.environ.update(to_env(named, default))
        os.environ["MOVIEREC_USER_CACHE"] = str(cache)
        os.environ["MOVIEREC_COMPUTE_THREADS"] = str(compute_threads)
        if data_dir is not None:
            os.environ["MOVIEREC_DATA"] = str(Path(data_dir).resolve())
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config("movierec.serving.app:create_app_from_env", factory=True,
                                workers=workers, **options)
        say(f"serving {models} at {where} with {workers} worker processes (default "
            f"{default or named[0][0]}; Ctrl+C stops)")
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def _check_in_child(named, default, data_dir) -> None:
    """Load every artifact once in a child process, so a broken one is a one-line error here
    rather than workers that die and restart forever, without the parent keeping a copy."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        problem = pool.apply(_load_problem, (named, default, data_dir))
    if problem:
        raise MovierecError(problem)


def _load_problem(named, default, data_dir) -> str | None:
    from movierec.serving.served import ServedModels

    try:
        ServedModels.open(named, default, data_dir)
    except MovierecError as e:
        return str(e)
    return None


KEEP_ALIVE_S = 5
"""Seconds an idle keep-alive connection stays open."""
GRACEFUL_S = 5
"""Seconds requests still running at shutdown get before their connections are dropped."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; a :class:`MovierecError` of one line when the
    port is taken or the address is not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise MovierecError(f"port {port} on {host} is in use: stop the other server or use "
                                "--port N") from None
        raise MovierecError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
