"""Model artifacts: one folder per fitted model, written whole or not at all.

An artifact folder holds:

- ``model.npz``: the learned arrays (``Recommender.learned``; a CSR matrix ``m`` is stored as
  ``m.data``, ``m.indices``, ``m.indptr``, ``m.shape``) and the train interactions
  (``seen.indptr``, ``seen.indices``) that ``recommend`` excludes;
- ``config.json``: model name and class, hyper-parameters, movierec version, the train dataset's
  name and fingerprint, ``n_users`` / ``n_items``, creation time;
- ``ids.parquet``: the id maps, one row per index: ``kind`` (``"user"`` / ``"item"``), ``idx``
  (``int32``) and ``id`` (original MovieLens id, ``int64``);
- ``SHA256SUMS``: the SHA-256 of the three files above (``sha256sum -c SHA256SUMS`` checks them);
- ``.movierec-output``: the files movierec wrote there (:mod:`movierec.files`).

An artifact is data, never code: :func:`load` finds the model class by its registered name
(:func:`movierec.models.registry.get_class`: movierec's own models and those registered in the
running program); the ``module`` key that older versions wrote and read is ignored.

:func:`save` builds the folder beside the target and swaps it into place
(:func:`movierec.files.write_folder`), so a crash never leaves half an artifact, files that
movierec did not write there are kept, and a second process saving to the same path gets a clear
error. :func:`load` checks every file against ``SHA256SUMS`` (artifacts saved before it existed
are read unchecked) and raises :class:`~movierec.errors.ArtifactError` naming the file that is
wrong.
"""

from __future__ import annotations

import io
import json
import zipfile
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec import checksums, files
from movierec.errors import ArtifactError, CorruptFileError, MovierecError
from movierec.models.params import validate_params, without_run_options

if TYPE_CHECKING:
    from movierec.models.base import Recommender

FORMAT_VERSION = 1
MODEL_FILE = "model.npz"
CONFIG_FILE = "config.json"
IDS_FILE = "ids.parquet"
FILES = (MODEL_FILE, CONFIG_FILE, IDS_FILE)
KIND = "model artifact"
OWNED = ("catalogue.parquet", "catalogue.parquet.sha256")
"""Files that movierec adds to an artifact later (the serving catalogue): replaced by a save."""
_CONFIG_KEYS = ("format_version", "model", "module", "params", "n_users", "n_items", "dataset")


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding an artifact's ``config.json``."""
    return (Path(path) / CONFIG_FILE).is_file()


def save(model: Recommender, path: str | Path, *, force: bool = False) -> Path:
    """Write a fitted model as the artifact folder ``path`` (replacing an artifact there).

    ``path`` must be missing, empty, an artifact or a folder movierec made for one
    (:func:`movierec.files.claim_output_dir`); anything else only with ``force``. Files there that
    movierec did not write are kept. Returns ``path``.
    """
    model._check_fitted()
    return files.write_folder(path, lambda tmp: _write(model, tmp), KIND, force=force,
                              recognise=_is_old_artifact, owned=OWNED, option="artifact path")


def claim(path: str | Path, *, force: bool = False) -> Path:
    """Check ``path`` as :func:`save` will, before training, and mark it as an artifact folder
    (so a ``log_dir`` inside it is kept by the save). Raises what :func:`save` would."""
    return files.claim_output_dir(path, KIND, force=force, recognise=_is_old_artifact,
                                  option="artifact path")


def claimed(path: str | Path, *, force: bool = False, option: str = "--out"
            ) -> AbstractContextManager[Path]:
    """:func:`claim` for a block (a training run): a folder the claim created and the block
    left empty (it failed) is removed again."""
    return files.claimed_output_dir(path, KIND, force=force, recognise=_is_old_artifact,
                                    option=option)


def _is_old_artifact(path: Path) -> bool:
    """An artifact folder of a movierec that wrote no marker: its config.json is ours."""
    try:
        _read_config(path / CONFIG_FILE)
    except ArtifactError:
        return False
    return True


def _write(model: Recommender, folder: Path) -> None:
    arrays: dict[str, np.ndarray] = {
        "seen.indptr": model.seen_.indptr,
        "seen.indices": model.seen_.indices,
    }
    for name in model.learned:
        value = getattr(model, name)
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            arrays[f"{name}.data"] = csr.data
            arrays[f"{name}.indices"] = csr.indices
            arrays[f"{name}.indptr"] = csr.indptr
            arrays[f"{name}.shape"] = np.asarray(csr.shape, dtype=np.int64)
        else:
            arrays[name] = np.asarray(value)
    params = model.get_params()
    from movierec import __version__

    config = {
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "module": type(model).__module__,  # informative only: load never imports it
        "class": type(model).__qualname__,
        "params": params,
        "movierec_version": __version__,
        "dataset": {"name": model.dataset_name_, "fingerprint": model.dataset_fingerprint_},
        "n_users": model.n_users_,
        "n_items": model.n_items_,
        "n_interactions": int(model.seen_.nnz),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "checksums": checksums.MANIFEST,
    }
    try:
        text = json.dumps(config, indent=2)
    except TypeError as e:
        raise MovierecError(
            f"{type(model).__name__}: hyper-parameters must be plain JSON values to be saved "
            f"({e}); got {params!r}"
        ) from e
    _write_arrays(folder / MODEL_FILE, arrays)
    ids = pl.DataFrame(
        {
            "kind": ["user"] * model.n_users_ + ["item"] * model.n_items_,
            "idx": np.concatenate([np.arange(model.n_users_), np.arange(model.n_items_)]).astype(
                np.int32
            ),
            "id": np.concatenate([model.user_ids_, model.item_ids_]).astype(np.int64),
        }
    )
    ids.write_parquet(folder / IDS_FILE)
    (folder / CONFIG_FILE).write_text(text, encoding="utf-8")
    checksums.write_manifest(folder, FILES)


