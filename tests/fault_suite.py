"""Fault-injection suite (issue 14): SIGKILL a process at a seeded random moment while it writes
something, then check what is on disk.

Cases: ``download`` (from a throttled local HTTP server, ``--force`` over an older copy),
``artifact save`` (over an older artifact), ``eda`` (over an older report), ``dataset cache``
(the first parse of a release) and ``train`` (``movierec train --out`` over an older artifact).
Every output folder also holds a file of the user's, which must survive every trial.

A trial copies the case's template (the old output), starts a child process that prepares the
operation (imports, data, a fitted model) and says ``ready``; the parent says ``go``, sleeps a
seeded delay drawn uniformly from ``[0, 1.1 x`` the operation's duration in an uninterrupted
child ``]`` and kills the child with SIGKILL. The output must then be the old one or the new
one, complete (``absent`` counts as old where there was none); then the same operation, run to
the end, must succeed and leave no temporary file behind.

``tests/test_fault_injection.py`` runs a few seeded trials per case in CI;
``benchmarks/bench_faults.py`` runs 50 per case and prints the table.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
NOTE = "NOTES.md"  # the user's file in every output folder


class Partial(AssertionError):
    """The output is neither the old one nor the new one, or the user's file is gone."""


@dataclass
class Case:
    """``template(work)`` makes the old state in a folder (copied for each trial) and returns
    the context every step gets; ``prepare(ctx)`` runs in the child (and once in the parent)
    and returns ``run(trial_dir)``; ``state(trial_dir, ctx)`` says ``old`` / ``new`` / ``absent``
    or raises :class:`Partial`; ``leftovers(trial_dir)`` lists temporary files."""

    name: str
    template: Callable[[Path], dict]
    prepare: Callable[[dict], Callable[[Path], None]]
    state: Callable[[Path, dict], str]
    leftovers: Callable[[Path], list[str]]


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") and p.name != ".movierec-output") \
        if folder.is_dir() else []


def _note_kept(folder: Path) -> None:
    if not (folder / NOTE).is_file() or (folder / NOTE).read_text() != "mine\n":
        raise Partial(f"{folder / NOTE}: the user's file is gone or changed")


