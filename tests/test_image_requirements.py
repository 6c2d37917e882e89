"""scripts/image_requirements.py: what the Docker image installs, read from pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "image_requirements.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=REPO)


def _names(lines: list[str]) -> set[str]:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from image_requirements import requirement_name
    finally:
        sys.path.pop(0)
    return {requirement_name(line) for line in lines}


def test_serving_needs_come_from_pyproject_less_what_only_training_and_figures_need():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    done = _run()
    assert done.returncode == 0, done.stderr
    image = _names(done.stdout.splitlines())
    declared = _names(project["dependencies"] + project["optional-dependencies"]["serve"])
    left_out = declared - image
    # every left-out name is still a project dependency (a stale entry would hide nothing) and
    # nothing else is dropped; the container test proves the server runs without them
    assert left_out == {"matplotlib", "pyarrow", "tqdm", "httpx"} & declared
    assert {"numpy", "scipy", "polars", "fastapi", "uvicorn"} <= image
    assert "torch" not in image
    assert _names(_run("--torch").stdout.split()) == {"torch"}


def test_unreadable_pyproject_is_a_one_line_error(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text("[project\n")
    done = _run(str(bad))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: cannot read the requirements from {bad}")
    assert done.stderr.count("\n") == 1
