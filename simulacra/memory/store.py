"""An em's long-term memory: a stream of observations, reflections and notes (Generative Agents).

One SQLite file per em, ``<em>/state/memory.db``, in WAL mode; every write is one transaction, so
a crash loses at most the write in flight and never leaves half a memory. Embeddings are stored
with the text (float32 blobs) and held in memory in a ``VectorIndex`` for search; the index is
rebuilt whenever another process has written to the file (SQLite's ``data_version`` tells).

Search scores every memory by recency, importance and relevance (see ``scoring``). Past the
index's approximate threshold the candidates are the nearest by embedding plus the most recently
accessed and the most important, so a search stays fast without losing what recency or
importance alone would pick.
"""
from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from simulacra.engine.embed import Embedder
from simulacra.engine.vectors import DEFAULT_APPROX_THRESHOLD, VectorIndex
from simulacra.errors import InputError
from simulacra.memory import scoring
from simulacra.memory.scoring import DEFAULT_DECAY, Weights
from simulacra.memory.transfer import KINDS, check_fields, parse_records
from simulacra.storage import open_sqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
  id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so old citations cannot go stale
  text TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_at REAL NOT NULL,
  last_accessed REAL NOT NULL,
  importance INTEGER NOT NULL CHECK (importance BETWEEN 1 AND 10),
  embedding BLOB NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS memories_accessed ON memories(last_accessed);
