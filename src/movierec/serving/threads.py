"""Compute threads and memory of a serving process: one thread per request, never a pool per
library per request; the loaded models kept out of the garbage collector's walks.

A server answers many small requests at once. If numpy's BLAS, OpenMP (implicit) and torch each
start a pool as wide as the machine inside every request thread, the pools fight for the cores:
on 2 cores, 32 connections got ~12 req/s with p50 0.7 s (measured 2026-12, iALS), against
1,000+ req/s with one compute thread. :func:`limit_compute_threads` sets that one thread for
the libraries already loaded (``threadpoolctl`` for BLAS and OpenMP, ``torch.set_num_threads``)
and, through the environment, for those loaded later and for worker processes started from this
one (they read ``OMP_NUM_THREADS`` & co. when they load).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "POLARS_MAX_THREADS")
"""Read by each library when it loads (polars: its own pool, used at start-up only)."""


def limit_compute_threads(threads: int = 1) -> dict[str, object]:
    """Give BLAS, OpenMP and torch ``threads`` threads each in this process and its children.

    Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), so a pool that
    a library starts anyway costs no CPU between requests. Returns what was set (for the log).
    """
    if threads < 1:
        raise ValueError(f"compute threads must be >= 1, got {threads}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    done: dict[str, object] = {"env": threads}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn / implicit
        log.warning("threadpoolctl is not installed: BLAS pools already started keep their size")
    else:
        # not used as a context manager: the limit stays for the life of the process
        threadpool_limits(limits=threads)
        done["threadpoolctl"] = threads
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # only settable before torch's first parallel work
            pass
        done["torch"] = torch.get_num_threads()
    return done


def compute_threads() -> dict[str, int]:
    """Threads each loaded compute library would use now: ``{"blas": n, "openmp": n,
    "torch": n}`` (a library that is not loaded is left out)."""
    out: dict[str, int] = {}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        threadpool_info = list
    for pool in threadpool_info():
        api = str(pool.get("user_api"))
        out[api] = max(out.get(api, 0), int(pool.get("num_threads", 0)))
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = int(torch.get_num_threads())
    return out


def freeze_loaded_objects() -> None:
    """Move everything loaded so far (models, catalogue, the app) out of the garbage collector's
    reach: they live as long as the server, and collections that walk them show up as latency
    spikes under load (gc.freeze, Python 3.7+)."""
    import gc

    gc.collect()
    gc.freeze()
