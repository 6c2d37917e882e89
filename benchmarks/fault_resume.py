"""Fault injection for `movierec train --resume`: SIGKILL a training run at seeded random moments,
resume it, and count the trials whose artifact weights equal an uninterrupted run's bit for bit.

Each trial starts `movierec train CONFIG --out DIR` (fresh, so stale checkpoints of the trial
before are removed), kills it with SIGKILL after a random delay drawn from the seed (uniform from
a little before the reference run's first checkpoint to its end, so kills land in any epoch, any
stage, checkpoint writes, the artifact save and the clean-up), then runs
`movierec train ... --resume` until it ends; with ``--kills-per-trial N`` the resumed runs are
killed too, N - 1 times. A trial passes when the final `model.npz`
holds exactly the reference weights and the checkpoint folder is gone.

    PYTHONPATH=src python benchmarks/fault_resume.py --trials 50 --data-dir ../shared/data
    PYTHONPATH=src python benchmarks/fault_resume.py --model neumf --trials 20 --json

The default configs are tiny on purpose (ml-100k, 8 factors, a few epochs, one thread), so a
trial costs a few seconds; the figure that matters is the count of identical trials.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIGS = {
    "gmf": ("dataset: ml-100k\nseed: 0\n"
            "model: {name: gmf, params: {factors: 8, epochs: 4, batch_size: 8192}}\n"
            "run: {num_threads: 1, progress: false}\n"),
    "neumf": ("dataset: ml-100k\nseed: 0\n"
              "model: {name: neumf, params: {factors: 8, mlp_factors: 8, layers: [16, 8], "
              "dropout: 0.2, pretrain: true, pretrain_epochs: [2, 2], epochs: 2, "
              "batch_size: 8192}}\n"
              "run: {num_threads: 1, progress: false}\n"),
    "neumf-lightning": ("dataset: ml-100k\nseed: 0\n"
                        "model: {name: neumf, params: {factors: 8, mlp_factors: 8, "
                        "layers: [16, 8], dropout: 0.2, pretrain: true, "
                        "pretrain_epochs: [2, 2], epochs: 3, batch_size: 8192}}\n"
                        "run: {num_threads: 1, progress: false, trainer: lightning}\n"),
}


def train_command(config: Path, out: Path, data_dir: str, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "movierec.cli", "train", str(config), "--out", str(out),
           "--data-dir", data_dir]
    return [*cmd, "--resume"] if resume else cmd


def run(cmd: list[str], kill_after: float | None = None) -> tuple[int, str]:
    """Run ``cmd``; SIGKILL it after ``kill_after`` seconds when still running. Returns the exit
    code (``-9`` when killed) and its stderr."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        err.seek(0)
        return proc.returncode, err.read().decode(errors="replace")


def reference_run(config: Path, out: Path, data_dir: str) -> tuple[float, float]:
    """Run uninterrupted; returns when the first checkpoint appeared and when the run ended
    (seconds from the start): kills are drawn between the two (most of a run before its first
    checkpoint is imports and data loading, where a kill tests little)."""
    folder = out.parent / f"{out.name}.checkpoints"
    t0 = time.perf_counter()
    proc = subprocess.Popen(train_command(config, out, data_dir, resume=False),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    while proc.poll() is None:
        if first is None and any(p.suffix in (".pt", ".lightning") for p in folder.glob("*")):
            first = time.perf_counter() - t0
        time.sleep(0.01)
    span = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"the reference run failed: {proc.stderr.read().decode().strip()[-300:]}")
    return (first if first is not None else 0.0), span


def on_disk(checkpoints: Path) -> list[str]:
    """The checkpoint files in the folder (``gmf.pt``, ``neumf.lightning/last.ckpt``)."""
    if not checkpoints.is_dir():
        return []
    return sorted(str(p.relative_to(checkpoints)) for p in checkpoints.rglob("*")
                  if p.is_file() and p.name != ".movierec-checkpoints" and
                  not p.name.startswith("."))


def weights(artifact: Path) -> dict[str, np.ndarray]:
    with np.load(artifact / "model.npz") as z:
        return {k: z[k] for k in z.files}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def trial(config: Path, out: Path, data_dir: str, reference: dict[str, np.ndarray],
          delays: list[float]) -> dict[str, object]:
    """One trial: a fresh run killed after ``delays[0]`` s, resumed runs killed after the other
    delays, then a resumed run to the end."""
    checkpoints = out.parent / f"{out.name}.checkpoints"
    shutil.rmtree(out, ignore_errors=True)
    killed = []
    for k, delay in enumerate(delays):
        code, _ = run(train_command(config, out, data_dir, resume=k > 0), kill_after=delay)
        killed.append({"after_s": round(delay, 2), "killed": code == -signal.SIGKILL,
                       "stages_on_disk": on_disk(checkpoints)})
    code, err = run(train_command(config, out, data_dir, resume=True))
    result: dict[str, object] = {"kills": killed, "resume_exit": code}
    if code != 0:
        result.update(identical=False, error=err.strip().splitlines()[-1:] or [""])
        return result
    result["identical"] = same(weights(out), reference)
    result["checkpoints_left"] = checkpoints.exists()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="gmf")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills-per-trial", type=int, default=1,
                        help="kills before the resumed run that is let finish")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                  / "data"))
    parser.add_argument("--json", action="store_true", help="print every trial as JSON")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="movierec-faults-") as tmp:
        work = Path(tmp)
        config = work / f"{args.model}.yaml"
        config.write_text(CONFIGS[args.model])
        first, span = reference_run(config, work / "reference", args.data_dir)
        reference = weights(work / "reference")
        low = 0.8 * first
        print(f"{args.model}: reference run {span:.1f} s, first checkpoint after {first:.1f} s; "
              f"kills uniform in [{low:.1f}, {span:.1f}] s; load {os.getloadavg()[0]:.1f}",
              flush=True)
        results = []
        for n in range(args.trials):
            delays = list(rng.uniform(low, span, args.kills_per_trial))
            r = trial(config, work / "run", args.data_dir, reference, delays)
            results.append(r)
            if args.json:
                print(json.dumps({"trial": n, **r}), flush=True)
            else:
                mark = "same" if r["identical"] else "DIFFERENT"
                kills = ", ".join(
                    f"{k['after_s']} s ({'killed' if k['killed'] else 'had ended'}; on disk: "
                    f"{' '.join(k['stages_on_disk']) or '-'})"
                    for k in r["kills"])
                print(f"trial {n:3d}: kill at {kills}; resumed -> {mark}"
                      + (f" {r.get('error')}" if "error" in r else ""), flush=True)
    killed = sum(any(k["killed"] for k in r["kills"]) for r in results)
    at: dict[str, int] = {}
    for r in results:
        for k in r["kills"]:
            key = "+".join(k["stages_on_disk"]) if k["killed"] else "(had ended)"
            at[key or "(no checkpoint yet)"] = at.get(key or "(no checkpoint yet)", 0) + 1
    print("checkpoints on disk when killed: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(at.items())))
    identical = sum(bool(r["identical"]) for r in results)
    left = sum(bool(r.get("checkpoints_left")) for r in results)
    print(f"{args.model}: {identical}/{len(results)} trials ended with the reference weights "
          f"bit for bit ({killed} were killed mid-run, the rest had ended before the kill); "
          f"checkpoint folders left behind: {left}; load {os.getloadavg()[0]:.1f}")
    if identical != len(results) or left:
        sys.exit(1)


if __name__ == "__main__":
    main()