def _write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez``'s format (one ``.npy`` per array in an uncompressed zip, read back by
    ``np.load``), written array by array so a large artifact shows its progress: a bar on a
    terminal, a line every few seconds elsewhere (an ML-32M NeuMF artifact is ~100 MB)."""
    from movierec.progress import Progress

    total_mb = max(1, sum(int(a.nbytes) for a in arrays.values()) >> 20)
    progress = Progress(f"saving the model's arrays ({path.name})", total_mb, "MB",
                        at_end=False, leave=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, array in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
            progress.update(n=int(array.nbytes) >> 20)
    progress.close()


# ---------------------------------------------------------------------- loading
def load(path: str | Path) -> Recommender:
    """Read an artifact folder written by :func:`save` into a fitted model.

    Raises :class:`ArtifactError` naming the file when a file is missing, differs from its
    checksum, does not parse, names a model that is not registered, or holds arrays of the wrong
    shape. Nothing named in the files is imported.
    """
    from movierec.models.registry import get_class

    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(
            f"{path}: no model artifact here (expected a folder holding {', '.join(FILES)})"
        )
    for name in FILES:
        if not (path / name).is_file():
            raise ArtifactError(
                f"{path / name}: missing; the artifact is incomplete, save the model again"
            )
    data = _checked_bytes(path)
    config = _read_config(path / CONFIG_FILE, data[CONFIG_FILE])
    where = path / CONFIG_FILE
    if "checksums" in config and "_manifest" not in data:
        raise ArtifactError(f"{path / checksums.MANIFEST}: missing; the artifact is incomplete, "
                            "save the model again")
    try:
        cls = get_class(config["model"])  # the registry only: never a module named in the file
        model = cls(**validate_params(cls, without_run_options(config["params"])))
    except (MovierecError, TypeError) as e:
        raise ArtifactError(f"{where}: cannot rebuild model {config['model']!r}: {e}") from e
    n_users, n_items = config["n_users"], config["n_items"]
    user_ids, item_ids = _read_ids(path / IDS_FILE, n_users, n_items, data[IDS_FILE])
    arrays = _read_arrays(path / MODEL_FILE, data[MODEL_FILE])
    where = path / MODEL_FILE
    seen = _csr(arrays, "seen", (n_users, n_items), where, binary=True)
    dataset = config["dataset"]
    model.set_train_state(
        user_ids, item_ids, seen, dataset.get("name", ""), dataset.get("fingerprint", "")
    )
    expected = model.expected_shapes()
    for name in model.learned:
        if f"{name}.indptr" in arrays:
            shape = tuple(int(x) for x in arrays.get(f"{name}.shape", ()))
            want = expected.get(name, shape)
            if len(shape) != 2 or any(
                w is not None and w != s for w, s in zip(want, shape, strict=False)
            ):
                raise ArtifactError(
                    f"{where}: sparse array {name!r} has shape {shape}, expected {want}"
                )
            value: Any = _csr(arrays, name, shape, where)
        elif name in arrays:
            value = arrays[name]
            _check_shape(where, name, value.shape, expected.get(name))
        else:
            raise ArtifactError(f"{where}: array {name!r} of {type(model).__name__} is missing")
        setattr(model, name, value)
    try:
        model._validate_learned()
    except MovierecError as e:
        raise ArtifactError(f"{where}: {e}") from e
    return model


def _checked_bytes(path: Path) -> dict[str, Any]:
    """The bytes of the artifact's files, checked against ``SHA256SUMS`` when there is one
    (``"_manifest"`` then names it)."""
    data: dict[str, Any] = {}
    for name in FILES:
        try:
            data[name] = (path / name).read_bytes()
        except OSError as e:
            raise ArtifactError(f"{path / name}: unreadable ({e.strerror or e})") from e
    try:
        sums = checksums.read_manifest(path)
        if sums is not None:
            for name in FILES:
                checksums.verify_bytes(path / name, data[name], sums)
            data["_manifest"] = checksums.MANIFEST
    except CorruptFileError as e:
        raise ArtifactError(f"{e}; save the model again") from None
    return data


def read_config(path: str | Path) -> dict[str, Any]:
    """The checked ``config.json`` of the artifact folder ``path`` (without loading arrays)."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise ArtifactError(f"{path}: not a movierec model artifact (no {CONFIG_FILE})")
    try:
        data = file.read_bytes()
        sums = checksums.read_manifest(path)
        if sums is not None:
            checksums.verify_bytes(file, data, sums)
    except CorruptFileError as e:
        raise ArtifactError(f"{e}; save the model again") from None
    except OSError as e:
        raise ArtifactError(f"{file}: unreadable ({e.strerror or e})") from e
    return _read_config(file, data)


