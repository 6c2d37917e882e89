"""The README's Python example runs as written (with the real files), so it cannot rot, and it
needs nothing deeper than ``from movierec import ...``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import movierec

REPO = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no Python example"
    return blocks


def test_readme_python_imports_only_the_top_level_package():
    for block in _python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom):
                assert node.module == "movierec", f"deep import in README: {node.module}"
                assert {a.name for a in node.names} <= set(movierec.__all__)
            elif isinstance(node, ast.Import):
                assert all(a.name == "movierec" for a in node.names)


def test_readme_python_example_runs(real_data_dir, monkeypatch, capsys):
    code = _python_blocks()[0].replace('"../shared/data"', repr(str(real_data_dir)))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "HR@10" in out and "Coverage@10" in out
