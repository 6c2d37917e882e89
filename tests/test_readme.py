"""The README's Python example runs as written (with the real files), so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(real_data_dir, monkeypatch, capsys):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no Python example"
    code = blocks[0].replace('"../shared/data"', repr(str(real_data_dir)))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "HR@10" in out and "Coverage@10" in out
