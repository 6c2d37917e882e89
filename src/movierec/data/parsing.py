"""Vectorised parsing of delimited text files into typed tables, with line-exact errors.

Every function here returns a :class:`polars.DataFrame` that has a ``line`` column (``Int64``,
1-based line number in the source file) beside the requested columns, so that checks made later
(ranges, duplicates, unknown ids) can still name the line they object to.

Two paths are used. The fast path hands the whole file to polars' multi-threaded CSV reader.
When that fails, or leaves a required field empty, the exact path re-reads the file as lines,
splits them with vectorised string operations and casts each column with ``strict=False``; the
first row whose cast turned a value into a null is the line reported. The exact path is a complete
parser, so a file the fast path cannot take (for example latin-1 text) is still read.

Blank lines are ignored everywhere. Quoted fields that span several lines are not supported (no
MovieLens file has one); they would shift the line numbers reported.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from movierec.errors import DataFormatError

Kind = Literal["int", "float", "str"]
_DTYPES = {"int": pl.Int64, "float": pl.Float64, "str": pl.String}
_WORDS = {"int": "an integer", "float": "a number"}
_SUBSTITUTE_SEP = "\x1f"  # ASCII unit separator: stands in for multi-byte separators such as '::'
_QUOTED = r'"(?:[^"]|"")*"'


@dataclass(frozen=True)
class Col:
    """One field of a file: output column ``name``, its ``kind``, the ``label`` used in error
    messages (``"movie id"``) and whether an empty value is an error (``required``)."""

    name: str
    kind: Kind
    label: str
    required: bool = True


# ---------------------------------------------------------------------- text and lines
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"), (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)"),
)


def check_encoding(path: Path) -> None:
    """Raise :class:`DataFormatError` naming the encoding of a UTF-16 / UTF-32 file (MovieLens
    files are UTF-8 or latin-1, which the readers take); without a byte-order mark, NUL bytes in
    the first 4 KiB say the same (many: UTF-16; a few: binary data)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    found = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    line = None
    if found is None and b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if even + odd > len(head) // 4:
            found = f"UTF-16 ({'big' if even > odd else 'little'}-endian, no byte-order mark)"
        else:
            found = "binary data (NUL bytes), not text"
            line = head[: head.index(b"\x00")].count(b"\n") + 1
    if found is not None:
        raise DataFormatError(path, line, f"the file is {found}; save it as UTF-8 text")


def read_text(path: Path) -> str:
    """The file's text: UTF-8 when it decodes as such, else latin-1 (the older releases)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.removeprefix("\ufeff")


def read_lines(path: Path) -> pl.DataFrame:
    """The file's non-blank lines: ``line`` (Int64, 1-based) and ``text`` (without line ends)."""
    text = read_text(path)
    return (
        pl.DataFrame({"text": pl.Series([text]).str.split("\n").explode()})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("line").cast(pl.Int64), pl.col("text").str.strip_suffix("\r"))
        .filter(pl.col("text").str.strip_chars() != "")
    )


def split_fields(
    lines: pl.DataFrame, path: Path, sep: str, names: Sequence[str], free_text: int | None = None
) -> pl.DataFrame:
    """Split ``lines`` (from :func:`read_lines`) into string columns ``names``.

    Every line must hold exactly ``len(names)`` fields. When ``free_text`` is the position of a
    field that may itself contain ``sep`` (a title or a tag), the fields before it end at the
    first separators and the fields after it at the last ones.
    """
    n = len(names)
    text = pl.col("text")
    if free_text is None:
        count = text.str.count_matches(sep, literal=True)
        _raise_first(
            lines.select("line", count.alias("n")).filter(pl.col("n") != n - 1),
            path,
            lambda row: f"expected {n} fields separated by {sep!r}, found {row['n'] + 1}",
        )
        parts = text.str.split_exact(sep, n - 1).struct.rename_fields(list(names))
    else:
        s = re.escape(sep)
        groups = ["(.*?)"] * n
        groups[free_text] = "(.*)"
        pattern = "^" + s.join(groups) + "$"
        parts = text.str.extract_groups(pattern).struct.rename_fields(list(names))
        found = text.str.count_matches(sep, literal=True) + 1
        _raise_first(
            lines.select("line", found.alias("n")).filter(pl.col("n") < n),
            path,
            lambda row: f"expected {n} fields separated by {sep!r}, found {row['n']}",
        )
    return lines.select("line", parts.alias("parts")).unnest("parts")


def cast_columns(raw: pl.DataFrame, cols: Sequence[Col], path: Path) -> pl.DataFrame:
    """Cast string columns to their kinds; raise :class:`DataFormatError` at the first bad line.

    ``raw`` has ``line`` and one string column per ``Col``. Values are stripped of surrounding
    blanks; an empty value becomes null, which is an error for a required column.
    """
    typed, checks = [], []
    for c in cols:
        v = pl.col(c.name).str.strip_chars()
        missing = v.is_null() | (v == "")
        value = v.cast(_DTYPES[c.kind], strict=False) if c.kind != "str" else v
        typed.append(pl.when(missing).then(None).otherwise(value).alias(c.name))
        bad = ~missing & value.is_null()
        if c.required:
            bad = bad | missing
        checks.append(bad.alias(c.name))
    flags = raw.select(pl.col("line"), *checks)
    first = flags.select(pl.any_horizontal(*[c.name for c in cols]).arg_true().first()).item()
    if first is not None:
        row = flags.row(first, named=True)
        values = raw.row(first, named=True)
        c = next(c for c in cols if row[c.name])
        value = values[c.name]
        if value is None or not value.strip():
            problem = f"{c.label} is missing"
        else:
            problem = f"{c.label} {value.strip()!r} is not {_WORDS[c.kind]}"
        raise DataFormatError(path, row["line"], problem)
    return raw.select(pl.col("line"), *typed)


