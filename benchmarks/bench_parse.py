"""Parse speed and memory at ML-20M scale: files -> Dataset, and the Parquet-cache reload.

    python benchmarks/bench_parse.py [--folder DIR] [--preset ml-20m] [--layout csv] [--json OUT]

Writes a synthetic release shaped like ``--preset`` (default ML-20M: 138,493 users x 26,744
movies, 20,000,263 ratings as ratings.csv / movies.csv / tags.csv / links.csv) into ``--folder``
(default ``$TMPDIR/movierec-bench/<preset>-<layout>-seed<seed>``), or reuses it when a previous
run wrote it with the same arguments. Then, each in a fresh Python process so that no phase's
memory counts against another:

1. ``parse``: ``load_dataset(folder, use_cache=False)``: wall time, CPU time, peak RSS; the
   result is checked against the generator's own Dataset (same fingerprint);
2. ``cache``: ``load_dataset(folder, use_cache=True)`` twice with an empty cache folder: the
   first call parses and writes the cache, the second is the in-process reload;
3. ``reload``: the cached load again from a new process (what a second CLI call pays).

Targets: parse <= 15 s, peak RSS <= 4 GB, cached reload <= 2 s. Prints the figures, the
machine's cores, load average and the thread settings (polars' pool, POLARS_MAX_THREADS,
OMP/OpenBLAS); ``--json`` also writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"parse_s": 15.0, "parse_peak_rss_gb": 4.0, "reload_s": 2.0}


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _phase_generate(args) -> dict:
    from movierec.data.synthetic import generate, write_release

    t0, c0 = time.perf_counter(), time.process_time()
    data = generate(args.preset, seed=args.seed)
    t1, c1 = time.perf_counter(), time.process_time()
    write_release(data, args.folder, args.layout)
    t2 = time.perf_counter()
    peak = _peak_rss_gb()
    fingerprint = data.to_dataset().fingerprint
    return {"generate_s": t1 - t0, "generate_cpu_s": c1 - c0, "write_s": t2 - t1,
            "generate_peak_rss_gb": peak,
            "fingerprint": fingerprint, "n_ratings": data.ratings.height}  # fmt: skip


def _phase_parse(args) -> dict:
    t0 = time.perf_counter()
    from movierec.data.loading import load_dataset

    t1, c1 = time.perf_counter(), time.process_time()
    ds = load_dataset(args.folder, use_cache=False)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"import_s": t1 - t0, "parse_s": t2 - t1, "parse_cpu_s": c2 - c1,
            "parse_peak_rss_gb": _peak_rss_gb(), "fingerprint": ds.fingerprint,
            "dataset": repr(ds)}  # fmt: skip


def _phase_cache(args) -> dict:
    from movierec.data.loading import load_dataset

    t0 = time.perf_counter()
    load_dataset(args.folder, use_cache=True)
    t1 = time.perf_counter()
    ds = load_dataset(args.folder, use_cache=True)
    t2 = time.perf_counter()
    return {"parse_and_write_cache_s": t1 - t0, "reload_in_process_s": t2 - t1,
            "cache_peak_rss_gb": _peak_rss_gb(), "fingerprint": ds.fingerprint}  # fmt: skip


def _phase_reload(args) -> dict:
    t0 = time.perf_counter()
    from movierec.data.loading import load_dataset

    t1 = time.perf_counter()
    ds = load_dataset(args.folder, use_cache=True)
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "reload_s": t2 - t1, "reload_peak_rss_gb": _peak_rss_gb(),
            "fingerprint": ds.fingerprint}  # fmt: skip


PHASES = {"generate": _phase_generate, "parse": _phase_parse, "cache": _phase_cache,
          "reload": _phase_reload}  # fmt: skip


def _run_phase(phase: str, args, env: dict) -> dict:
    """Run one phase in a fresh interpreter; its last stdout line is the JSON result."""
    cmd = [sys.executable, __file__, "--phase", phase, "--folder", str(args.folder),
           "--preset", args.preset, "--layout", args.layout, "--seed", str(args.seed)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"phase {phase} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    import polars as pl

    from movierec.machine import cpu_model

    cpu = cpu_model()
    env = ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "polars_threads": pl.thread_pool_size(),
        "env": {k: os.environ.get(k, "(unset)") for k in env},
        "python": platform.python_version(),
        "polars": pl.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None)
    ap.add_argument("--preset", default="ml-20m")
    ap.add_argument("--layout", default="csv", choices=("csv", "dat", "ml-100k"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--phase", choices=tuple(PHASES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.folder is None:
        name = f"{args.preset}-{args.layout}-seed{args.seed}"
        args.folder = Path(tempfile.gettempdir()) / "movierec-bench" / name
    if args.phase:  # inside a child process
        print(json.dumps(PHASES[args.phase](args)))
        return

    env = dict(os.environ)
    marker = args.folder / "bench-parse.json"
    wanted = {"preset": args.preset, "layout": args.layout, "seed": args.seed}
    made = json.loads(marker.read_text()) if marker.is_file() else {}
    if {k: made.get(k) for k in wanted} == wanted:
        print(f"reusing {args.folder} (delete it to generate again)")
        gen = made
    else:
        print(f"generating {args.preset} ({args.layout}) into {args.folder} ...", flush=True)
        shutil.rmtree(args.folder, ignore_errors=True)
        gen = {**wanted, **_run_phase("generate", args, env)}
        marker.write_text(json.dumps(gen, indent=1))
        print(f"  generate {gen['generate_s']:.1f} s wall ({gen['generate_cpu_s']:.1f} s CPU), "
              f"write {gen['write_s']:.1f} s, "
              f"peak RSS {gen['generate_peak_rss_gb']:.2f} GB")  # fmt: skip
    size = sum(f.stat().st_size for f in args.folder.iterdir()) / 2**20
    print(f"  {gen['n_ratings']:,} ratings, {size:,.0f} MiB of files")

    with tempfile.TemporaryDirectory(prefix="movierec-bench-cache-") as cache:
        env["MOVIEREC_CACHE"] = cache  # never the user's cache, and empty to start with
        parse = _run_phase("parse", args, env)
        cached = _run_phase("cache", args, env)
        reload = _run_phase("reload", args, env)
    same = {parse["fingerprint"], cached["fingerprint"], reload["fingerprint"]} == {
        gen["fingerprint"]
    }
    result = {**wanted, "generation": gen, "parse": parse, "cache": cached, "reload": reload,
              "same_dataset": same, "machine": _machine()}  # fmt: skip

    def verdict(key: str, value: float) -> str:
        return "ok" if value <= TARGETS[key] else f"MISSES target {TARGETS[key]:g}"

    print(f"{parse['dataset']}; parsed data identical to the generator's: {same}")
    print(f"parse (files -> Dataset): {parse['parse_s']:.2f} s wall, {parse['parse_cpu_s']:.2f} s "
          f"CPU  [{verdict('parse_s', parse['parse_s'])}]")  # fmt: skip
    print(f"parse peak RSS:           {parse['parse_peak_rss_gb']:.2f} GB  "
          f"[{verdict('parse_peak_rss_gb', parse['parse_peak_rss_gb'])}]")  # fmt: skip
    print(f"first cached load:        {cached['parse_and_write_cache_s']:.2f} s (parse + write)")
    print(f"reload, same process:     {cached['reload_in_process_s']:.2f} s")
    print(f"reload, new process:      {reload['reload_s']:.2f} s (+ {reload['import_s']:.2f} s "
          f"import)  [{verdict('reload_s', reload['reload_s'])}]")  # fmt: skip
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), load average "
          f"{m['load_average']}, polars {m['polars']} with {m['polars_threads']} threads, "
          f"Python {m['python']}; {m['env']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
