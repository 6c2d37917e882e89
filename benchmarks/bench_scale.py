"""The whole pipeline at the sources' scale (ML-20M / ML-32M), stage by stage, each stage in a
fresh process: what a new user runs, timed from files to served answers.

Stages (each a subprocess of the ``movierec`` CLI where a command exists, else a small
``python -c`` driver; each under ``flock <lock>``, so only one heavy run holds the machine's
memory at a time; the lock wait is not timed):

* ``parse``: ``movierec datasets info <release> --json`` on a cold cache (the parse cache of the
  release is removed first);
* ``split``: the leave-one-out split with 99 sampled negatives per user (driver);
* ``ials_fit``: ``movierec train`` iALS, 64 factors, 15 iterations, on the split's train part;
* ``neumf_epoch``: ``movierec train`` NeuMF of the tuned recipe's shape
  (``configs/neumf-ml100k.yaml``: 64 + 64 factors, MLP [128, 64], dropout 0.2), no
  pre-training, one epoch with 4 negatives per positive, batch 32,768;
* ``p1_<model>`` / ``p2_<model>``: ``movierec evaluate --artifact ... --protocol p1|p2``
  (P2: full ranking over every user);
* ``artifact_<model>``: load the artifact and save it again (driver);
* ``neumf_torchrun``: the ``neumf_epoch`` run under ``torchrun --standalone --nproc-per-node
  2`` (Lightning DDP, gloo: the README's multi-machine command on one machine), one thread per
  process; samples per second per process and in total;
* ``serve_<model>``: ``movierec serve --artifact ...`` as the README starts it: seconds until
  ``/health`` answers, then ``--requests`` new-person requests (``POST /recommendations``, 5
  picks among the 500 most rated movies, one at a time), p50 / p99 in ms.

Prints one JSON row per stage: stage, wall_s, cpu_s (user + system of the stage's processes),
peak_rss_gb (the largest process), load average before and after, the machine, and what the
command printed as figures. Rows also go to ``--out`` (JSON lines) as they come.

    python benchmarks/bench_scale.py --preset ml-20m
    python benchmarks/bench_scale.py --preset ml-20m --stages neumf_epoch,p2_neumf \
        --neumf-set precision=bf16-mixed --neumf-set fused_optimizer=true
    python benchmarks/bench_scale.py --preset ml-32m --stages parse,split,ials_fit,p2_ials
    python benchmarks/bench_scale.py --dataset ml-20m --data-dir ~/movielens   # a real release
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from movierec.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("parse", "split", "ials_fit", "neumf_epoch", "p1_ials", "p2_ials", "p1_neumf",
          "p2_neumf", "artifact_ials", "artifact_neumf", "serve_ials", "serve_neumf",
          "neumf_torchrun")
TORCHRUN_PROCESSES = 2
NEUMF_SHAPE = {"factors": 64, "mlp_factors": 64, "layers": [128, 64], "dropout": 0.2}


def python() -> list[str]:
    return [sys.executable]


def cli(*args: str) -> list[str]:
    return [*python(), "-m", "movierec.cli", *args]


def timed(cmd: list[str], lock: str | None, env: dict[str, str],
          stdin_driver: str | None = None) -> tuple[dict, str]:
    """Run ``cmd`` (under ``flock lock``) through ``/usr/bin/time -v``; returns the figures and
    the command's stdout."""
    report = Path(env["BENCH_TMP"]) / "time.txt"
    wrapped = ["/usr/bin/time", "-v", "-o", str(report), *cmd]
    if lock:
        wrapped = ["flock", lock, *wrapped]
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    proc = subprocess.run(wrapped, cwd=ROOT, env=env, capture_output=True, text=True,
                          input=stdin_driver)
    wall_outer = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"stage failed ({' '.join(cmd[:6])} ...):\n{proc.stderr[-3000:]}")
    fields = {}
    for line in report.read_text().splitlines():
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
    wall = _clock(fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "0:0"))
    cpu = float(fields.get("User time (seconds)", 0)) + float(fields.get("System time (seconds)",
                                                                         0))
    rss = int(fields.get("Maximum resident set size (kbytes)", 0)) / 1e6
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_gb": round(rss, 2),
            "lock_wait_s": round(max(0.0, wall_outer - wall), 1),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in os.getloadavg()]}, proc.stdout


