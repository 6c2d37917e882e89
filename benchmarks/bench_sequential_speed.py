"""Seconds per training epoch: movierec's SASRec / GRU4Rec against RecBole 1.2.1's, side by side.

    python benchmarks/bench_sequential_speed.py --recbole-python /work/recbole-venv/bin/python \
        [--train-file ../shared/data/eval/ml-100k/loo_train.tsv] [--max-lens 50 200] \
        [--models sasrec gru4rec] [--epochs 2] [--threads 1] [--libraries recbole movierec] \
        [--recbole-batches 8]

Same data (the fixed ML-100K leave-one-out train file), same sequence length, same model size
(SASRec: hidden 64, 2 layers, 2 heads, feed-forward 256; GRU4Rec: one GRU layer, hidden and
embedding 64), cross-entropy over every item, one torch thread, one library after the other in
one run. RecBole runs in its own venv (``--recbole-python``; /work/shared/ENVIRONMENT.md) through
``benchmarks/recbole_epoch_driver.py``; this script converts the train file to RecBole's atomic
``.inter`` format in a temporary folder. movierec runs in a subprocess of this interpreter
(``--movierec-src`` puts another checkout's ``src`` first on its path, e.g. the ``seq`` branch
before it is merged) through the Python API: ``create("sasrec", ...).fit(train)`` with no
validation, the epoch times read from ``training_history()``.

Prints one JSON row per (library, model, max_len): mean wall and CPU seconds per epoch over the
epochs run, the epochs, samples and next-item *targets* (predictions with a loss) per epoch, batch
size, threads and ``uptime``'s load average before and after. The libraries' epochs differ in
what they cover: a RecBole sample is one prefix of a user's sequence (its last ``max_len`` items)
with one target, every train interaction but the user's first and RecBole's own last two
(valid/test); a movierec row is one user's last ``max_len + 1`` items with a target at every
position. ``seconds_per_10k_targets`` puts them on one scale. Each library's defaults otherwise
(batch size 2048 samples for RecBole, 128 users for movierec; dropout; learning rate).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRAIN = ROOT.parent / "shared" / "data" / "eval" / "ml-100k" / "loo_train.tsv"
RECBOLE_NAMES = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}
SIZES = {"sasrec": {"hidden": 64, "layers": 2, "heads": 2},
         "gru4rec": {"hidden": 64, "layers": 1}}


def uptime_load() -> list[float]:
    """The 1, 5 and 15 minute load averages (``uptime``)."""
    return [float(x) for x in os.getloadavg()]


def write_inter(train_file: Path, folder: Path, name: str) -> Path:
    """``folder/name/name.inter``: the tab-separated ``user item rating timestamp`` file as
    RecBole's atomic format (user, item, timestamp)."""
    import polars as pl

    df = pl.read_csv(train_file, separator="\t", has_header=False,
                     new_columns=["user_id", "item_id", "rating", "timestamp"])
    out = folder / name / f"{name}.inter"
    out.parent.mkdir(parents=True)
    df.select("user_id", "item_id", "timestamp").rename(
        {"user_id": "user_id:token", "item_id": "item_id:token", "timestamp": "timestamp:float"}
    ).write_csv(out, separator="\t")
    return out


def run_recbole(python: str, data_path: Path, name: str, model: str, max_len: int,
                epochs: int, threads: int, max_batches: int) -> list[dict]:
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "PYTHONPATH": ""}
    cmd = [python, str(ROOT / "benchmarks" / "recbole_epoch_driver.py"), str(data_path), name,
           "--model", RECBOLE_NAMES[model], "--max-len", str(max_len), "--epochs", str(epochs),
           "--threads", str(threads), "--max-batches", str(max_batches)]
    # in the temporary folder: RecBole writes log_tensorboard/ into its working directory
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                          cwd=data_path)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"RecBole {model} max_len {max_len} failed (exit "
                           f"{done.returncode}): {done.stderr.strip().splitlines()[-1:] or '?'}")
    return rows


