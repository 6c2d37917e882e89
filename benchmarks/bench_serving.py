"""Load test of the API as users run it: `movierec serve` started in a subprocess exactly as the
README says (the CLI, no thread variables in its environment: the server sets its own), then
for each scenario a warm-up and a measured run; throughput, latency p50/p90/p99, errors and the
server's memory (RSS of every server process) before and after, with the machine, the workers
and the load average printed beside the figures.

    python benchmarks/bench_serving.py [--artifact DIR] [--workers 1] [--connections 32]
        [--duration 30] [--rate 300] [--scenario picks-10 --scenario user-recs
        --scenario open-300] [--json benchmarks/out/serving.json]

Without --artifact it trains the quickstart iALS on ml-latest-small into a temporary folder.
Scenarios: ``picks-10`` (POST /recommendations, 10 random picks among the 500 most rated movies),
``user-recs`` (GET /users/{random known user}/recommendations?k=10, the server started with
``--user-cache-size 0`` so every answer is computed), ``movies`` (GET /movies?limit=48), and
``open-300`` (picks-10 at a fixed --rate of requests per second whatever the answers' speed,
latency counted from when each request was due, so a stall shows as it is).

Closed-loop scenarios use ``wrk`` (C, one thread: it costs the server little CPU) when it is on
the PATH (``apt-get install wrk``), else a raw asyncio HTTP/1.1 client. The open loop uses the
asyncio client (``wrk2`` is not packaged here): at 300 req/s it needs a few % of a core.
Each row also gives the server's CPU time per answer (all its processes): on a machine that
others are using, throughput only says what share of the cores the server got, while
1000 / (CPU ms per request) is what one free core can answer.
Bars (issue 13, 2 cores, one worker): closed loop >= 1,000 req/s, p99 <= 50 ms, 0 errors, RSS
flat; open loop at 300 req/s p99 <= 15 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from movierec.machine import machine_info  # noqa: E402
from movierec.serving.threads import THREAD_VARIABLES  # noqa: E402

CLOSED = ("picks-10", "user-recs", "movies")
IDLE_REUSE_S = 4.0
"""The open loop reuses a keep-alive connection only if idle for less than this (the server
closes idle ones after 5 s)."""
SCENARIOS = (*CLOSED, "open-300")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- requests
class Requests:
    """Request bytes of one scenario (seeded, so runs are comparable)."""

    def __init__(self, name: str, user_ids: list[int], popular: list[int], port: int) -> None:
        self.name, self.user_ids, self.popular = name, user_ids, popular
        self.host = f"127.0.0.1:{port}"
        self.rng = random.Random(20261125)

    def next(self) -> bytes:
        if self.name == "user-recs":
            user = self.rng.choice(self.user_ids)
            return (f"GET /users/{user}/recommendations?k=10 HTTP/1.1\r\nHost: {self.host}\r\n"
                    "\r\n").encode()
        if self.name == "movies":
            return (f"GET /movies?limit=48&offset={self.rng.randrange(0, 480, 48)} HTTP/1.1\r\n"
                    f"Host: {self.host}\r\n\r\n").encode()
        body = json.dumps({"liked": self.rng.sample(self.popular, 10), "k": 10}).encode()
        return (f"POST /recommendations HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    def wrk_script(self) -> str:
        """The same requests as a wrk Lua script that prints its summary as JSON."""
        lua = ["math.randomseed(20261125)",
               f"local popular = {{{','.join(map(str, self.popular))}}}",
               f"local users = {{{','.join(map(str, self.user_ids))}}}",
               'wrk.headers["Content-Type"] = "application/json"',
               "request = function()"]
        if self.name == "user-recs":
            lua.append('  return wrk.format("GET", "/users/" .. users[math.random(#users)] .. '
                       '"/recommendations?k=10", nil, nil)')
        elif self.name == "movies":
            lua.append('  return wrk.format("GET", "/movies?limit=48&offset=" .. '
                       "(48 * math.random(0, 9)), nil, nil)")
        else:
            lua += ["  local chosen, seen = {}, {}",
                    "  while #chosen < 10 do",
                    "    local id = popular[math.random(#popular)]",
                    "    if not seen[id] then seen[id] = true; chosen[#chosen + 1] = id end",
                    "  end",
                    '  return wrk.format("POST", "/recommendations", nil, \'{"liked":[\' .. '
                    "table.concat(chosen, \",\") .. '],\"k\":10}')"]
        lua += ["end",
                "done = function(summary, latency, requests)",
                "  local e = summary.errors",
                '  io.write(string.format(\'WRKJSON {"requests":%d,"duration_us":%d,'
                '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,'
                '"p90":%d,"p99":%d,"max":%d}\\n\', summary.requests, summary.duration, '
                "e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), "
                "latency:percentile(90), latency:percentile(99), latency.max))",
                "end"]
        return "\n".join(lua) + "\n"


# ---------------------------------------------------------------------- load generators
def run_wrk(requests: Requests, port: int, connections: int, duration: float, folder: Path
            ) -> dict:
    script = folder / f"{requests.name}.lua"
    script.write_text(requests.wrk_script())
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                          "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    w = json.loads(line[len("WRKJSON "):])
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    return {"generator": "wrk", "requests": w["requests"], "errors": errors,
            "throughput_rps": w["requests"] / (w["duration_us"] / 1e6),
            "p50_ms": w["p50"] / 1e3, "p90_ms": w["p90"] / 1e3, "p99_ms": w["p99"] / 1e3,
            "max_ms": w["max"] / 1e3}


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(lines[0].split()[1])


def _summary(latencies: list[float], errors: int, wall: float, generator: str) -> dict:
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * lat[min(len(lat) - 1, round(q / 100 * (len(lat) - 1)))] if lat else 0.0

    return {"generator": generator, "requests": len(lat), "errors": errors,
            "throughput_rps": len(lat) / wall, "p50_ms": pct(50), "p90_ms": pct(90),
            "p99_ms": pct(99), "max_ms": 1000 * lat[-1] if lat else 0.0}


async def closed_loop(requests: Requests, port: int, connections: int, duration: float) -> dict:
    latencies: list[float] = []
    errors = 0
    until = time.perf_counter() + duration

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            writer.write(requests.next())
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - t0)
            errors += status != 200
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return _summary(latencies, errors, time.perf_counter() - t0, "asyncio")


async def open_loop(requests: Requests, port: int, rate: float, duration: float) -> dict:
    """Request i is due at ``start + i / rate``; it goes out on an idle keep-alive connection
    (a new one when all are busy) and its latency counts from when it was due."""
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    latencies: list[float] = []
    errors = 0

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # like a browser, never reuse a connection idle for longer than the server keeps it
        while idle:
            reader, writer, last = idle.pop()
            if time.perf_counter() - last < IDLE_REUSE_S:
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", port)

    async def one(due: float, payload: bytes) -> None:
        nonlocal errors
        reader, writer = await connection()
        try:
            writer.write(payload)
            status = await _read_response(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            errors += 1
            writer.close()
            return
        latencies.append(time.perf_counter() - due)
        errors += status != 200
        idle.append((reader, writer, time.perf_counter()))

    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * duration)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, requests.next())))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    return {**_summary(latencies, errors, time.perf_counter() - start, "asyncio open loop"),
            "rate_rps": rate}


# ---------------------------------------------------------------------- server process
def user_env() -> dict[str, str]:
    """The environment of someone who runs `movierec serve` knowing nothing about threads."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*THREAD_VARIABLES, "OMP_WAIT_POLICY", "TMDB_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"),
                                                    env.get("PYTHONPATH")) if p)
    return env


