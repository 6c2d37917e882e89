"""The Dockerfile builds an image that serves a mounted artifact, run for real with podman.

No registry serves base images on our machines, so the base is Debian bookworm built from
Debian's packages (``scripts/build_local_base.sh``: debootstrap, python3, python3-venv; built
once and kept) unless ``MOVIEREC_DOCKER_BASE`` names one (e.g. ``docker.io/library/python:3.11-
slim`` where a registry answers). The build runs with no network: its wheels are ``pip
download``ed on the host (kept per requirement set) and mounted with a pip.conf that points pip
at them, because a build here reaches PyPI only through the host's TLS proxy.

podman runs with ``--runtime runc`` and its own containers.conf (``default_ulimits = []``; see
ENVIRONMENT.md), and never touches /etc/containers. Skips, saying why, without podman, runc or
(for the base) debootstrap and root; fails instead when ``MOVIEREC_REQUIRE_CONTAINERS=1`` (CI,
once ``.ci/run`` has installed them). About 3-4 min the first time on a 2-core machine (base
about 70 s, wheels about 25 s, image about 110 s), about 20 s when the image layers are cached.
The image ``localhost/movierec-test`` is kept between runs as the layer cache (``podman rmi
localhost/movierec-test`` removes it); containers and temporary files are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.serving.conftest import PER_GROUP

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOCAL_BASE = "localhost/localdebian:bookworm"
IMAGE = "localhost/movierec-test:latest"
CONTAINER_PORT = 8000


def _unavailable(reason: str) -> None:
    msg = f"container test: {reason}"
    if os.environ.get("MOVIEREC_REQUIRE_CONTAINERS") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


class Podman:
    """``podman --runtime RUNC`` with a containers.conf of its own, run as subprocesses."""

    def __init__(self, runc: str, conf: Path) -> None:
        self.prefix = ["podman", "--runtime", runc]
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True,
                 ) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.prefix, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{(done.stdout + done.stderr)[-4000:]}")
        return done

    def image_id(self, name: str) -> str | None:
        done = self("image", "inspect", "--format", "{{.Id}}", name, check=False)
        return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> Podman:
    runc = shutil.which("runc") or shutil.which("runc", path="/usr/sbin:/sbin")
    missing = [tool for tool, path in (("podman", shutil.which("podman")), ("runc", runc))
               if path is None]
    if missing:
        _unavailable(f"{' and '.join(missing)} not found "
                     "(apt-get install -y podman runc debootstrap)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    # crun / runc may not set rlimits in some sandboxes; runc copes with hybrid cgroups
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return Podman(runc, conf)


@pytest.fixture(scope="module")
def base_image(podman) -> str:
    """The image the Dockerfile builds FROM: MOVIEREC_DOCKER_BASE, else the local Debian one."""
    named = os.environ.get("MOVIEREC_DOCKER_BASE")
    if named:
        return named
    if podman.image_id(LOCAL_BASE) is None:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            _unavailable(f"no {LOCAL_BASE} image, and building it needs root and debootstrap "
                         "(apt-get install -y debootstrap), or set MOVIEREC_DOCKER_BASE")
        done = subprocess.run(["bash", str(REPO / "scripts" / "build_local_base.sh")],
                              env=podman.env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return LOCAL_BASE


def _requirements() -> str:
    script = REPO / "scripts" / "image_requirements.py"
    lines = [subprocess.run([sys.executable, str(script), *flag, str(REPO / "pyproject.toml")],
                            capture_output=True, text=True, check=True).stdout
             for flag in ([], ["--build"])]
    return "".join(lines)


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """The image's wheels, downloaded with the host's pip once per requirement set."""
    if sys.version_info[:2] != (3, 11):
        _unavailable("the host's wheels must fit the image's Python 3.11; "
                     f"this is {sys.version.split()[0]}")
    text = _requirements()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = cache / "movierec-tests" / "image-wheels" / hashlib.sha256(
        text.encode()).hexdigest()[:16]
    if not (folder / ".complete").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "requirements.txt").write_text(text)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "-d",
                               str(folder), "-r", str(folder / "requirements.txt")],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            _unavailable(f"pip could not download the image's wheels:\n{done.stderr[-2000:]}")
        (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="module")
def image(podman, base_image, wheelhouse, tmp_path_factory) -> str:
    """The repository's Dockerfile built offline; an earlier build's layers are reused."""
    pip_conf = tmp_path_factory.mktemp("pip") / "pip.conf"
    pip_conf.write_text("[global]\nno-index = true\nfind-links = /wheels\n")
    old = podman.image_id(IMAGE)
    podman("build", "--network", "none", "--format", "docker", "--build-arg",
           f"BASE={base_image}", "-v", f"{wheelhouse}:/wheels:ro", "-v",
           f"{pip_conf}:/etc/pip.conf:ro", "-t", IMAGE, str(REPO), timeout=1800)
    if old is not None and old != podman.image_id(IMAGE):
        podman("rmi", old, check=False)  # the previous build, now untagged
    return IMAGE


def _get(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def test_container_serves_a_mounted_artifact_and_stops_on_sigterm(podman, image,
                                                                  planted_artifacts, client):
    artifact = planted_artifacts["ials"]  # written by save() + write_catalogue(), no chmod
    name = f"movierec-test-{os.getpid()}"
    podman("run", "--detach", "--name", name, "--publish",
           f"127.0.0.1::{CONTAINER_PORT}", "--volume", f"{artifact}:/artifact:ro", image)
    try:
        port = podman("port", name, str(CONTAINER_PORT)).stdout.strip().rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = _get(f"{url}/health", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
                if state != "running" or time.monotonic() > deadline:
                    logs = podman("logs", name, check=False)
                    raise AssertionError(f"no /health answer (container {state}):\n"
                                         f"{(logs.stdout + logs.stderr)[-3000:]}") from None
                time.sleep(0.5)
        assert health["status"] == "ok" and health["model"] == "ials"
        assert health["n_items"] == 37  # the artifact's own catalogue: no data folder mounted

        liked = [10 * (PER_GROUP + j) for j in (1, 2, 3, 4, 5)]  # five comedies
        body = {"liked": liked, "k": 6}
        answer = _post(f"{url}/recommendations", body)
        ids = [r["movie"]["id"] for r in answer["recommendations"]]
        assert len(ids) == 6 and not set(ids) & set(liked)
        library = client.post("/recommendations", json=body).json()
        # the library's answer; only the served name differs (the mount point vs the folder)
        assert answer["model"] == "artifact"
        assert {**answer, "model": None} == {**library, "model": None}

        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"  # not root
        podman("healthcheck", "run", name)  # the image's HEALTHCHECK command passes

        podman("kill", "--signal", "TERM", name)
        try:
            code = podman("wait", name, timeout=10).stdout.strip()
        except subprocess.TimeoutExpired:
            pytest.fail("the serving container did not stop within 10 s of SIGTERM")
        assert code == "0"  # a graceful stop
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_sigterm_while_the_model_loads_stops_the_container(podman, image, planted_artifacts):
    """PID 1 gets no default SIGTERM action: without a handler from the start, a stop sent
    while the server still imports and loads was lost and the container ran on."""
    name = f"movierec-test-early-{os.getpid()}"
    podman("run", "--detach", "--name", name, "--volume",
           f"{planted_artifacts['ials']}:/artifact:ro", image)
    try:
        time.sleep(0.5)  # inside the entry point's imports (seconds), before uvicorn serves
        podman("kill", "--signal", "TERM", name)
        try:
            podman("wait", name, timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the container did not stop within 10 s of SIGTERM")
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_build_context_holds_only_what_the_image_installs(podman, base_image, tmp_path):
    """.dockerignore keeps data, venvs, artifacts, caches and .git out of the build context."""
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {base_image}\nCOPY . /context\n")
    tag = f"localhost/movierec-context-test:{os.getpid()}"
    podman("build", "--network", "none", "-f", str(containerfile), "-t", tag, str(REPO),
           timeout=600)
    try:
        listing = podman("run", "--rm", "--network", "none", tag, "find", "/context", "-type",
                         "f").stdout.split()
    finally:
        podman("rmi", "--force", tag, check=False)
    files = {Path(p).relative_to("/context").as_posix() for p in listing}
    allowed_top = {"pyproject.toml", "README.md", "scripts/image_requirements.py",
                   "scripts/docker_entrypoint.py"}
    strays = sorted(f for f in files if f not in allowed_top and not f.startswith("src/"))
    assert not strays, strays
    assert not [f for f in files if "__pycache__" in f or ".egg-info" in f or
                f.endswith((".pyc", ".parquet"))]
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "src", *allowed_top],
                             capture_output=True, text=True)
    if tracked.returncode == 0:  # a git checkout: what the image needs does arrive
        assert set(tracked.stdout.split()) <= files