CREATE INDEX IF NOT EXISTS memories_importance ON memories(importance);
CREATE TABLE IF NOT EXISTS cites (
  memory INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  cited INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  PRIMARY KEY (memory, cited)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cites_cited ON cites(cited);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = "id, text, kind, created_at, last_accessed, importance, meta"


@dataclass(frozen=True)
class Memory:
    id: int
    text: str
    kind: str
    created_at: float
    last_accessed: float
    importance: int
    cites: tuple[int, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "kind": self.kind, "created_at": self.created_at,
                "last_accessed": self.last_accessed, "importance": self.importance,
                "cites": list(self.cites), "meta": dict(self.meta)}


@dataclass(frozen=True)
class Scored:
    """A search hit: the memory, its score and the three normalised parts that made it."""

    memory: Memory
    score: float
    recency: float
    importance: float
    relevance: float
    cosine: float


class MemoryStore:
    def __init__(self, path: str | Path, embedder: Embedder, clock: Callable[[], float] = time.time,
                 *, decay: float = DEFAULT_DECAY, approx_threshold: int | None = DEFAULT_APPROX_THRESHOLD,
                 candidates: int = 200):
        self.path, self.embedder, self.clock = Path(path), embedder, clock
        self.decay, self.approx_threshold, self.candidates = decay, approx_threshold, candidates
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._index: VectorIndex | None = None  # loaded on first search or add
        self._facts: dict[int, tuple[str, int, float]] = {}  # id -> (kind, importance, last_accessed)
        self._version = -1
        self._db = open_sqlite(self.path, _SCHEMA, "memory", synchronous="NORMAL")

    @classmethod
    def for_em(cls, em_folder: str | Path, embedder: Embedder, **kwargs) -> "MemoryStore":
        return cls(memory_path(em_folder), embedder, **kwargs)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM memories").fetchone()[0]

    # --- writing -----------------------------------------------------------------------------

    def add(self, text: str, kind: str = "observation", importance: int | None = None,
            cites: Iterable[int] = (), at: float | None = None,
            meta: Mapping[str, Any] | None = None) -> Memory:
        """Store a memory; ``importance`` defaults to ``heuristic_importance(text)``, ``at`` to now."""
        text, kind, importance = check_fields(text, kind, importance)
        cites, meta = tuple(dict.fromkeys(int(c) for c in cites)), dict(meta or {})
        at = self.clock() if at is None else float(at)
        vector = self.embedder.embed([text])[0]
        with self._lock:
            index = self._ensure_index()
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                missing = [c for c in cites if not self._exists(c)]
                if missing:
                    raise InputError(f"cannot cite memories {missing}: no such ids in {self.path}")
                id = self._insert(None, text, kind, at, at, importance, vector, meta, cites)
            index.add([id], vector[None, :])
            self._facts[id] = (kind, importance, at)
        return Memory(id, text, kind, at, at, importance, cites, meta, vector)

    def forget(self, id: int) -> bool:
        """Delete a memory (and its citation links); False when there was none."""
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                gone = self._db.execute("DELETE FROM memories WHERE id = ?", (int(id),)).rowcount > 0
            if gone and self._index is not None:
                self._index.remove(int(id))
                self._facts.pop(int(id), None)
        return gone

    # --- reading -----------------------------------------------------------------------------

    def get(self, id: int) -> Memory | None:
        with self._lock:
            found = self._memories([int(id)], embeddings=True)
        return found[0] if found else None

    def all(self, kind: str | None = None, embeddings: bool = False) -> list[Memory]:
        """Every memory (of one kind), oldest id first."""
        _check_kind(kind)
        where, args = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        with self._lock:
            ids = [r[0] for r in self._db.execute(f"SELECT id FROM memories {where} ORDER BY id", args)]
            return self._memories(ids, embeddings)

    def search(self, query: str, k: int = 10, weights: Weights | tuple | None = None, *,
               kind: str | None = None, at: float | None = None, touch: bool = True) -> list[Scored]:
        """The ``k`` best memories for ``query`` by weighted recency + importance + relevance.

        ``touch`` (the default, as in the paper) marks the returned memories accessed at ``at``.
        """
        _check_kind(kind)
        now = self.clock() if at is None else float(at)
        q = self.embedder.embed([query])[0]
        with self._lock:
            index = self._ensure_index()
            ids, cosines = self._candidates(index, q)
            keep = [i for i, id in enumerate(ids) if kind is None or self._facts[id][0] == kind]
            if not keep or k <= 0:
                return []
            ids, cosines = [ids[i] for i in keep], cosines[keep]
            facts = [self._facts[id] for id in ids]
            parts = scoring.score(now, np.array([f[2] for f in facts]), np.array([f[1] for f in facts]),
                                  cosines, weights, self.decay)
            order = np.lexsort((np.array(ids), -parts.score))[:k]  # best first, ties to the oldest
            chosen = [ids[i] for i in order]
            if touch:
                self._touch(chosen, now)
            memories = {m.id: m for m in self._memories(chosen)}
        return [Scored(memories[ids[i]], float(parts.score[i]), float(parts.recency[i]),
                       float(parts.importance[i]), float(parts.relevance[i]), float(cosines[i]))
                for i in order]

    def _candidates(self, index: VectorIndex, q: np.ndarray) -> tuple[list[int], np.ndarray]:
        if not index.approximate:
            return index.cosines(q)
        pool = {id for id, _ in index.search(q, self.candidates)}
        for column in ("last_accessed", "importance"):
            pool.update(r[0] for r in self._db.execute(
                f"SELECT id FROM memories ORDER BY {column} DESC LIMIT ?", (self.candidates,)))
        ids = sorted(pool)
        return ids, np.array([float(index.vector(id) @ q) for id in ids])

    def _touch(self, ids: list[int], now: float) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE memories SET last_accessed = ? WHERE id = ?", [(now, i) for i in ids])
        for id in ids:
            kind, importance, _ = self._facts[id]
            self._facts[id] = (kind, importance, now)

    # --- export / import ---------------------------------------------------------------------

    def export(self, embeddings: bool = False) -> list[dict]:
        """Every memory as a JSON-able dict; ``embeddings`` adds base64 float32 vectors."""
        out = []
        for m in self.all(embeddings=embeddings):
            d = m.to_dict()
            if embeddings:
                d["embedder"] = self._info("embedder") or self.embedder.name
                d["embedding"] = base64.b64encode(m.embedding.astype("<f4").tobytes()).decode()
            out.append(d)
        return out

    def import_(self, records: Sequence[Mapping[str, Any]]) -> list[Memory]:
        """Add exported memories in one transaction; all or nothing.

        A record keeps its ``id`` when the store does not have it yet, otherwise gets a new one;
        ``cites`` follow the renumbering. Records without a usable embedding are embedded here.
        """
        rows = parse_records(records, self.clock(), self.embedder.name, self.embedder.dim)
        todo = [i for i, r in enumerate(rows) if r["embedding"] is None]
        for i, vector in zip(todo, self.embedder.embed([rows[i]["text"] for i in todo])):
            rows[i]["embedding"] = vector
        with self._lock:
            index = self._ensure_index()
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                new_ids, renumber = [], {}  # renumber: old id -> new id, for records that had one
                for r in rows:
                    keep = r["id"] is not None and not self._exists(r["id"])
                    new_ids.append(self._insert(r["id"] if keep else None, r["text"], r["kind"],
                                                r["created_at"], r["last_accessed"], r["importance"],
                                                r["embedding"], r["meta"], ()))
                    if r["id"] is not None:
                        renumber[r["id"]] = new_ids[-1]
                for r, id in zip(rows, new_ids):
                    missing = [c for c in r["cites"] if c not in renumber and not self._exists(c)]
                    if missing:
                        raise InputError(f"memory '{r['text'][:40]}' cites {missing}, which are neither "
                                         "in the import nor in the store; fix or drop those cites")
                    self._db.executemany("INSERT OR IGNORE INTO cites VALUES (?, ?)",
                                         [(id, renumber.get(c, c)) for c in r["cites"]])
            imported = self._memories(new_ids, embeddings=True)
            for m in imported:
                index.add([m.id], m.embedding[None, :])
                self._facts[m.id] = (m.kind, m.importance, m.last_accessed)
        return imported

    # --- internals ---------------------------------------------------------------------------

    def _insert(self, id, text, kind, created_at, last_accessed, importance, vector, meta, cites) -> int:
        cur = self._db.execute(
            "INSERT INTO memories (id, text, kind, created_at, last_accessed, importance, embedding, meta)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (id, text, kind, created_at, last_accessed, importance,
             np.asarray(vector, dtype="<f4").tobytes(), json.dumps(meta, ensure_ascii=False)))
        self._db.executemany("INSERT OR IGNORE INTO cites VALUES (?, ?)", [(cur.lastrowid, c) for c in cites])
        return cur.lastrowid

    def _exists(self, id: int) -> bool:
        return self._db.execute("SELECT 1 FROM memories WHERE id = ?", (id,)).fetchone() is not None

    def _memories(self, ids: list[int], embeddings: bool = False) -> list[Memory]:
        """Memories by id, in the order given (missing ids skipped)."""
        found: dict[int, Memory] = {}
        cols = _COLUMNS + (", embedding" if embeddings else "")
        for i in range(0, len(ids), 500):  # SQLite caps bound parameters per statement
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            cites: dict[int, list[int]] = {}
            for m, c in self._db.execute(f"SELECT memory, cited FROM cites WHERE memory IN ({marks})"
                                         " ORDER BY memory, cited", part):
                cites.setdefault(m, []).append(c)
            for row in self._db.execute(f"SELECT {cols} FROM memories WHERE id IN ({marks})", part):
                vector = np.frombuffer(row[7], dtype="<f4").astype(np.float32) if embeddings else None
                found[row[0]] = Memory(row[0], row[1], row[2], row[3], row[4], row[5],
                                       tuple(cites.get(row[0], ())), json.loads(row[6]), vector)
        return [found[i] for i in ids if i in found]

    def _ensure_index(self) -> VectorIndex:
        """The in-memory index, (re)loaded when missing or when another process wrote."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if self._index is None or version != self._version:
            self._index = self._load_index()
            self._version = self._db.execute("PRAGMA data_version").fetchone()[0]
        return self._index

    def _load_index(self) -> VectorIndex:
        name, dim = self.embedder.name, self.embedder.dim
        rows = self._db.execute("SELECT id, kind, importance, last_accessed, embedding, text FROM memories").fetchall()
        stored = self._info("embedder")
        # Vectors from another model (or damaged ones) live in another space: embed those again.
        stale = [r for r in rows if stored not in (None, name) or len(r[4]) != 4 * dim]
        if stale:
            log.warning("re-embedding %d memories in %s with %s", len(stale), self.path, name)
            fresh = self.embedder.embed([r[5] for r in stale])
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("UPDATE memories SET embedding = ? WHERE id = ?",
                                     [(v.astype("<f4").tobytes(), r[0]) for r, v in zip(stale, fresh)])
            replaced = {r[0]: v for r, v in zip(stale, fresh)}
        else:
            replaced = {}
        if stored != name:
            self._db.execute("INSERT OR REPLACE INTO info VALUES ('embedder', ?)", (name,))
        index = VectorIndex(dim, approx_threshold=self.approx_threshold)
        if rows:
            vectors = np.stack([replaced[r[0]] if r[0] in replaced else np.frombuffer(r[4], dtype="<f4")
                                for r in rows])
            index.add([r[0] for r in rows], vectors)
        self._facts = {r[0]: (r[1], r[2], r[3]) for r in rows}
        return index

    def _info(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM info WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None


def memory_path(em_folder: str | Path) -> Path:
    return Path(em_folder) / "state" / "memory.db"


def stored_embedder(path: str | Path) -> str | None:
    """The embedder name a memory database was written with, without opening it for writing."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM info WHERE key = 'embedder'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown memory kind '{kind}'; use one of {', '.join(KINDS)}")
