"""movierec.files and movierec.checksums: whole-or-nothing writes, the output-folder policy,
locks, full disks and checksums."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec import checksums, files
from movierec.errors import CorruptFileError, DiskFullError, MovierecError, OutputError


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------- one file
def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = files.write_bytes_atomically(tmp_path / "a.txt", b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_serving_catalogue_is_readable_by_others(tmp_path):
    """Issue 14: catalogue.parquet was written 0600 (mkstemp's mode)."""
    from movierec.data.synthetic import generate
    from movierec.serving.catalogue import write_catalogue

    dataset = generate(n_users=30, n_items=40, n_ratings=600).to_dataset()
    old = os.umask(0o022)
    try:
        path = write_catalogue(dataset, tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = files.write_bytes_atomically(tmp_path / "a.txt", b"old")

    def half_then_fail(tmp):
        Path(tmp).write_bytes(b"ne")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        files.write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old" and _listing(tmp_path) == ["a.txt"]


def test_a_killed_writers_temporary_is_swept_by_the_next_write(tmp_path):
    path = tmp_path / "labels.csv"
    stale = tmp_path / ".labels.csv.k3x9_a0q.tmp"  # what mkstemp names it
    stale.write_bytes(b"half")
    other = tmp_path / ".labels.csv.notours.tmp"  # not a name movierec makes: left alone
    other.write_bytes(b"x")
    files.write_bytes_atomically(path, b"whole")
    assert _listing(tmp_path) == [".labels.csv.notours.tmp", "labels.csv"]


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device (os error "
                               "28)"),
])
def test_a_full_disk_is_one_line_naming_the_path(tmp_path, error):
    path = tmp_path / "out" / "table.parquet"

    def full(tmp):
        Path(tmp).write_bytes(b"half")
        raise error

    with pytest.raises(DiskFullError) as info:
        files.write_atomically(path, full)
    message = str(info.value)
    assert message.startswith(f"{path}: no space left on device") and "\n" not in message
    assert info.value.errno == errno.ENOSPC
    assert _listing(path.parent) == []


