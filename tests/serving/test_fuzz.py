"""Fuzz the API from its own OpenAPI schema (schemathesis): valid and invalid inputs for every
operation; no answer is a server error, and answers match the schema. Bounded to seconds; and
`schemathesis run --checks all` (every phase: examples, coverage, fuzzing, stateful) against a
live server must find nothing."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="fuzzing needs schemathesis (dev)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

NO_INPUT = ["GET /health", "GET /models"]
OPERATIONS = [*NO_INPUT, "GET /genres", "GET /movies", "GET /movies/{movie_id}",
              "GET /movies/{movie_id}/similar", "GET /users/{user_id}/recommendations",
              "POST /recommendations", "GET /posters/{movie_id}"]


@pytest.fixture(scope="module")
def api_schema(store):
    from movierec.serving.app import create_app

    return schemathesis.openapi.from_asgi("/openapi.json", create_app(store))


def test_schema_lists_every_operation(api_schema):
    labels = {op.ok().label for op in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors(api_schema, label, mode):
    if label in NO_INPUT and mode is GenerationMode.NEGATIVE:
        pytest.skip("no parameters: there is no invalid input to send")
    operation = api_schema.find_operation_by_label(label)
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks += [status_code_conformance, content_type_conformance,
                   response_schema_conformance]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(checks=checks)

    run()


def test_schemathesis_checks_all_is_clean(store, tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from movierec.serving.app import create_app
    from tests.serving.conftest import LiveServer

    # the venv's own command first: `make test` runs the venv's python without the venv on PATH
    beside = Path(sys.executable).with_name("schemathesis")
    cli = str(beside) if beside.is_file() else shutil.which("schemathesis") or shutil.which("st")
    if cli is None:
        pytest.skip("schemathesis is not installed (the dev extra has it)")
    with LiveServer(create_app(store)) as server:
        run = subprocess.run(
            [cli, "run", f"{server.url}/openapi.json", "--checks", "all", "--max-examples",
             "15", "--seed", "20261201", "--no-color", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)  # its cache folder too
    tail = "\n".join(run.stdout.splitlines()[-40:])
    assert run.returncode == 0, tail
    assert "No issues found" in run.stdout or " passed" in run.stdout, tail
