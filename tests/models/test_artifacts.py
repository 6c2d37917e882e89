"""Artifacts are data: no module named in a file is imported, every file is checksummed, a save
keeps the user's files and two saves to one path do not race."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import movierec.progress as progress_module
from movierec.errors import ArtifactError, MovierecError
from movierec.models import artifacts
from movierec.models.base import Recommender


def _hostile(tmp_path: Path, saved: Path, module: str, model: str) -> Path:
    """A copy of ``saved`` whose config.json names ``module`` and ``model``, with the
    checksums recomputed (the attacker controls every byte of the folder)."""
    evil = tmp_path / "evil-artifact"
    evil.mkdir()
    for name in artifacts.FILES:
        (evil / name).write_bytes((saved / name).read_bytes())
    config = json.loads((evil / "config.json").read_text())
    config.update(module=module, model=model)
    (evil / "config.json").write_text(json.dumps(config))
    sums = {n: hashlib.sha256((evil / n).read_bytes()).hexdigest() for n in artifacts.FILES}
    (evil / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    return evil


@pytest.fixture()
def trap(tmp_path, monkeypatch):
    """A module ``movierec_trap`` shipped beside the artifact (and importable, as the current
    folder is with ``python -m``) that leaves a file behind when imported."""
    mark = tmp_path / "imported.txt"
    code = f"from pathlib import Path\nPath({str(mark)!r}).write_text('ran')\n"
    (tmp_path / "movierec_trap.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "movierec_trap", raising=False)
    return mark


@pytest.mark.parametrize("model", ["trap-model", "ease"])
def test_a_module_named_in_config_json_is_never_imported(fitted, tmp_path, trap, model):
    saved = fitted("ease").save(tmp_path / "ease")
    evil = _hostile(tmp_path, saved, "movierec_trap", model)
    if model == "ease":  # a registered name: the model loads, the module is ignored
        assert type(Recommender.load(evil)).__name__ == "EASE"
    else:
        with pytest.raises(ArtifactError, match="cannot rebuild model 'trap-model': unknown"):
            Recommender.load(evil)
    assert not trap.exists() and "movierec_trap" not in sys.modules


def test_an_installed_module_named_in_config_json_is_never_imported(fitted, tmp_path):
    saved = fitted("ease").save(tmp_path / "ease")
    name = "antigravity"  # the standard library's: opens a web browser when imported
    sys.modules.pop(name, None)
    evil = _hostile(tmp_path, saved, name, "antigravity")
    with pytest.raises(ArtifactError, match="registered models:"):
        Recommender.load(evil)
    assert name not in sys.modules


# ---------------------------------------------------------------------- checksums
def test_artifact_files_carry_checksums_that_sha256sum_reads(fitted, tmp_path):
    path = fitted("ials").save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == [
        ".movierec-output", "SHA256SUMS", "config.json", "ids.parquet", "model.npz"]
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=path, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.count(": OK") == 3


@pytest.mark.parametrize("name", ["model.npz", "config.json", "ids.parquet", "SHA256SUMS"])
def test_a_flipped_byte_in_any_file_is_an_error_naming_it(fitted, tmp_path, name):
    path = fitted("ials").save(tmp_path / "m")
    file = path / name
    data = bytearray(file.read_bytes())
    rng = np.random.default_rng(len(name))
    for offset in rng.integers(0, len(data), 5):
        flipped = bytearray(data)
        flipped[offset] ^= 0x20  # the case bit: a digit stays a digit, "e" becomes "E"...
        file.write_bytes(bytes(flipped))
        with pytest.raises(ArtifactError) as info:
            Recommender.load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    file.write_bytes(bytes(data))
    Recommender.load(path)


def test_a_parameter_changed_in_config_json_is_caught(fitted, tmp_path):
    """Before checksums, ``"alpha": 2.0`` edited to ``3.0`` loaded silently into another model."""
    path = fitted("ials").save(tmp_path / "m")
    text = (path / "config.json").read_text()
    params = json.loads(text)["params"]
    key, value = next((k, v) for k, v in params.items() if isinstance(v, float))
    (path / "config.json").write_text(text.replace(f'"{key}": {value}', f'"{key}": {value * 2}'))
    with pytest.raises(ArtifactError, match=r"config\.json: its bytes changed since movierec"):
        Recommender.load(path)


def test_an_artifact_saved_before_checksums_still_loads(fitted, tmp_path):
    path = fitted("ease").save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    del config["checksums"]  # what older versions wrote
    (path / "config.json").write_text(json.dumps(config))
    (path / "SHA256SUMS").unlink()
    (path / ".movierec-output").unlink()
    assert type(Recommender.load(path)).__name__ == "EASE"
    fitted("popularity").save(path)  # and an old artifact folder is still replaced by a save
    assert type(Recommender.load(path)).__name__ == "Popularity"
    # a current artifact that lost its SHA256SUMS is incomplete, not "old"
    (path / "SHA256SUMS").unlink()
    with pytest.raises(ArtifactError, match="SHA256SUMS: missing"):
        Recommender.load(path)


# ---------------------------------------------------------------------- keeping the user's files
def test_a_save_over_an_artifact_keeps_other_files_in_its_folder(fitted, tmp_path):
    """Issue 14: train --out onto an existing artifact folder deleted every other file in it."""
    path = fitted("popularity").save(tmp_path / "m")
    (path / "NOTES.md").write_text("why this model")
    (path / "logs").mkdir()
    (path / "logs" / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    (path / "catalogue.parquet").write_bytes(b"stale: built for the old model")
    fitted("ease").save(path)
    assert type(Recommender.load(path)).__name__ == "EASE"
    assert (path / "NOTES.md").read_text() == "why this model"
    assert (path / "logs" / "metrics.csv").read_text() == "epoch,loss\n1,0.5\n"
    assert not (path / "catalogue.parquet").exists()  # movierec's own, for the old model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_claimed_folder_with_logs_inside_is_saved_into(fitted, tmp_path):
    """A log_dir inside --out: the logs exist before the save; the save keeps them."""
    path = artifacts.claim(tmp_path / "run")
    (path / "logs").mkdir()
    (path / "logs" / "metrics.csv").write_text("epoch\n1\n")
    fitted("ease").save(path)
    assert (path / "logs" / "metrics.csv").read_text() == "epoch\n1\n"
    assert type(Recommender.load(path)).__name__ == "EASE"


def test_force_adds_an_artifact_beside_foreign_files_and_never_overwrites_them(fitted, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}')
    with pytest.raises(MovierecError, match="holds files movierec did not write"):
        artifacts.save(fitted("ease"), folder)
    with pytest.raises(MovierecError, match="config.json there is not movierec's"):
        artifacts.save(fitted("ease"), folder, force=True)
    assert (folder / "config.json").read_text() == '{"mine": true}'
    (folder / "config.json").rename(folder / "my-config.json")
    artifacts.save(fitted("ease"), folder, force=True)
    assert (folder / "my-config.json").read_text() == '{"mine": true}'
    assert type(Recommender.load(folder)).__name__ == "EASE"


# ---------------------------------------------------------------------- concurrent saves
_SAVER = """
import sys, time
sys.path[:0] = {paths!r}
import numpy as np
from movierec.data.dataset import Dataset
from movierec.models import artifacts
from movierec.models.registry import create
import polars as pl
rng = np.random.default_rng(0)
pairs = np.unique(rng.integers(0, 300, (4000, 2)), axis=0)
ds = Dataset.from_frames("x", pl.DataFrame({{"user_id": pairs[:, 0] + 1, "item_id": pairs[:, 1] + 1,
    "rating": np.full(len(pairs), 4.0, np.float32), "timestamp": np.arange(len(pairs))}}))