def _dataset(seed: int, n_ratings: int = 4000):
    from movierec.data.synthetic import generate

    return generate(n_users=max(120, n_ratings // 40), n_items=300, n_ratings=n_ratings,
                    seed=seed)


# ---------------------------------------------------------------------- artifact save
def _save_template(work: Path) -> dict:
    from movierec.models.registry import create

    create("popularity").fit(_dataset(1).to_dataset()).save(work / "model")
    (work / "model" / NOTE).write_text("mine\n")
    return {}


def _save_prepare(ctx: dict) -> Callable[[Path], None]:
    from movierec.models.registry import create

    model = create("itemknn").fit(_dataset(2).to_dataset())
    return lambda d: model.save(d / "model")


def _artifact_state(d: Path, ctx: dict, old: str = "Popularity", new: str = "ItemKNN") -> str:
    from movierec.errors import MovierecError
    from movierec.models.artifacts import load

    folder = d / "model"
    _note_kept(folder)
    try:
        name = type(load(folder)).__name__
    except MovierecError as e:
        raise Partial(f"the artifact does not load: {e}") from None
    return {old: "old", new: "new"}.get(name) or _raise(f"unexpected model {name}")


def _raise(message: str) -> str:
    raise Partial(message)


# ---------------------------------------------------------------------- eda
def _eda_template(work: Path) -> dict:
    from movierec.eda.report import write_report

    ds = _eda_dataset(1, "old-data")
    write_report(ds, work / "report")
    (work / "report" / NOTE).write_text("mine\n")
    return {"old": ds.name}


def _eda_prepare(ctx: dict) -> Callable[[Path], None]:
    from movierec.eda.report import write_report

    ds = _eda_dataset(2, "new-data")
    return lambda d: write_report(ds, d / "report")


def _eda_dataset(seed: int, name: str):
    """Ratings only (no movie or user table): the five core figures, a quick report."""
    from movierec.data.dataset import Dataset

    return Dataset.from_frames(name, _dataset(seed).to_dataset().ratings_frame())


def _eda_state(d: Path, ctx: dict) -> str:
    import re

    folder = d / "report"
    _note_kept(folder)
    page = (folder / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r"<img src='([^']+)'", page))
    pngs = {p.name for p in folder.glob("*.png")}
    if not links or links != pngs:
        raise Partial(f"index.html links {sorted(links)} but the folder holds {sorted(pngs)}")
    for name in pngs:
        if not (folder / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"):
            raise Partial(f"{name} is not a whole PNG")
    if "<h1>new-data:" in page:
        return "new"
    return "old" if f"<h1>{ctx['old']}:" in page else _raise("index.html names neither dataset")


# ---------------------------------------------------------------------- dataset cache
def _cache_template(work: Path) -> dict:
    from movierec.data.release_writer import write_release

    source = work.parent / "source"  # shared, never written after this
    if not source.exists():
        write_release(_dataset(3, 60_000), source, "csv")
    (work / "cache").mkdir(parents=True)
    return {"source": str(source)}


def _cache_prepare(ctx: dict) -> Callable[[Path], None]:
    from movierec.data.loading import load_dataset

    def run(d: Path) -> None:
        os.environ["MOVIEREC_CACHE"] = str(d / "cache")
        load_dataset(ctx["source"])

    return run


def _cache_state(d: Path, ctx: dict) -> str:
    from movierec.checksums import verify_manifest
    from movierec.data.dataset import Dataset
    from movierec.errors import CorruptFileError

    entries = [p for p in (d / "cache").iterdir() if not p.name.startswith(".")]
    if not entries:
        return "absent"
    (entry,) = entries
    names = sorted(p.name for p in entry.iterdir() if p.name not in (".movierec-output",
                                                                      "SHA256SUMS"))
    try:
        verify_manifest(entry, names)
        ds = Dataset.load(entry)
    except (CorruptFileError, OSError) as e:
        raise Partial(f"half a cache: {e}") from None
    if ds.n_ratings != _dataset(3, 60_000).ratings.height:
        raise Partial("the cache holds other data")
    return "new"


# ---------------------------------------------------------------------- download
class _SlowZip(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        if not self.path.endswith(".zip"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            for k in range(0, len(self.body), 16_384):  # ~ 3 MB/s: a download worth killing
                self.wfile.write(self.body[k:k + 16_384])
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


_SERVER: dict[str, str] = {}


def serve_release_zip() -> str:
    """A throttled local server of a synthetic ml-latest-small zip (started once); its URL."""
    if "url" in _SERVER:
        return _SERVER["url"]
    import tempfile

    from movierec.data.release_writer import write_release

    folder = write_release(_dataset(4, 30_000), tempfile.mkdtemp(prefix="movierec-zip-"), "csv")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in ("ratings.csv", "movies.csv"):
            zf.write(folder / name, f"ml-latest-small/{name}")
    shutil.rmtree(folder)
    _SlowZip.body = buf.getvalue()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowZip)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _SERVER["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/ml-latest-small.zip"
    _SERVER["md5"] = hashlib.md5(_SlowZip.body).hexdigest()
    _SERVER["ratings_md5"] = hashlib.md5(
        zipfile.ZipFile(io.BytesIO(_SlowZip.body)).read("ml-latest-small/ratings.csv")
    ).hexdigest()
    return _SERVER["url"]


def _download_template(work: Path) -> dict:
    serve_release_zip()
    old = work / "data" / "ml-latest-small"
    old.mkdir(parents=True)
    (old / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    (old / "movies.csv").write_text("movieId,title,genres\n1,Old (1995),Drama\n")
    (old / NOTE).write_text("mine\n")
    return dict(_SERVER)


def _download_prepare(ctx: dict) -> Callable[[Path], None]:
    from movierec.data.download import download

    return lambda d: download("ml-latest-small", d / "data", url=ctx["url"], md5=ctx["md5"],
                              force=True, progress=False, timeout=10)


def _download_state(d: Path, ctx: dict) -> str:
    folder = d / "data" / "ml-latest-small"
    _note_kept(folder)
    if sorted(p.name for p in folder.iterdir()) != sorted([NOTE, "movies.csv", "ratings.csv"]):
        raise Partial(f"the release folder holds {sorted(p.name for p in folder.iterdir())}")
    ratings = (folder / "ratings.csv").read_bytes()
    if ratings.count(b"\n") == 2 and b"Old (1995)" in (folder / "movies.csv").read_bytes():
        return "old"
    if hashlib.md5(ratings).hexdigest() == ctx["ratings_md5"]:
        return "new"
    raise Partial("ratings.csv is neither the old nor the downloaded one")


def _download_leftovers(d: Path) -> list[str]:
    return _temporaries(d / "data") + _temporaries(d / "data" / "ml-latest-small")


# ---------------------------------------------------------------------- train
def _train_template(work: Path) -> dict:
    import yaml

    from movierec.data.release_writer import write_release
    from movierec.models.registry import create

    source = work.parent / "train-source"
    if not source.exists():
        write_release(_dataset(5, 20_000), source, "csv")
    create("popularity").fit(_dataset(1).to_dataset()).save(work / "model")
    (work / "model" / NOTE).write_text("mine\n")
    config = work.parent / "train.yaml"
    config.write_text(yaml.safe_dump({"dataset": str(source), "split": "none",
                                      "model": {"name": "itemknn"}}))
    return {"config": str(config)}


def _train_prepare(ctx: dict) -> Callable[[Path], None]:
    import movierec.cli  # noqa: F401 - imported before "ready", as a user's process would be
    import movierec.evaluation.runner  # noqa: F401
    import movierec.models.baselines  # noqa: F401

    def run(d: Path) -> None:
        from movierec.cli import main

        os.environ["MOVIEREC_CACHE"] = str(d / "cache")
        old = sys.argv
        sys.argv = ["movierec", "train", ctx["config"], "--out", str(d / "model")]
        try:
            main()
        except SystemExit as e:
            if e.code not in (0, None):
                raise RuntimeError(f"movierec train exited with {e.code}") from None
        finally:
            sys.argv = old

    return run


CASES = {c.name: c for c in (
    Case("download", _download_template, _download_prepare, _download_state,
         _download_leftovers),
    Case("artifact save", _save_template, _save_prepare, _artifact_state,
         lambda d: _temporaries(d) + _temporaries(d / "model")),
    Case("eda", _eda_template, _eda_prepare, _eda_state,
         lambda d: _temporaries(d) + _temporaries(d / "report")),
    Case("dataset cache", _cache_template, _cache_prepare, _cache_state,
         lambda d: _temporaries(d / "cache")),
    Case("train", _train_template, _train_prepare, _artifact_state,
         lambda d: _temporaries(d) + _temporaries(d / "model")),
)}


# ---------------------------------------------------------------------- running
def child(case: str, ctx_json: str, trial_dir: str) -> None:
    """The killed process: prepare, say ready, wait for go, run, say done."""
    run = CASES[case].prepare(json.loads(ctx_json))
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    run(Path(trial_dir))
    print(f"done {time.perf_counter() - t0:.6f}", flush=True)


def _env() -> dict[str, str]:
    paths = [str(TESTS), *[p for p in sys.path if p]]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths),
            "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}


def _start(name: str, ctx: dict, trial_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, fault_suite; fault_suite.child(*sys.argv[1:])",
         name, json.dumps(ctx), str(trial_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env())
    if proc.stdout.readline().strip() != "ready":
        raise AssertionError(f"{name}: child failed to start: {proc.communicate()[1][-2000:]}")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc


def _child_duration(name: str, ctx: dict, trial_dir: Path) -> float:
    """Seconds an uninterrupted child takes from ``go`` to the end of the operation."""
    out, err = _start(name, ctx, trial_dir).communicate(timeout=600)
    done = [line for line in out.splitlines() if line.startswith("done ")]
    if not done:
        raise AssertionError(f"{name}: the uninterrupted child failed: {err[-2000:]}")
    return float(done[-1].split()[1])


def run_case(name: str, trials: int, work: Path, seed: int = 0) -> Counter:
    """``trials`` seeded kills of case ``name`` under ``work``; outcome counts, with
    ``partial`` / ``rerun failed`` / ``leftovers`` examples under keys holding ``e.g.``."""
    case = CASES[name]
    work.mkdir(parents=True, exist_ok=True)
    template = work / "template"
    ctx = case.template(template)
    run = case.prepare(ctx)
    scratch = work / "calibrate"
    shutil.copytree(template, scratch)
    duration = _child_duration(name, ctx, scratch)  # a cold child: the same imports as a trial
    if case.state(scratch, ctx) != "new":
        raise AssertionError(f"{name}: an uninterrupted run did not write the new output")
    rng = np.random.default_rng([seed, len(name)])
    counts: Counter = Counter()
    counts["duration s"] = 0
    for k in range(trials):
        trial_dir = work / f"trial{k}"
        shutil.copytree(template, trial_dir)
        delay = float(rng.uniform(0, 1.1 * duration))
        proc = _start(name, ctx, trial_dir)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        finished = proc.returncode == 0
        try:
            state = case.state(trial_dir, ctx)
            counts[state + (" (run had finished)" if finished else "")] += 1
        except (Partial, OSError, ValueError) as e:
            counts["partial"] += 1
            counts[f"partial e.g. trial {k} at {delay:.3f} s: {str(e)[:200]}"] += 0
        try:
            run(trial_dir)
            if case.state(trial_dir, ctx) != "new":
                raise Partial("the rerun did not write the new output")
        except Exception as e:  # noqa: BLE001 - counted
            counts["rerun failed"] += 1
            counts[f"rerun failed e.g. trial {k}: {type(e).__name__}: {str(e)[:200]}"] += 0
        left = case.leftovers(trial_dir)
        if left:
            counts["leftovers after rerun"] += 1
            counts[f"leftovers e.g. trial {k}: {left}"] += 0
        shutil.rmtree(trial_dir, ignore_errors=True)
    counts["duration ms"] = round(duration * 1000)
    del counts["duration s"]
    return counts


BAD = ("partial", "rerun failed", "leftovers after rerun")


def table(results: dict[str, Counter], trials: int) -> str:
    cols = ("old", "new", "absent", "partial", "rerun failed", "leftovers after rerun")
    lines = [f"| case ({trials} kills) | op ms | " + " | ".join(cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    examples = []
    for name, c in results.items():
        def n(key: str, c: Counter = c) -> int:
            return c.get(key, 0) + c.get(f"{key} (run had finished)", 0)

        lines.append(f"| {name} | {c['duration ms']} | " + " | ".join(str(n(k)) for k in cols)
                     + " |")
        examples += [f"{name}: {k}" for k in c if " e.g. " in k]
    return "\n".join(lines + ([""] + examples if examples else []))