def test_a_second_writer_of_one_path_gets_a_clear_error(tmp_path):
    path = tmp_path / "a.txt"
    with files.write_lock(path):
        code = ("import sys; from movierec import files\n"
                "try:\n files.write_bytes_atomically(sys.argv[1], b'x')\n"
                "except files.OutputError as e:\n print(e); sys.exit(3)\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                              text=True, env=env)
    assert done.returncode == 3, done.stderr
    assert "another movierec process is writing it right now" in done.stdout
    assert not path.exists() and _listing(tmp_path) == []


# ---------------------------------------------------------------------- folders
def _build(names: dict[str, str]):
    def build(tmp: Path) -> None:
        for name, text in names.items():
            (tmp / name).write_text(text)
    return build


def test_swap_replaces_a_folder_whole(tmp_path):
    dest = tmp_path / "out"
    files.swap_folder(dest, _build({"a": "1", "b": "1"}))
    files.swap_folder(dest, _build({"a": "2"}))
    assert _listing(dest) == ["a"] and (dest / "a").read_text() == "2"
    assert _listing(tmp_path) == ["out"]


def test_an_interrupted_two_step_swap_is_repaired_by_the_next_writer(tmp_path):
    """Where renameat2 cannot exchange, the old folder is renamed aside first: a crash between
    the two renames leaves it there, and the next writer puts it back before going on."""
    dest = tmp_path / "out"
    aside = tmp_path / ".out.old-abcd1234"
    aside.mkdir()
    (aside / "a").write_text("old")
    files.sweep_stale(dest)
    assert _listing(tmp_path) == ["out"] and (dest / "a").read_text() == "old"


def test_output_folder_keeps_files_movierec_did_not_write(tmp_path):
    dest = tmp_path / "report"
    files.write_folder(dest, _build({"index.html": "v1", "old.png": "v1"}), "report")
    (dest / "notes.txt").write_text("mine")
    (dest / "logs").mkdir()
    (dest / "logs" / "run.csv").write_text("epoch\n1\n")
    files.write_folder(dest, _build({"index.html": "v2"}), "report")
    # ours replaced (index.html) or dropped (old.png); the user's kept, contents and all
    assert _listing(dest) == [".movierec-output", "index.html", "logs", "notes.txt"]
    assert (dest / "index.html").read_text() == "v2" and (dest / "notes.txt").read_text() == "mine"
    assert (dest / "logs" / "run.csv").read_text() == "epoch\n1\n"
    assert files.read_marker(dest)["files"] == ["index.html"]


def test_a_foreign_folder_needs_force_and_keeps_everything(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "thesis.tex").write_text("mine")
    with pytest.raises(OutputError, match="holds files movierec did not write.*--force"):
        files.write_folder(dest, _build({"index.html": "v1"}), "report")
    assert _listing(dest) == ["thesis.tex"]
    files.write_folder(dest, _build({"index.html": "v1"}), "report", force=True)
    assert _listing(dest) == [".movierec-output", "index.html", "thesis.tex"]
    # the user's file under a name movierec writes is refused even with --force
    (dest / "results.json").write_text("mine")
    with pytest.raises(OutputError, match="results.json there is not movierec's"):
        files.write_folder(dest, _build({"index.html": "v2", "results.json": "{}"}), "report",
                           force=True)
    assert (dest / "results.json").read_text() == "mine" and (dest / "index.html").read_text() \
        == "v1"


def test_another_kind_of_movierec_output_is_not_replaced(tmp_path):
    dest = files.write_folder(tmp_path / "r", _build({"index.html": "report"}), "EDA report")
    with pytest.raises(OutputError, match="holds a movierec EDA report"):
        files.write_folder(dest, _build({"config.json": "{}"}), "model artifact")


def test_output_equal_to_an_input_is_refused_even_with_force(tmp_path):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(OutputError, match="is an input of this command"):
        files.check_output_file(tmp_path / "." / "ratings.csv", force=True, inputs=[ratings])
    with pytest.raises(OutputError, match="exists; refusing to overwrite"):
        files.check_output_file(ratings)
    assert files.check_output_file(tmp_path / "new.csv") == tmp_path / "new.csv"


def test_claimed_folder_is_removed_when_the_run_fails_before_writing(tmp_path):
    dest = tmp_path / "artifact"
    with pytest.raises(RuntimeError), files.claimed_output_dir(dest, "model artifact"):
        assert _listing(dest) == [".movierec-output"]
        raise RuntimeError("training failed")
    assert not dest.exists()


# ---------------------------------------------------------------------- checksums
def test_manifest_round_trip_and_every_flip_is_caught(tmp_path):
    (tmp_path / "a.bin").write_bytes(bytes(range(256)))
    checksums.write_manifest(tmp_path, ["a.bin"])
    checksums.verify_manifest(tmp_path, ["a.bin"])
    manifest = (tmp_path / "SHA256SUMS").read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(50):  # a flipped bit anywhere in the file or in SHA256SUMS is an error
        which = tmp_path / ("a.bin" if rng.random() < 0.5 else "SHA256SUMS")
        good = which.read_bytes()
        data = bytearray(good)
        data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        which.write_bytes(bytes(data))
        with pytest.raises(CorruptFileError):
            checksums.verify_manifest(tmp_path, ["a.bin"])
        which.write_bytes(good)
    assert (tmp_path / "SHA256SUMS").read_bytes() == manifest


def test_sidecar_checked_file(tmp_path):
    path = checksums.write_checked(tmp_path / "v.npy", lambda tmp: Path(tmp).write_bytes(b"abc"))
    assert checksums.read_checked(path) == b"abc"
    assert _listing(tmp_path) == ["v.npy", "v.npy.sha256"]
    path.write_bytes(b"abd")
    with pytest.raises(CorruptFileError, match="bytes changed since movierec wrote it"):
        checksums.read_checked(path)


def test_parquet_reader_panics_become_a_clear_error(tmp_path, monkeypatch):
    def panic(*args, **kwargs):
        raise pl.exceptions.PanicException("index out of bounds")

    monkeypatch.setattr(pl, "read_parquet", panic)
    with pytest.raises(CorruptFileError, match=r"x\.parquet: not a readable Parquet file"):
        checksums.read_parquet(b"PAR1", name=tmp_path / "x.parquet")


# ---------------------------------------------------------------------- a real full disk
@pytest.fixture()
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (root only); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the ENOSPC tests above cover it")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_real_full_disk(tiny_disk):
    table = pl.DataFrame({"x": np.random.default_rng(0).random(200_000)})
    path = tiny_disk / "t.parquet"
    with pytest.raises(DiskFullError, match=r"t\.parquet: no space left on device"):
        files.write_atomically(path, table.write_parquet)
    assert _listing(tiny_disk) == []
    with pytest.raises(MovierecError, match="no space left on device"):
        files.swap_folder(tiny_disk / "folder", lambda tmp: table.write_parquet(tmp / "t.parquet"))
    assert _listing(tiny_disk) == []