# ---------------------------------------------------------------------- whole files
def read_separated(
    path: Path, sep: str, cols: Sequence[Col], free_text: int | None = None
) -> pl.DataFrame:
    """Read a header-less, unquoted file whose fields are separated by ``sep`` (``"\\t"``,
    ``"|"``, ``"::"``) into ``line`` + typed ``cols``.

    Files with a free-text field (``free_text`` = its position) go straight to the exact path;
    the others try polars' CSV reader first.
    """
    path = Path(path)
    check_encoding(path)
    if free_text is None:
        fast = _fast_separated(path, sep, cols)
        if fast is not None:
            return fast
    raw = split_fields(read_lines(path), path, sep, [c.name for c in cols], free_text)
    return cast_columns(raw, cols, path)


def read_csv_table(path: Path, header: Sequence[str], cols: Sequence[Col]) -> pl.DataFrame:
    """Read a comma-separated file with a header row (quoted fields allowed) into ``line`` +
    typed ``cols``; ``header`` lists the column names the first line must hold, in order."""
    path = Path(path)
    check_encoding(path)
    _check_header(path, header)
    schema = {h: _DTYPES[c.kind] for h, c in zip(header, cols, strict=True)}
    try:
        df = pl.read_csv(path, has_header=True, schema=schema, encoding="utf8")
        df = df.rename(dict(zip(header, [c.name for c in cols], strict=True)))
        fast = _accept(df, cols, first_line=2)
    except pl.exceptions.PolarsError:
        fast = None
    if fast is not None:
        return fast
    return _exact_csv(path, header, cols)


def _fast_separated(path: Path, sep: str, cols: Sequence[Col]) -> pl.DataFrame | None:
    schema = {c.name: _DTYPES[c.kind] for c in cols}
    try:
        if len(sep) == 1:
            source: Path | io.BytesIO = path
            byte_sep = sep
        else:
            source = io.BytesIO(path.read_bytes().replace(sep.encode(), _SUBSTITUTE_SEP.encode()))
            byte_sep = _SUBSTITUTE_SEP
        df = pl.read_csv(
            source, has_header=False, separator=byte_sep, quote_char=None, schema=schema,
            encoding="utf8",
        )
    except pl.exceptions.PolarsError:
        return None
    return _accept(df, cols, first_line=1)


def _accept(df: pl.DataFrame, cols: Sequence[Col], first_line: int) -> pl.DataFrame | None:
    """``df`` with line numbers and blank rows dropped, or ``None`` if a required value is
    missing (then the exact path finds out why)."""
    names = [c.name for c in cols]
    stripped = [pl.col(c.name).str.strip_chars() for c in cols if c.kind == "str"]
    df = (
        df.with_row_index("line", offset=first_line)
        .with_columns(pl.col("line").cast(pl.Int64))
        .filter(~pl.all_horizontal(pl.col(names).is_null()))
        .with_columns(pl.when(v == "").then(None).otherwise(v).name.keep() for v in stripped)
    )
    if any(df.get_column(c.name).null_count() for c in cols if c.required):
        return None
    return df


def _check_header(path: Path, header: Sequence[str]) -> None:
    with open(path, "rb") as f:
        first = f.readline()
    found = first.decode("utf-8", errors="replace").removeprefix("\ufeff").strip()
    names = [h.strip().strip('"') for h in found.split(",")]
    if names != list(header):
        shown = repr(found) if found else "nothing (the file is empty)"
        raise DataFormatError(path, 1, f"expected the header {','.join(header)!r}, found {shown}")


def _exact_csv(path: Path, header: Sequence[str], cols: Sequence[Col]) -> pl.DataFrame:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataFormatError(
            path, line, f"not valid UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8"
        ) from None
    n = len(header)
    lines = read_lines(path).filter(pl.col("line") > 1)
    found = pl.col("text").str.replace_all(_QUOTED, "").str.count_matches(",", literal=True) + 1
    _raise_first(
        lines.select("line", found.alias("n")).filter(pl.col("n") != n),
        path,
        lambda row: f"expected {n} comma-separated fields, found {row['n']}",
    )
    try:
        raw = pl.read_csv(path, has_header=True, infer_schema=False)
    except pl.exceptions.PolarsError as e:
        problem = str(e).strip().splitlines()[0]
        raise DataFormatError(path, None, f"cannot be read as CSV: {problem}") from None
    raw = raw.rename(dict(zip(raw.columns, [c.name for c in cols], strict=True)))
    raw = raw.with_row_index("line", offset=2).with_columns(pl.col("line").cast(pl.Int64))
    raw = raw.filter(~pl.all_horizontal(pl.col([c.name for c in cols]).is_null()))
    return cast_columns(raw, cols, path)


def _raise_first(bad: pl.DataFrame, path: Path, problem) -> None:
    """Raise a :class:`DataFormatError` for the first row of ``bad`` (which has ``line``)."""
    if bad.height:
        row = bad.row(0, named=True)
        raise DataFormatError(path, row["line"], problem(row))


def first_bad_line(df: pl.DataFrame, mask: pl.Expr) -> dict | None:
    """The first row of ``df`` where ``mask`` holds, as a dict (with its ``line``), or None."""
    idx = df.select(mask.arg_true().first()).item()
    return None if idx is None else df.row(idx, named=True)
