"""The protocols are documented inside the repository, and the command line points there."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from movierec.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_every_protocol_is_defined_in_the_repository_docs():
    text = (REPO / "docs" / "evaluation.md").read_text()
    headings = re.findall(r"^## (P\d):", text, flags=re.M)
    assert headings == ["P1", "P2", "P3", "P4", "P5"]
    assert "EVALUATION.md" not in text  # the repository stands on its own
    assert "docs/evaluation.md" in (REPO / "README.md").read_text()


def test_evaluate_help_points_at_the_docs():
    out = CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).stdout
    assert "docs/evaluation.md" in out
    for name in ("p1", "p2", "p3", "p4", "holdout"):
        assert name in out
