"""Corrupt-file suite (issue 14): for every kind of file movierec writes and reads back, flip
bytes at seeded offsets and read it back the way movierec does.

Each trial copies a good file set, XORs ``FLIP_BYTES`` consecutive bytes from one seeded offset
with seeded non-zero masks (so text files often stay text: a digit becomes another digit), and
classifies what the reader did:

- ``recovered``: a cache was rebuilt from its source with one warning, same result as before;
- ``refused``: a clear one-line :class:`~movierec.errors.MovierecError` naming the file;
- ``silently different``: no warning, no error, another result (the bar: 0);
- ``traceback``: any other exception, polars' ``PanicException`` included (the bar: 0);
- ``unnoticed but same``: read back unchanged with no warning (possible only for bytes no
  reader looks at; counted, not a failure).

``tests/test_corrupt_files.py`` runs a small seeded sample; ``benchmarks/bench_corrupt_files.py``
runs 100 offsets per kind and prints the table.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FLIP_BYTES = 8
OK = ("recovered", "refused", "unnoticed but same")


@dataclass
class Kind:
    """One file kind: ``template`` holds a good copy of the file set; ``read(folder)`` reads it
    back as movierec does and returns something comparable with ``same(a, b)``; a trial flips
    ``file`` inside a fresh copy (at ``where(copy)``)."""

    name: str
    file: str
    template: Path
    read: Callable[[Path], Any]
    same: Callable[[Any, Any], bool]
    place: Callable[[Path], Path] | None = None  # where the copy must live to be read back


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def flip(path: Path, offset: int, masks: np.ndarray) -> None:
    data = bytearray(path.read_bytes())
    for k, mask in zip(range(offset, min(offset + len(masks), len(data))), masks, strict=False):
        data[k] ^= int(mask)
    path.write_bytes(bytes(data))


def trial(kind: Kind, offset: int, masks: np.ndarray, work: Path, reference: Any
          ) -> tuple[str, str]:
    """One flipped copy of ``kind``; returns ``(outcome, detail)``."""
    from movierec.errors import MovierecError

    dest = kind.place(work) if kind.place else work / kind.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(kind.template, dest)
    flip(dest / kind.file, offset, masks)
    handler = _Warnings()
    root = logging.getLogger("movierec")
    root.addHandler(handler)
    try:
        result = kind.read(dest)
    except MovierecError as e:
        text = str(e)
        one_line = "\n" not in text and kind.file in text
        return ("refused", text) if one_line else ("traceback", f"unclear error: {text!r}")
    except BaseException as e:  # noqa: BLE001 - the suite counts exactly these
        if isinstance(e, KeyboardInterrupt):
            raise
        return "traceback", f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        root.removeHandler(handler)
        shutil.rmtree(dest, ignore_errors=True)
    same = kind.same(result, reference)
    if handler.messages:
        if not same:
            return "silently different", f"warned but different: {handler.messages[0][:120]}"
        if len(handler.messages) > 1 or "\n" in handler.messages[0]:
            return "traceback", f"several or multi-line warnings: {handler.messages!r}"
        return "recovered", handler.messages[0]
    return ("unnoticed but same", "") if same else ("silently different", "no warning")


def run(kinds: list[Kind], offsets_per_kind: int, work: Path, seed: int = 0
        ) -> dict[str, Counter]:
    """``offsets_per_kind`` seeded offsets per kind; outcome counts per kind name."""
    out: dict[str, Counter] = {}
    for kind in kinds:
        reference = kind.read(_fresh_copy(kind, work))
        size = (kind.template / kind.file).stat().st_size
        rng = np.random.default_rng([seed, len(kind.name), size])
        counts: Counter = Counter()
        for offset in rng.integers(0, size, offsets_per_kind):
            masks = rng.integers(1, 256, FLIP_BYTES)
            outcome, detail = trial(kind, int(offset), masks, work, reference)
            counts[outcome] += 1
            if outcome not in OK:
                counts[f"{outcome} e.g. offset {int(offset)}: {detail}"] += 0
        out[f"{kind.name}/{kind.file}"] = counts
    return out


def _fresh_copy(kind: Kind, work: Path) -> Path:
    dest = kind.place(work) if kind.place else work / kind.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(kind.template, dest)
    return dest


# ---------------------------------------------------------------------- the file kinds
def _same_dataset(a, b) -> bool:
    return (a.fingerprint == b.fingerprint and a.items.equals(b.items)
            and np.array_equal(a.rating, b.rating) and np.array_equal(a.timestamp, b.timestamp)
            and ((a.users is None and b.users is None) or a.users.equals(b.users)))


def _same_model(a, b) -> bool:
    if type(a) is not type(b) or a.get_params() != b.get_params():
        return False
    users = np.arange(min(a.n_users_, 50), dtype=np.int32)
    return (np.array_equal(a.user_ids_, b.user_ids_) and np.array_equal(a.item_ids_, b.item_ids_)
            and np.array_equal(a.score_all(users), b.score_all(users))
            and (a.seen_ != b.seen_).nnz == 0)


def _same_split(a, b) -> bool:
    return (a.train.fingerprint == b.train.fingerprint and a.test.fingerprint ==
            b.test.fingerprint and np.array_equal(a.negatives, b.negatives))


def build_kinds(source: Path, work: Path, *, model: str = "ials") -> list[Kind]:
    """Every file kind, made from the release folder ``source`` (named after its release, so that
    a damaged serving catalogue can be rebuilt from ``source.parent``): its dataset cache, an
    artifact of ``model`` trained on it (with its serving catalogue), its leave-one-out split
    files and a text-embedding cache of its titles. Sets ``MOVIEREC_CACHE`` under ``work``."""
    import os

    from movierec.data import loading
    from movierec.data.splits import generate_loo, load_fixed_loo, write_loo_files
    from movierec.models.artifacts import load
    from movierec.models.registry import create
    from movierec.models.text_embeddings import embed_texts
    from movierec.serving.catalogue import load_catalogue, write_catalogue

    work.mkdir(parents=True, exist_ok=True)
    os.environ["MOVIEREC_CACHE"] = str(work / "cache")
    full = loading.load_dataset(source)
    entry = loading.cache_path(source, full.name)
    templates = work / "templates"
    kinds: list[Kind] = []

    cache_tpl = templates / "cache"
    shutil.copytree(entry, cache_tpl)
    for file in sorted(p.name for p in cache_tpl.iterdir() if not p.name.startswith(".")):
        kinds.append(Kind("dataset cache", file, cache_tpl,
                          lambda _d: loading.load_dataset(source), _same_dataset,
                          place=lambda _w: entry))

    art_tpl = templates / "artifact"
    fitted = create(model, **({"factors": 16, "iterations": 3} if model == "ials" else {}))
    fitted.fit(full)
    fitted.save(art_tpl)
    write_catalogue(full, art_tpl)
    for file in ("model.npz", "config.json", "ids.parquet", "SHA256SUMS"):
        kinds.append(Kind("artifact", file, art_tpl, load, _same_model))
    for file in ("catalogue.parquet", "catalogue.parquet.sha256"):
        kinds.append(Kind("artifact catalogue", file, art_tpl,
                          lambda d: load_catalogue(d, source.parent),
                          lambda a, b: a.equals(b)))

    split_tpl = write_loo_files(generate_loo(full, n_negatives=20, seed=1), templates / "split")
    for file in ("loo_train.tsv", "loo_test.tsv", "loo_negatives.tsv", "SHA256SUMS"):
        kinds.append(Kind("split files", file, split_tpl, lambda d: load_fixed_loo(full, d),
                          _same_split))

    titles = full.items.get_column("title").to_list()
    emb_tpl = templates / "embeddings"
    embed_texts(titles, "hashing-64", label="titles", cache=emb_tpl)
    (npy,) = [p.name for p in emb_tpl.iterdir() if p.name.endswith(".npy")]
    for file in (npy, npy + ".sha256"):
        kinds.append(Kind("embedding cache", file, emb_tpl,
                          lambda d: embed_texts(titles, "hashing-64", label="titles", cache=d),
                          np.array_equal))
    # files an older movierec did not write (no checksums) are left out, so it can be measured
    return [k for k in kinds if (k.template / k.file).is_file()]


def table(results: dict[str, Counter]) -> str:
    """The outcome counts as a Markdown table, then any failing examples."""
    cols = ("recovered", "refused", "unnoticed but same", "silently different", "traceback")
    lines = ["| file | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    examples = []
    for name, c in results.items():
        lines.append(f"| {name} | " + " | ".join(str(c.get(k, 0)) for k in cols) + " |")
        examples += [f"{name}: {k}" for k in c if " e.g. " in k]
    total = Counter()
    for c in results.values():
        total.update({k: v for k, v in c.items() if k in cols})
    lines.append("| **all** | " + " | ".join(f"**{total.get(k, 0)}**" for k in cols) + " |")
    return "\n".join(lines + ([""] + examples if examples else []))
