"""Split files on disk: tab-separated, no header, original MovieLens ids.

* ratings files (``loo_train.tsv``, ``loo_test.tsv``, ML-100K's ``u1.base`` ...): ``user, item,
  rating, timestamp`` per line; ratings written as ``5`` for whole stars and ``4.5`` otherwise.
* negatives files (``loo_negatives.tsv``): ``user`` then its negative item ids, in draw order.

Readers map ids onto an existing :class:`Dataset`'s id maps and raise
:class:`~movierec.errors.DataFormatError` naming the file and line of the first bad row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from movierec import checksums, files
from movierec.data.dataset import Dataset
from movierec.errors import CorruptFileError, DataFormatError

RATING_FIELDS = ("user", "item", "rating", "timestamp")
LOO_FILES = ("loo_train.tsv", "loo_test.tsv", "loo_negatives.tsv")
"""The fixed leave-one-out split files of one folder."""


def _read_lines(path: Path) -> pl.DataFrame:
    """Non-blank lines of a tab-separated file as ``lineno`` (1-based) and ``fields`` (list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataFormatError(path, None, "file not found") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, f"not UTF-8 text ({e.reason})") from e
    return (
        pl.DataFrame({"line": pl.Series(text.split("\n"), dtype=pl.String)})
        .with_row_index("lineno", offset=1)
        .with_columns(pl.col("line").str.strip_chars_end("\r"))
        .filter(pl.col("line").str.strip_chars() != "")
        .with_columns(pl.col("line").str.split("\t").alias("fields"))
        .drop("line")
    )


def _check_width(path: Path, df: pl.DataFrame, width: int, layout: str) -> None:
    lens = df.get_column("fields").list.len().to_numpy()
    bad = np.flatnonzero(lens != width)
    if len(bad):
        r = int(bad[0])
        raise DataFormatError(
            path, int(df["lineno"][r]),
            f"expected {width} tab-separated fields ({layout}), found {int(lens[r])}",
        )


def _parse(
    path: Path, values: pl.Series, linenos: np.ndarray, dtype: type[pl.DataType], what: str
) -> np.ndarray:
    """Cast text fields to numbers; the first failure raises naming its line."""
    text = values.str.strip_chars()
    parsed = text.cast(dtype, strict=False)
    bad = parsed.is_null().to_numpy()
    if dtype.is_float():
        bad |= ~np.isfinite(parsed.fill_null(0).to_numpy())
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        kind = "a number" if dtype.is_float() else "an integer"
        raise DataFormatError(path, int(linenos[r]), f"{what} {text[r]!r} is not {kind}")
    return parsed.to_numpy()


def _index(
    path: Path, sorted_ids: np.ndarray, ids: np.ndarray, linenos: np.ndarray, what: str,
    dataset: str,
) -> np.ndarray:
    """Positions of original ids in ``sorted_ids``; an unknown id raises naming its line."""
    pos = np.searchsorted(sorted_ids, ids)
    found = pos < len(sorted_ids)
    found[found] = sorted_ids[pos[found]] == ids[found]
    if not found.all():
        r = int(np.flatnonzero(~found)[0])
        raise DataFormatError(
            path, int(linenos[r]),
            f"{what} {int(ids[r])} is not in dataset {dataset!r}; were these files made from "
            "another release?",
        )
    return pos.astype(np.int32)


def read_ratings_tsv(path: str | Path, full: Dataset, name: str | None = None) -> Dataset:
    """Read a ``user, item, rating, timestamp`` file into a Dataset over ``full``'s id maps.

    The result shares ``full``'s id maps and tables, in canonical order. Raises
    :class:`DataFormatError` (file and line) for a wrong field count, a non-numeric field or an id
    that ``full`` does not know.
    """
    path = Path(path)
    df = _read_lines(path)
    _check_width(path, df, 4, "user, item, rating, timestamp")
    lines = df.get_column("lineno").to_numpy()
    f = df.get_column("fields")
    user = _parse(path, f.list.get(0), lines, pl.Int64, "user id")
    item = _parse(path, f.list.get(1), lines, pl.Int64, "movie id")
    rating = _parse(path, f.list.get(2), lines, pl.Float32, "rating")
    ts = _parse(path, f.list.get(3), lines, pl.Int64, "timestamp")
    return full.with_ratings(
        _index(path, full.user_ids, user, lines, "user id", full.name),
        _index(path, full.item_ids, item, lines, "movie id", full.name),
        rating,
        ts,
        name=name or f"{full.name}/{path.stem}",
    )


