"""`movierec serve` as users start it, in its own process with no thread variables set: it limits
its own compute threads, runs several workers, stops on SIGTERM even with a stalled client, says
in one line that a port is busy, and serves an artifact with no data folder around."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from movierec.serving.threads import THREAD_VARIABLES

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_env() -> dict[str, str]:
    """The environment of someone who never heard of OMP_NUM_THREADS."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*THREAD_VARIABLES, "OMP_WAIT_POLICY") and not k.startswith("MOVIEREC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.pop("TMDB_API_KEY", None)
    return env


class Served:
    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=user_env(), cwd=cwd)

    def wait_up(self, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return httpx.get(f"{self.url}/health", timeout=2).json()
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"movierec serve did not start:\n{self.output()}")
                time.sleep(0.2)

    def output(self) -> str:
        return self.proc.stdout.read().decode() if self.proc.stdout else ""

    def stop(self) -> float:
        """SIGTERM; seconds until the process exited."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return float("inf")
        return time.monotonic() - t0


def test_serve_limits_its_compute_threads_and_stops_despite_a_stalled_client(
        planted_artifacts):
    server = Served("--artifact", str(planted_artifacts["ials"]))
    try:
        health = server.wait_up()
        threads = health["compute_threads"]
        assert threads.get("blas") == 1 and all(n == 1 for n in threads.values()), threads
        ok = httpx.post(f"{server.url}/recommendations", json={"liked": [10, 20], "k": 3})
        assert ok.status_code == 200
        # a client that sends half a request and then nothing
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.sendall(b"POST /recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: 100\r\n\r\n{\"liked\": [")
        idle = socket.create_connection(("127.0.0.1", server.port))  # keep-alive, no request
        time.sleep(0.5)
        seconds = server.stop()
        stalled.close()
        idle.close()
        assert seconds <= 10, f"SIGTERM took {seconds:.1f} s"
    finally:
        server.stop()


def test_busy_port_is_one_line_before_anything_claims_to_serve(planted_artifacts):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "movierec.cli", "serve", "--artifact",
             str(planted_artifacts["ials"]), "--port", str(port)],
            capture_output=True, text=True, env=user_env(), timeout=60)
    assert proc.returncode == 2
    assert "serving" not in proc.stdout and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port}" in lines[0] and "in use" in lines[0], proc.stderr


def test_two_workers_each_answer(planted_artifacts):
    psutil = pytest.importorskip("psutil")
    server = Served("--artifact", str(planted_artifacts["ials"]), "--workers", "2")
    try:
        server.wait_up()
        workers = [p for p in psutil.Process(server.proc.pid).children(recursive=True)
                   if "python" in p.name().lower()]
        assert len(workers) >= 2
        with httpx.Client() as client:
            for _ in range(20):
                r = client.post(f"{server.url}/recommendations",
                                json={"liked": [10, 20], "k": 3}, headers={"connection": "close"})
                assert r.status_code == 200 and len(r.json()["recommendations"]) == 3
        assert all(p.is_running() for p in workers)
    finally:
        assert server.stop() <= 15


def test_artifact_serves_without_the_data_folder(planted_artifacts, tmp_path):
    """The catalogue travels in the artifact: no --data-dir, no dataset anywhere."""
    import shutil

    artifact = shutil.copytree(planted_artifacts["ials"], tmp_path / "moved")
    empty = tmp_path / "empty"
    empty.mkdir()
    server = Served("--artifact", str(artifact), "--data-dir", str(empty), cwd=tmp_path)
    try:
        assert server.wait_up()["n_items"] > 0
        page = httpx.get(f"{server.url}/movies", params={"query": "usual suspects"}).json()
        assert [m["title"] for m in page["movies"]] == ["The Usual Suspects"]
    finally:
        server.stop()


def test_several_artifacts_with_a_default(planted_artifacts):
    server = Served("--artifact", str(planted_artifacts["ials"]),
                    "--artifact", f"knn={planted_artifacts['itemknn']}", "--default", "knn")
    try:
        health = server.wait_up()
        assert health["artifact"] == "knn" and health["model"] == "itemknn"
        assert [(m["name"], m["default"]) for m in health["models"]] == [
            ("ials", False), ("knn", True)]
        for name in ("ials", "knn", None):
            params = {"model": name} if name else {}
            body = httpx.post(f"{server.url}/recommendations", params=params,
                              json={"liked": [10, 20], "k": 3}).json()
            assert body["model"] == (name or "knn")
    finally:
        server.stop()