def start_server(artifact: Path, port: int, workers: int, user_cache: bool,
                 data_dir: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "movierec.cli", "serve", "--artifact", str(artifact),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if not user_cache:
        cmd += ["--user-cache-size", "0"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return subprocess.Popen(cmd, env=user_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_up(proc: subprocess.Popen, port: int, timeout: float = 180) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit("server did not start in time")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server and its worker processes so far."""
    import psutil

    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def rss_mib(pid: int) -> float:
    """RSS of the server and its worker processes together."""
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(args, artifact: Path, scenario: str, folder: Path) -> dict:
    """One server for one scenario (user-recs needs the answer cache off)."""
    port = _free_port()
    proc = start_server(artifact, port, args.workers, scenario != "user-recs", args.data_dir)
    try:
        health = wait_up(proc, port)
        import httpx

        base = f"http://127.0.0.1:{port}"
        popular: list[int] = []
        for offset in (0, 200, 400):
            page = httpx.get(f"{base}/movies", params={"limit": 200, "offset": offset}).json()
            popular += [m["id"] for m in page["movies"]]
        requests = Requests("picks-10" if scenario == "open-300" else scenario,
                            _known_users(artifact), popular[:500], port)
        use_wrk = shutil.which("wrk") is not None and not args.no_wrk
        run = ((lambda d: run_wrk(requests, port, args.connections, d, folder)) if use_wrk
               else (lambda d: asyncio.run(closed_loop(requests, port, args.connections, d))))
        if scenario == "open-300":
            asyncio.run(open_loop(requests, port, args.rate, args.warmup))
            before, load_before, cpu0 = rss_mib(proc.pid), _load(), cpu_seconds(proc.pid)
            row = asyncio.run(open_loop(requests, port, args.rate, args.duration))
        else:
            run(args.warmup)
            before, load_before, cpu0 = rss_mib(proc.pid), _load(), cpu_seconds(proc.pid)
            row = run(args.duration)
        after = rss_mib(proc.pid)
        # CPU the server spent per answer: what a core can do when nothing else wants it
        row["server_cpu_ms_per_request"] = (1000 * (cpu_seconds(proc.pid) - cpu0)
                                            / max(1, row["requests"]))
        return {"scenario": scenario, **row, "rss_before_mib": before, "rss_after_mib": after,
                "rss_change_pct": 100 * (after - before) / before, "load_before": load_before,
                "load_after": _load(), "health": health}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", type=Path)
    ap.add_argument("--data-dir", default=os.environ.get("MOVIEREC_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=300.0, help="Open-loop requests per second.")
    ap.add_argument("--scenario", action="append", choices=SCENARIOS)
    ap.add_argument("--no-wrk", action="store_true", help="Use the asyncio client even when "
                    "wrk is installed.")
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()
    scenarios = args.scenario or ["picks-10", "user-recs", "open-300"]

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        folder = Path(tmp)
        if args.artifact is None:
            from movierec.serving.quickstart import prepare_quickstart

            ((_, args.artifact),) = prepare_quickstart(args.data_dir, folder, ("ials",),
                                                       progress=print)
        machine = machine_info()
        print(f"# machine: {machine['cpu']}, {machine['cpus']} CPUs, Python "
              f"{machine['python']}; load average {_load()}")
        print(f"# server: movierec serve --artifact {args.artifact} --workers {args.workers} "
              "(no thread variables set); load generator: "
              f"{'wrk' if shutil.which('wrk') and not args.no_wrk else 'asyncio'} on the same "
              f"machine; {args.connections} connections (closed loop), {args.duration:g} s each")
        results = []
        for scenario in scenarios:
            row = measure(args, args.artifact, scenario, folder)
            health = row.pop("health")
            results.append(row)
            what = (f"open loop {args.rate:g} req/s" if scenario == "open-300"
                    else f"{args.connections} conn")
            print(f"{scenario:9s} [{health['model']}, {what}, {row['generator']}] "
                  f"{row['requests']:7d} req {row['throughput_rps']:7.1f} req/s  "
                  f"p50 {row['p50_ms']:6.2f} ms  p90 {row['p90_ms']:6.2f} ms  "
                  f"p99 {row['p99_ms']:6.2f} ms  max {row['max_ms']:7.1f} ms  "
                  f"errors {row['errors']}  server CPU "
                  f"{row['server_cpu_ms_per_request']:.2f} ms/req  "
                  f"RSS {row['rss_before_mib']:.0f} -> "
                  f"{row['rss_after_mib']:.0f} MiB ({row['rss_change_pct']:+.1f}%)  "
                  f"load {row['load_before']} -> {row['load_after']}  "
                  f"threads {health.get('compute_threads')}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"machine": machine, "args": {
                k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2))


def _known_users(artifact: Path) -> list[int]:
    import polars as pl

    ids = pl.read_parquet(Path(artifact) / "ids.parquet")
    return ids.filter(pl.col("kind") == "user").get_column("id").to_list()


if __name__ == "__main__":
    main()