def read_negatives_tsv(path: str | Path, full: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``user, item, item, ...`` file: ``(user_idx int32 (R,), item_idx int32 (R, n))``
    in file order. Every line must have the same number of fields (>= 2)."""
    path = Path(path)
    df = _read_lines(path)
    if df.height == 0:
        raise DataFormatError(path, None, "no negatives in the file")
    width = int(df["fields"][0].len())
    if width < 2:
        raise DataFormatError(path, int(df["lineno"][0]), "expected a user id and item ids")
    _check_width(path, df, width, f"user then {width - 1} item ids, as on the first line")
    lines = df.get_column("lineno").to_numpy()
    f = df.get_column("fields")
    user = _parse(path, f.list.get(0), lines, pl.Int64, "user id")
    flat_lines = np.repeat(lines, width - 1)
    items = _parse(path, f.list.slice(1).explode(), flat_lines, pl.Int64, "movie id")
    user_idx = _index(path, full.user_ids, user, lines, "user id", full.name)
    item_idx = _index(path, full.item_ids, items, flat_lines, "movie id", full.name)
    return user_idx, item_idx.reshape(len(user_idx), width - 1)


def format_ratings(rating: np.ndarray) -> pl.Series:
    """Stars as text: ``5`` for whole stars, ``4.5`` otherwise (as the MovieLens files)."""
    r = pl.Series("rating", np.asarray(rating, dtype=np.float32))
    whole = r == r.round()
    return (
        pl.select(
            pl.when(whole).then(r.cast(pl.Int64).cast(pl.String)).otherwise(r.cast(pl.String))
        )
        .to_series()
        .alias("rating")
    )


def _write_atomic(df: pl.DataFrame, path: Path) -> None:
    files.write_atomically(path, lambda tmp: df.write_csv(
        tmp, separator="\t", include_header=False, quote_style="never", line_terminator="\n"))


def seal(folder: str | Path, names: list[str]) -> None:
    """Record the split files ``names`` of ``folder`` in its ``SHA256SUMS`` (after writing)."""
    checksums.write_manifest(folder, names)


def check_sealed(folder: str | Path, names: list[str]) -> None:
    """When ``folder`` has a ``SHA256SUMS`` (movierec wrote the files), raise
    :class:`DataFormatError` naming the first of ``names`` whose bytes changed since; files laid
    out by hand, without one, are read as they are."""
    folder = Path(folder)
    try:
        sums = checksums.read_manifest(folder)
        if sums is not None:
            checksums.verify_manifest(folder, [n for n in names if (folder / n).exists()], sums)
    except CorruptFileError as e:
        raise DataFormatError(e.path, None, f"{e.problem}; write the split files again (or "
                              f"delete {checksums.MANIFEST} to use them as they are)") from None


def write_ratings_tsv(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds``'s ratings (canonical order, original ids) as ``user, item, rating, ts``."""
    path = Path(path)
    df = pl.DataFrame({
        "user": ds.user_ids[ds.user_idx],
        "item": ds.item_ids[ds.item_idx],
        "rating": format_ratings(ds.rating),
        "timestamp": ds.timestamp,
    })
    _write_atomic(df, path)
    return path


def write_negatives_tsv(
    user_ids: np.ndarray, item_ids: np.ndarray, path: str | Path
) -> Path:
    """Write one line per row: ``user_ids[r]`` then the original ids ``item_ids[r, :]``."""
    path = Path(path)
    table = np.column_stack([np.asarray(user_ids, np.int64), np.asarray(item_ids, np.int64)])
    _write_atomic(pl.DataFrame(table, schema=[f"c{j}" for j in range(table.shape[1])]), path)
    return path
