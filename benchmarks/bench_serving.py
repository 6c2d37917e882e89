"""Load test of the API: `movierec serve` in a second process on 127.0.0.1, a closed-loop load of
N concurrent keep-alive connections for D seconds per scenario, latency p50/p99, throughput,
errors, and the server's memory (RSS) before and after.

    python benchmarks/bench_serving.py --artifact DIR [--data-dir ../shared/data]
        [--connections 32] [--duration 30] [--scenario user-recs --scenario picks-10]
        [--json benchmarks/out/serving.json]

Without --artifact it trains iALS on ml-latest-small into a temporary folder. Scenarios:
``user-recs`` (GET /users/{random known user}/recommendations?k=10), ``picks-10`` (POST
/recommendations with 10 random picks among the 500 most rated movies) and ``movies``
(GET /movies?limit=48). Targets (issue 7): user-recs p50 <= 5 ms, p99 <= 25 ms; picks-10 p99 <=
50 ms; RSS after within 10% of before. The load generator is a raw asyncio HTTP/1.1 client
(one process, one core), so it costs the server as little CPU as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from movierec.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- load generator
class Scenario:
    def __init__(self, name: str, user_ids: list[int], popular: list[int]) -> None:
        self.name = name
        self.user_ids = user_ids
        self.popular = popular
        self.rng = random.Random(20261125)

    def request(self, host: str) -> bytes:
        if self.name == "user-recs":
            user = self.rng.choice(self.user_ids)
            return (f"GET /users/{user}/recommendations?k=10 HTTP/1.1\r\nHost: {host}\r\n"
                    "Accept: application/json\r\n\r\n").encode()
        if self.name == "picks-10":
            body = json.dumps({"liked": self.rng.sample(self.popular, 10), "k": 10}).encode()
            return (f"POST /recommendations HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    ).encode() + body
        if self.name == "movies":
            return (f"GET /movies?limit=48&offset={self.rng.randrange(0, 480, 48)} HTTP/1.1\r\n"
                    f"Host: {host}\r\n\r\n").encode()
        raise SystemExit(f"unknown scenario {self.name!r}")


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _connection(scenario: Scenario, port: int, until: float, latencies: list[float],
                      errors: list[str]) -> None:
    host = f"127.0.0.1:{port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            payload = scenario.request(host)
            t0 = time.perf_counter()
            writer.write(payload)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                errors.append(type(e).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(str(status))
    finally:
        writer.close()


async def _load(scenario: Scenario, port: int, connections: int, duration: float
                ) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    until = t0 + duration
    await asyncio.gather(*(_connection(scenario, port, until, latencies, errors)
                           for _ in range(connections)))
    return latencies, errors, time.perf_counter() - t0


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


# ---------------------------------------------------------------------- server process
def _train_default(data_dir: str | None, folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from movierec.serving.launch import prepare_quickstart

    return prepare_quickstart(data_dir, folder / "ials", progress=print)


def _start_server(artifact: Path, data_dir: str | None, port: int, threads: int
                  ) -> subprocess.Popen:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("TMDB_API_KEY", None)
    cmd = [sys.executable, "-m", "movierec.cli", "serve", "--artifact", str(artifact),
           "--host", "127.0.0.1", "--port", str(port)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_up(proc: subprocess.Popen, port: int, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("server did not start in time")


def _rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", type=Path)
    ap.add_argument("--data-dir", default=os.environ.get("MOVIEREC_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/torch threads of the server.")
    ap.add_argument("--scenario", action="append", choices=["user-recs", "picks-10", "movies"])
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()
    scenarios = args.scenario or ["user-recs", "picks-10"]

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        artifact = args.artifact or _train_default(args.data_dir, Path(tmp))
        port = _free_port()
        proc = _start_server(artifact, args.data_dir, port, args.threads)
        try:
            _wait_up(proc, port)
            import httpx

            base = f"http://127.0.0.1:{port}"
            health = httpx.get(f"{base}/health").json()
            page = httpx.get(f"{base}/movies", params={"limit": 200}).json()["movies"]
            popular = [m["id"] for m in sorted(page, key=lambda m: -m["n_ratings"])]
            for offset in (200, 400):
                popular += [m["id"] for m in httpx.get(
                    f"{base}/movies", params={"limit": 200, "offset": offset}).json()["movies"]]
            popular = popular[:500]
            user_ids = _known_users(artifact)
            print(f"# {health['model']} on {health['dataset']}: {health['n_users']} users, "
                  f"{health['n_items']} movies; {args.connections} connections, "
                  f"{args.duration:g} s per scenario; server BLAS/torch threads {args.threads}")
            print(f"# machine: {cpu_model()}, {os.cpu_count()} CPUs, Python "
                  f"{platform.python_version()}")
            results = []
            for name in scenarios:
                scenario = Scenario(name, user_ids, popular)
                asyncio.run(_load(scenario, port, args.connections, args.warmup))
                before = _rss_mib(proc.pid)
                lat, errors, wall = asyncio.run(
                    _load(scenario, port, args.connections, args.duration))
                after = _rss_mib(proc.pid)
                lat.sort()
                row = {
                    "scenario": name, "requests": len(lat), "errors": len(errors),
                    "error_kinds": sorted(set(errors))[:5],
                    "throughput_rps": len(lat) / wall,
                    "p50_ms": 1000 * _percentile(lat, 50), "p90_ms": 1000 * _percentile(lat, 90),
                    "p99_ms": 1000 * _percentile(lat, 99), "max_ms": 1000 * lat[-1] if lat else 0,
                    "rss_before_mib": before, "rss_after_mib": after,
                    "rss_change_pct": 100 * (after - before) / before,
                }
                results.append(row)
                print(f"{name:10s} {row['requests']:7d} req  {row['throughput_rps']:8.1f} req/s  "
                      f"p50 {row['p50_ms']:7.2f} ms  p90 {row['p90_ms']:7.2f} ms  "
                      f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}  "
                      f"RSS {before:.0f} -> {after:.0f} MiB ({row['rss_change_pct']:+.1f}%)")
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"health": health, "args": {
                    k: str(v) for k, v in vars(args).items()}, "machine": cpu_model(),
                    "results": results}, indent=2))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _known_users(artifact: Path) -> list[int]:
    import polars as pl

    ids = pl.read_parquet(Path(artifact) / "ids.parquet")
    return ids.filter(pl.col("kind") == "user").get_column("id").to_list()


if __name__ == "__main__":
    main()