def run_movierec(train_file: Path, data_dir: Path, model: str, max_len: int, epochs: int,
                 threads: int, src: str | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": "PASSIVE"}
    paths = [p for p in (src, str(ROOT / "src"), env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    cmd = [sys.executable, __file__, "--movierec-half", model, str(max_len), str(epochs),
           str(threads), str(train_file), str(data_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"movierec {model} max_len {max_len} failed (exit "
                           f"{done.returncode}): {done.stderr.strip().splitlines()[-1:] or '?'}")
    return rows[-1]


def movierec_half(model: str, max_len: int, epochs: int, threads: int, train_file: str,
                  data_dir: str) -> None:
    """In the subprocess: fit movierec's model on the train file and print its epoch times."""
    import numpy as np

    from movierec.data.loading import load_dataset
    from movierec.data.split_files import read_ratings_tsv
    from movierec.models.base import create
    from movierec.options import FitOptions

    full = load_dataset("ml-100k", data_dir)
    train = read_ratings_tsv(train_file, full)
    recommender = create(model, max_len=max_len, loss="ce", epochs=epochs, patience=None,
                         holdout=False, **SIZES[model])
    c0 = time.process_time()
    recommender.fit(train, options=FitOptions(num_threads=threads, progress=False))
    cpu = time.process_time() - c0
    seconds = [row["seconds"] for row in recommender.training_history()[0].epochs]
    lengths = np.bincount(train.user_idx, minlength=train.n_users)
    rows = int((lengths >= 2).sum())
    targets = int(np.minimum(lengths - 1, max_len).clip(0).sum())
    import torch

    print(json.dumps({"seconds": seconds, "fit_cpu_seconds": cpu, "samples": rows,
                      "targets": targets, "batch_size": recommender.get_params()["batch_size"],
                      "threads": torch.get_num_threads() if threads == 0 else threads}))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--movierec-half"]:
        model, max_len, epochs, threads, train_file, data_dir = argv[1:7]
        movierec_half(model, int(max_len), int(epochs), int(threads), train_file, data_dir)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recbole-python", default="/work/recbole-venv/bin/python",
                    help="Interpreter of the venv holding recbole==1.2.1.")
    ap.add_argument("--train-file", type=Path, default=DEFAULT_TRAIN)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                    help="Folder holding ml-100k (movierec maps the train file's ids on it).")
    ap.add_argument("--max-lens", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--models", nargs="+", choices=list(RECBOLE_NAMES),
                    default=list(RECBOLE_NAMES))
    ap.add_argument("--libraries", nargs="+", choices=["recbole", "movierec"],
                    default=["recbole", "movierec"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recbole-batches", type=int, default=0,
                    help="Time only RecBole's first N batches per epoch, scaled to the epoch by "
                    "samples (0: whole epochs; its batches are equal, so N = 8 of ~48 is close).")
    ap.add_argument("--movierec-src", default=None,
                    help="A checkout's src folder put first on movierec's path.")
    args = ap.parse_args(argv)
    if not args.train_file.is_file():
        sys.exit(f"--train-file {args.train_file}: no such file (the fixed ML-100K leave-one-out "
                 "train file lives in ../shared/data/eval/ml-100k/)")
    if "recbole" in args.libraries and not Path(args.recbole_python).is_file():
        sys.exit(f"--recbole-python {args.recbole_python}: no such interpreter; create RecBole's "
                 "venv as /work/shared/ENVIRONMENT.md says")
    with tempfile.TemporaryDirectory(prefix="bench-seq-") as tmp:
        name = "movierec_bench"
        if "recbole" in args.libraries:
            write_inter(args.train_file, Path(tmp), name)
        for model in args.models:
            for max_len in args.max_lens:
                for library in args.libraries:
                    before = uptime_load()
                    try:
                        row = measure(args, library, Path(tmp), name, model, max_len)
                    except RuntimeError as error:  # one failed run does not lose the others
                        row = {"library": library, "model": model, "max_len": max_len,
                               "error": str(error)[:300]}
                    print(json.dumps({**row, "load_before": before,
                                      "load_after": uptime_load()}), flush=True)
    return 0


def measure(args: argparse.Namespace, library: str, tmp: Path, name: str, model: str,
            max_len: int) -> dict:
    """One row: the epoch times of ``library``'s ``model`` at ``max_len``."""
    if library == "recbole":
        epochs = run_recbole(args.recbole_python, Path(tmp), name, model,
                             max_len, args.epochs, args.threads, args.recbole_batches)
        wall = [e["seconds"] for e in epochs]
        cpu = sum(e["cpu_seconds"] for e in epochs) / len(epochs)
        samples = targets = epochs[0]["samples"]
        batch, threads = epochs[0]["batch_size"], epochs[0]["threads"]
        timed = {"timed_batches": epochs[0]["timed_batches"], "batches": epochs[0]["batches"]}
    else:
        out = run_movierec(args.train_file, args.data_dir, model, max_len,
                           args.epochs, args.threads, args.movierec_src)
        wall = out["seconds"]
        cpu = out["fit_cpu_seconds"] / len(wall)
        samples, targets = out["samples"], out["targets"]
        batch, threads = out["batch_size"], out["threads"]
        timed = {}
    mean = sum(wall) / len(wall)
    return {
        "library": library, "model": model, "max_len": max_len,
        "seconds_per_epoch": round(mean, 2),
        "cpu_seconds_per_epoch": round(cpu, 2),
        "epoch_seconds": [round(w, 2) for w in wall],
        "samples_per_epoch": samples, "targets_per_epoch": targets,
        "seconds_per_10k_targets": round(1e4 * mean / max(1, targets), 2),
        "batch_size": batch, "threads": threads, **timed,
    }


if __name__ == "__main__":
    sys.exit(main())