def dataset_name_of(path: str | Path) -> str:
    """The release (or folder) name the artifact at ``path`` was trained on, from its
    ``config.json`` (``"ml-latest-small/train"`` -> ``"ml-latest-small"``)."""
    name = read_config(path)["dataset"].get("name")
    if not name:
        raise ArtifactError(f"{Path(path) / CONFIG_FILE}: no dataset name")
    return str(name).split("/")[0]


def _read_config(file: Path, data: bytes | None = None) -> dict[str, Any]:
    try:
        config = json.loads((file.read_bytes() if data is None else data).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{file}: not a readable JSON file ({e}); save the model again") from e
    if not isinstance(config, dict):
        raise ArtifactError(f"{file}: expected a JSON object, got {type(config).__name__}")
    missing = [k for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise ArtifactError(f"{file}: missing key(s) {', '.join(missing)}")
    if not isinstance(config["format_version"], int) or config["format_version"] > FORMAT_VERSION:
        raise ArtifactError(
            f"{file}: artifact format {config['format_version']!r} is newer than this movierec "
            f"reads ({FORMAT_VERSION}); upgrade movierec"
        )
    ok = (
        isinstance(config["params"], dict)
        and isinstance(config["dataset"], dict)
        and isinstance(config["module"], str)
        and isinstance(config["model"], str)
        and all(isinstance(config[k], int) and config[k] >= 0 for k in ("n_users", "n_items"))
    )
    if not ok:
        raise ArtifactError(
            f"{file}: malformed (wrong type for model, module, params, dataset, n_users or n_items)"
        )
    return config


def _read_ids(file: Path, n_users: int, n_items: int, data: bytes
              ) -> tuple[np.ndarray, np.ndarray]:
    try:
        ids = checksums.read_parquet(data, name=file, columns=["kind", "idx", "id"])
        if ids.schema != {"kind": pl.String, "idx": pl.Int32, "id": pl.Int64}:
            raise CorruptFileError(file, f"unexpected columns {dict(ids.schema)}")
    except CorruptFileError as e:  # the reader's failures, its panics included
        raise ArtifactError(f"{e}; not a readable id map, save the model again") from None
    kind = ids.get_column("kind").to_numpy()
    out = []
    for what, n in (("user", n_users), ("item", n_items)):
        rows = kind == what
        idx = ids.get_column("idx").to_numpy()[rows]
        if len(idx) != n or not np.array_equal(idx, np.arange(n)):
            raise ArtifactError(
                f"{file}: expected {n} {what} ids with idx 0..{n - 1}, found {len(idx)}"
            )
        out.append(ids.get_column("id").to_numpy()[rows].astype(np.int64))
    return out[0], out[1]


def _read_arrays(file: Path, data: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ArtifactError(
            f"{file}: cannot be read ({e}); the file is truncated or corrupt, save the model again"
        ) from e


def _check_shape(where: Path, name: str, shape: tuple, want: tuple | None) -> None:
    if want is None:
        return
    if len(shape) != len(want) or any(
        w is not None and w != s for w, s in zip(want, shape, strict=True)
    ):
        raise ArtifactError(
            f"{where}: array {name!r} has shape {shape}, expected "
            f"{tuple('any' if w is None else w for w in want)}"
        )


def _csr(
    arrays: dict[str, np.ndarray],
    name: str,
    shape: tuple[int, int],
    where: Path,
    binary: bool = False,
) -> sp.csr_matrix:
    """Rebuild and validate a CSR matrix stored as ``name.indptr`` / ``.indices`` / ``.data``."""
    try:
        indptr, indices = arrays[f"{name}.indptr"], arrays[f"{name}.indices"]
        data = np.ones(len(indices), np.float32) if binary else arrays[f"{name}.data"]
    except KeyError as e:
        raise ArtifactError(f"{where}: sparse array {name!r} is incomplete ({e} missing)") from e
    n_rows, n_cols = shape
    ok = (
        indptr.ndim == indices.ndim == data.ndim == 1
        and len(indptr) == n_rows + 1
        and len(indices) == len(data)
        and indptr[0] == 0
        and indptr[-1] == len(indices)
        and bool(np.all(np.diff(indptr) >= 0))
        and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_cols))
    )
    if not ok:
        raise ArtifactError(f"{where}: sparse array {name!r} is inconsistent with shape {shape}")
    return sp.csr_matrix((data, indices, indptr), shape=shape)
