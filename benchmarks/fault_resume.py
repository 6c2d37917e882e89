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
    "neumf-ddp": ("dataset: ml-100k\nseed: 0\n"
                  "model: {name: neumf, params: {factors: 8, mlp_factors: 8, layers: [16, 8], "
                  "dropout: 0.2, epochs: 3, batch_size: 8192}}\n"
                  "run: {num_threads: 1, progress: false, trainer: lightning, device: cpu, "
                  "strategy: ddp, devices: 2}\n"),
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


def checkpoints_of(out: Path) -> Path:
    return out.parent / f"{out.name}.checkpoints"


def on_disk(checkpoints: Path) -> list[str]:
    """The checkpoint files in the folder (``gmf.pt``, ``neumf.lightning/last.ckpt``)."""
    try:
        return sorted(str(p.relative_to(checkpoints)) for p in checkpoints.rglob("*")
                      if p.is_file() and not p.name.startswith("."))
    except FileNotFoundError:  # not there, or removed while we looked
        return []


def _versions(folder: Path) -> set[tuple[str, int, int]]:
    """(file, inode, mtime) of every checkpoint file: a new triple is a new write."""
    out = set()
    for name in on_disk(folder):
        try:
            st = (folder / name).stat()
        except FileNotFoundError:  # renamed or removed while we looked
            continue
        out.add((name, st.st_ino, st.st_mtime_ns))
    return out


def run(cmd: list[str], folder: Path, kill: tuple[int, float] | None = None
        ) -> dict[str, object]:
    """Run ``cmd`` watching the checkpoint ``folder``. ``kill=(writes, delay)``: SIGKILL the run
    ``delay`` seconds after it wrote its ``writes``-th checkpoint (0: after it started). Returns
    the exit code (``-9``: killed), the writes seen, the seconds from start to the first write
    and to the end, the checkpoint files on disk when it ended and the last line of stderr."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        # its own process group: a kill takes the processes Lightning DDP starts with it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        seen: set[tuple[str, int, int]] = set()
        writes, first, kill_at = 0, None, None
        while proc.poll() is None:
            now = time.perf_counter()
            new = _versions(folder) - seen
            if new:
                seen |= new
                writes += len(new)
                first = first if first is not None else now - t0
            if kill is not None and kill_at is None and writes >= kill[0]:
                kill_at = now + kill[1]
            if kill_at is not None and now >= kill_at:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.005)
        span = time.perf_counter() - t0
        err.seek(0)
        last = err.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
    return {"exit": proc.returncode, "writes": writes, "first_write_s": first, "span_s": span,
            "on_disk": on_disk(folder), "stderr": last[0]}


def weights(artifact: Path) -> dict[str, np.ndarray]:
    with np.load(artifact / "model.npz") as z:
        return {k: z[k] for k in z.files}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def trial(config: Path, out: Path, data_dir: str, reference: dict[str, np.ndarray],
          kills: list[tuple[int, float]]) -> dict[str, object]:
    """One trial: a fresh run killed at ``kills[0]``, resumed runs killed at the others, then a
    resumed run to the end."""
    folder = checkpoints_of(out)
    shutil.rmtree(out, ignore_errors=True)
    killed = []
    for k, (writes, delay) in enumerate(kills):
        r = run(train_command(config, out, data_dir, resume=k > 0), folder, (writes, delay))
        killed.append({"after_write": writes, "delay_s": round(delay, 3),
                       "killed": r["exit"] == -signal.SIGKILL, "on_disk": r["on_disk"],
                       "artifact_saved": (out / "model.npz").exists()})
    r = run(train_command(config, out, data_dir, resume=True), folder)
    result: dict[str, object] = {"kills": killed, "resume_exit": r["exit"]}
    if r["exit"] != 0:
        result.update(identical=False, error=r["stderr"])
        return result
    result["identical"] = same(weights(out), reference)
    result["checkpoints_left"] = folder.exists()
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
        ref = run(train_command(config, work / "reference", args.data_dir, resume=False),
                  checkpoints_of(work / "reference"))
        if ref["exit"] != 0:
            sys.exit(f"the reference run failed: {ref['stderr']}")
        reference = weights(work / "reference")
        n_writes = int(ref["writes"])
        gap = (ref["span_s"] - (ref["first_write_s"] or 0.0)) / max(1, n_writes)
        print(f"{args.model}: reference run {ref['span_s']:.1f} s, {n_writes} checkpoint writes "
              f"(first after {ref['first_write_s'] or 0:.1f} s, then one every ~{gap:.2f} s); "
              f"each kill: after write j ~ U{{0..{n_writes}}}, then U[0, {gap:.2f}] s; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        results = []
        for n in range(args.trials):
            kills = [(int(rng.integers(0, n_writes + 1)), float(rng.uniform(0, gap)))
                     for _ in range(args.kills_per_trial)]
            r = trial(config, work / "run", args.data_dir, reference, kills)
            results.append(r)
            if args.json:
                print(json.dumps({"trial": n, **r}), flush=True)
            else:
                mark = "same" if r["identical"] else "DIFFERENT"
                said = ", ".join(
                    f"{k['delay_s']:.2f} s after write {k['after_write']} "
                    f"({'killed' if k['killed'] else 'had ended'}; on disk: "
                    f"{' '.join(k['on_disk']) or '-'}"
                    f"{', artifact saved' if k['artifact_saved'] else ''})" for k in r["kills"])
                print(f"trial {n:3d}: kill {said}; resumed -> {mark}"
                      + (f" {r.get('error')}" if "error" in r else ""), flush=True)
    killed = sum(any(k["killed"] for k in r["kills"]) for r in results)
    at: dict[str, int] = {}
    for r in results:
        for k in r["kills"]:
            key = "+".join(k["on_disk"]) or "no checkpoint"
            key += " + artifact" if k["artifact_saved"] else ""
            key = key if k["killed"] else "(had ended)"
            at[key] = at.get(key, 0) + 1
    print("checkpoints on disk when killed: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(at.items())))
    identical = sum(bool(r["identical"]) for r in results)
    left = sum(bool(r.get("checkpoints_left")) for r in results)
    print(f"{args.model}: {identical}/{len(results)} trials ended with the reference weights "
          f"bit for bit ({killed} were killed before their process ended, the rest had ended "
          "before the kill); "
          f"checkpoint folders left behind: {left}; load {os.getloadavg()[0]:.1f}")
    if identical != len(results) or left:
        sys.exit(1)


if __name__ == "__main__":
    main()