def _clock(text: str) -> float:
    parts = [float(p) for p in text.split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def last_json(text: str) -> dict:
    """The last JSON object a command printed (``--json`` output or a driver's line)."""
    start = text.rfind("\n{")
    start = 0 if start < 0 else start + 1
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
    return {}


# --------------------------------------------------------------------------------- the stages
SPLIT_DRIVER = """
import json, time
from movierec.data.loading import load_dataset
from movierec.data.splits import generate_loo
full = load_dataset({release!r})
t0 = time.perf_counter()
split = generate_loo(full, n_negatives=99)
print(json.dumps({{"split_s": round(time.perf_counter() - t0, 2),
                  "test_users": int(split.test.n_ratings),
                  "train_ratings": split.train.n_ratings}}))
"""

ARTIFACT_DRIVER = """
import json, time, shutil
from movierec.models.artifacts import load
t0 = time.perf_counter()
model = load({artifact!r})
loaded = time.perf_counter() - t0
shutil.rmtree({copy!r}, ignore_errors=True)
t0 = time.perf_counter()
model.save({copy!r})
print(json.dumps({{"load_s": round(loaded, 2), "save_s": round(time.perf_counter() - t0, 2)}}))
"""


def neumf_settings(pairs: list[str]) -> dict:
    """``--neumf-set KEY=VALUE`` pairs as NeuMF hyper-parameters (values read as YAML, as in a
    config: ``precision=bf16-mixed``, ``fused_optimizer=true``)."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--neumf-set {pair!r}: expected KEY=VALUE, e.g. precision=bf16-mixed")
        out[key.strip()] = yaml.safe_load(value)
    return out


def write_configs(work: Path, release: str, neumf_extra: dict | None = None) -> dict[str, Path]:
    """The iALS and NeuMF configs of the run (``movierec train`` YAML); ``neumf_extra``: more
    NeuMF hyper-parameters, exactly as a user would put them under ``model.params``."""
    import yaml

    base = {"dataset": release, "split": "generate", "seed": 0}
    ials = {**base, "model": {"name": "ials", "params": {"factors": 64, "iterations": 15}}}
    neumf = {**base, "model": {"name": "neumf", "params": {
        **NEUMF_SHAPE, "n_negatives": 4, "batch_size": 32768, "epochs": 1, "pretrain": False,
        "lr": 0.001, **(neumf_extra or {})}}, "run": {"num_threads": 2}}
    # the same epoch under torchrun: Lightning DDP, each process one thread of the two cores
    ddp = {**neumf, "run": {"num_threads": 1, "trainer": "lightning", "strategy": "ddp",
                            "devices": TORCHRUN_PROCESSES}}
    paths = {}
    for name, cfg in (("ials", ials), ("neumf", neumf), ("neumf_ddp", ddp)):
        paths[name] = work / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(cfg, sort_keys=False))
    return paths


def serve_stage(artifact: Path, release_items: list[int], requests: int, env: dict[str, str],
                lock: str | None) -> dict:
    """Start ``movierec serve``; time /health; then ``requests`` new-person requests."""
    import random

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = cli("serve", "--artifact", str(artifact), "--port", str(port))
    lock_fd = None
    if lock:
        lock_fd = open(lock)  # noqa: SIM115 - held for the whole stage
        import fcntl

        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(Path(env["BENCH_TMP"]) / "srv.txt"),
                             *cmd], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"movierec serve exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
            if time.perf_counter() - t0 > 900:
                raise SystemExit("movierec serve did not answer /health in 15 minutes")
        startup = time.perf_counter() - t0
        rng = random.Random(0)
        times = []
        for n in range(requests + 5):
            body = json.dumps({"liked": rng.sample(release_items, 5), "k": 10}).encode()
            req = urllib.request.Request(f"{url}/recommendations", data=body,
                                         headers={"Content-Type": "application/json"})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
                if r.status != 200:
                    raise SystemExit(f"POST /recommendations answered {r.status}")
            if n >= 5:  # the first few warm the caches
                times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        return {"startup_s": round(startup, 2), "requests": len(times),
                "p50_ms": round(times[len(times) // 2], 2),
                "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
                "load_before": [round(x, 2) for x in load0],
                "load_after": [round(x, 2) for x in os.getloadavg()]}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if lock_fd is not None:
            lock_fd.close()


def _epoch_samples(release: str) -> int:
    """Samples in one NeuMF epoch of the run: the train part's ratings (every rating less one
    per user, ``split: generate``) times 1 + 4 negatives."""
    from movierec.data.loading import load_dataset

    ds = load_dataset(release)
    return (ds.n_ratings - ds.n_users) * 5


def popular_items(release: str, n: int = 500) -> list[int]:
    """Ids of the ``n`` most rated movies (the picks of the serving requests)."""
    import numpy as np

    from movierec.data.loading import load_dataset

    ds = load_dataset(release)
    counts = np.bincount(ds.item_idx, minlength=ds.n_items)
    return [int(x) for x in ds.item_ids[np.argsort(-counts)[:n]]]


def ensure_release(preset: str, seed: int, cache: Path) -> Path:
    """The synthetic release of ``preset`` in ``cache`` (generated once, in a subprocess)."""
    from movierec.data.synthetic import PRESETS

    if preset not in PRESETS:
        raise SystemExit(f"preset {preset!r} is not in this movierec ({', '.join(PRESETS)}); "
                         "ml-32m comes with `movierec datasets synthesize`")
    folder = cache / f"{preset}-s{seed}"
    if (folder / "README.txt").exists():
        return folder
    tmp = cache / f"{preset}-s{seed}.tmp"
    code = ("from movierec.data.synthetic import generate\n"
            "from movierec.data.release_writer import write_release\n"
            f"write_release(generate(preset={preset!r}, seed={seed}), {str(tmp)!r}, 'csv')\n")
    subprocess.run([*python(), "-c", code], check=True, env=_env(cache))
    tmp.rename(folder)
    return folder


def _env(work: Path) -> dict[str, str]:
    """The caller's environment as it is (no thread variables: the figures are those of the
    commands a user runs), plus where this source tree and the stage's scratch files are."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"),
                                                    env.get("PYTHONPATH")) if p)
    env["BENCH_TMP"] = str(work)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", help="synthetic release shaped like ml-20m or ml-32m")
    ap.add_argument("--dataset", help="a release name or folder instead of --preset")
    ap.add_argument("--data-dir", help="where --dataset lives")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic release")
    ap.add_argument("--cache", default="/tmp/scale", help="synthetic releases and artifacts")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--lock", default="/work/wt/heavy.lock",
                    help="flock file held by every stage ('' for none)")
    ap.add_argument("--out", help="also append the JSON rows to this file")
    ap.add_argument("--neumf-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a NeuMF hyper-parameter of the run's config, e.g. precision=bf16-mixed "
                         "or fused_optimizer=true (repeatable); stated in the NeuMF rows")
    args = ap.parse_args()
    neumf_extra = neumf_settings(args.neumf_set)
    if bool(args.preset) == bool(args.dataset):
        ap.error("give --preset or --dataset")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.preset:
        release = str(ensure_release(args.preset, args.seed, cache))
        label = f"synthetic {args.preset} (seed {args.seed})"
    elif args.data_dir and not Path(args.dataset).exists():
        release = str(Path(args.data_dir) / args.dataset)
        label = args.dataset
    else:
        release, label = args.dataset, args.dataset
    work = cache / f"bench-{Path(release).name}"
    work.mkdir(parents=True, exist_ok=True)
    env = _env(work)
    lock = args.lock or None
    configs = write_configs(work, release, neumf_extra)
    artifacts = {m: work / f"artifact-{m}" for m in ("ials", "neumf")}
    machine = machine_info()
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(wanted) - set(STAGES)
    if unknown:
        ap.error(f"unknown stages {sorted(unknown)}; stages: {', '.join(STAGES)}")

    def emit(stage: str, figures: dict, extra: dict) -> None:
        row = {"benchmark": "scale", "dataset": label, "stage": stage, **figures, **extra,
               "cpu": machine["cpu"], "cpus": machine["cpus"]}
        if "neumf" in stage and neumf_extra:
            row["neumf_params"] = neumf_extra
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")

    for stage in wanted:
        if stage == "parse":
            from movierec.data.loading import cache_path

            shutil.rmtree(cache_path(release, Path(release).name), ignore_errors=True)
            figures, out = timed(cli("datasets", "info", release, "--json"), lock, env)
            info = last_json(out)
            extra = {k: info.get(k) for k in ("n_users", "n_items", "n_ratings")}
        elif stage == "split":
            figures, out = timed([*python(), "-c", SPLIT_DRIVER.format(release=release)], lock,
                                 env)
            extra = last_json(out)
        elif stage in ("ials_fit", "neumf_epoch"):
            model = stage.split("_")[0]
            figures, out = timed(cli("train", str(configs[model]), "--out",
                                     str(artifacts[model]), "--force"), lock, env)
            extra = {"fit_s": _fit_seconds(out)}
        elif stage == "neumf_torchrun":
            torchrun = Path(sys.executable).with_name("torchrun")
            figures, out = timed([str(torchrun), "--standalone", "--nproc-per-node",
                                  str(TORCHRUN_PROCESSES), "-m", "movierec.cli", "train",
                                  str(configs["neumf_ddp"]), "--out",
                                  str(work / "artifact-neumf-ddp"), "--force"], lock, env)
            fit = _fit_seconds(out)
            samples = _epoch_samples(release)
            extra = {"fit_s": fit, "processes": TORCHRUN_PROCESSES, "epoch_samples": samples}
            if fit:
                extra["samples_per_s_total"] = round(samples / fit)
                extra["samples_per_s_per_process"] = round(samples / fit / TORCHRUN_PROCESSES)
        elif stage.startswith(("p1_", "p2_")):
            protocol, model = stage.split("_")
            figures, out = timed(cli("evaluate", "--artifact", str(artifacts[model]),
                                     "--dataset", release, "--protocol", protocol,
                                     "--split", "generate", "--json"), lock, env)
            result = last_json(out)
            extra = {k: v for k, v in result.items()
                     if k.startswith(("HR", "NDCG", "Recall", "MRR", "eval_seconds",
                                      "n_test_users"))}
        elif stage.startswith("artifact_"):
            model = stage.split("_")[1]
            code = ARTIFACT_DRIVER.format(artifact=str(artifacts[model]),
                                          copy=str(work / f"copy-{model}"))
            figures, out = timed([*python(), "-c", code], lock, env)
            extra = last_json(out)
        else:  # serve_<model>
            model = stage.split("_")[1]
            picks = popular_items(release)
            served = serve_stage(artifacts[model], picks, args.requests, env, lock)
            report = work / "srv.txt"
            rss = 0.0
            if report.exists():
                for line in report.read_text().splitlines():
                    if "Maximum resident set size" in line:
                        rss = int(line.rsplit(":", 1)[1]) / 1e6
            figures = {"wall_s": served.pop("startup_s"), "peak_rss_gb": round(rss, 2),
                       "load_before": served.pop("load_before"),
                       "load_after": served.pop("load_after")}
            extra = {"what": "wall_s = start until /health answers", **served}
        emit(stage, figures, extra)


def _fit_seconds(out: str) -> float | None:
    for line in out.splitlines():
        if line.startswith("trained ") and " in " in line:
            try:
                return float(line.split(" in ", 1)[1].split("s", 1)[0])
            except ValueError:
                return None
    return None


if __name__ == "__main__":
    main()