model = create(sys.argv[2]).fit(ds)
slow = artifacts._write
def write(m, folder):
    slow(m, folder)
    time.sleep(float(sys.argv[3]))  # hold the folder open long enough to overlap
artifacts._write = write
print("ready", flush=True)
sys.stdin.readline()
try:
    artifacts.save(model, sys.argv[1])
except Exception as e:
    print(type(e).__name__, e, flush=True)
    sys.exit(3)
print("saved", flush=True)
"""


def test_two_saves_to_one_path_one_wins_the_other_says_why(tmp_path):
    code = _SAVER.format(paths=[p for p in sys.path if p])
    target = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), name, hold],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name, hold in (("popularity", "1.5"), ("ease", "0"))]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    procs[0].stdin.write("go\n")
    procs[0].stdin.flush()
    time.sleep(0.8)  # the first is inside its save, holding the lock
    procs[1].stdin.write("go\n")
    procs[1].stdin.flush()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert procs[0].returncode == 0 and "saved" in outs[0]
    assert procs[1].returncode == 3
    assert "OutputError" in outs[1] and "another movierec process is writing this model " \
        "artifact right now" in outs[1]
    assert type(Recommender.load(target)).__name__ == "Popularity"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # no .old-*, no .tmp-*


def test_a_large_save_says_how_far_it_is_and_loads_back_the_same(fitted, tmp_path, monkeypatch,
                                                                  capsys):
    """The arrays are written one by one (np.savez's format, so ``np.load`` reads them) with a
    progress line off a terminal: an ML-32M NeuMF artifact is ~100 MB."""
    model = fitted("ials")
    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.0)
    path = artifacts.save(model, tmp_path / "a")
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("saving ")]
    assert lines and " MB " in lines[0]
    back = artifacts.load(path)
    for name in model.learned:
        np.testing.assert_array_equal(np.asarray(getattr(back, name)),
                                      np.asarray(getattr(model, name)))
    with np.load(path / artifacts.MODEL_FILE, allow_pickle=False) as z:
        assert {"seen.indptr", "seen.indices"} <= set(z.files)
