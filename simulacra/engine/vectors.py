"""An in-memory vector index for cosine search.

Exact search is one matrix-vector product, which is faster than any graph index at the sizes an
em's memory or corpus usually has. Past ``approx_threshold`` vectors the index also keeps an HNSW
graph (usearch, from the ``embed`` extra) and searches that instead; its candidates are re-scored
against the stored vectors, so the cosines it returns are always exact, only the set is
approximate. Not thread-safe: callers that share one across threads hold a lock.
"""
from __future__ import annotations

import logging
from typing import Hashable, Iterable, Sequence

import numpy as np

from simulacra.engine.embed import normalize
from simulacra.errors import InputError, MissingDependency, require

log = logging.getLogger(__name__)
DEFAULT_APPROX_THRESHOLD = 20_000


class VectorIndex:
    def __init__(self, dim: int, *, approx_threshold: int | None = DEFAULT_APPROX_THRESHOLD,
                 connectivity: int = 32, expansion_search: int = 256):
        """``approx_threshold=None`` keeps search exact at any size."""
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.connectivity, self.expansion_search = connectivity, expansion_search
        self._rows = np.zeros((0, dim), dtype=np.float32)  # capacity grows by doubling
        self._ids: list[Hashable] = []  # row -> id
        self._row: dict[Hashable, int] = {}  # id -> row
        # The graph index wants integer keys that never change, while rows move on removal.
        self._key: dict[Hashable, int] = {}
        self._id_of_key: dict[int, Hashable] = {}
        self._next_key = 0
        self._ann = None

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id: Hashable) -> bool:
        return id in self._row

    @property
    def approximate(self) -> bool:
        """Whether ``search`` goes through the graph index at the current size."""
        return self.approx_threshold is not None and len(self) >= self.approx_threshold

    def add(self, ids: Sequence[Hashable], vectors: np.ndarray | Iterable) -> None:
        """Add vectors (normalised here); an id already present gets its vector replaced."""
        vectors = np.asarray(vectors, dtype=np.float32)
        vectors = normalize(vectors[None, :] if vectors.ndim == 1 else vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InputError(f"vectors of shape {vectors.shape} do not fit an index of {self.dim} dimensions; "
                             "embed them with the same embedder as the index")
        ids = list(ids)
        if len(ids) != len(vectors):
            raise InputError(f"{len(ids)} ids but {len(vectors)} vectors; pass one id per vector")
        if len(set(ids)) != len(ids):
            raise InputError("duplicate ids in one add(); pass each id once")
        for id in ids:
            if id in self._row:
                self.remove(id)
        self._grow(len(self) + len(ids))
        start = len(self._ids)
        self._rows[start:start + len(ids)] = vectors
        keys = list(range(self._next_key, self._next_key + len(ids)))
        self._next_key += len(ids)
        for offset, (id, key) in enumerate(zip(ids, keys)):
            self._ids.append(id)
            self._row[id] = start + offset
            self._key[id], self._id_of_key[key] = key, id
        if self._ann is not None:
            self._ann.add(np.array(keys, dtype=np.uint64), vectors)

    def remove(self, id: Hashable) -> bool:
        """Forget one vector; False when the id was not there."""
        row = self._row.pop(id, None)
        if row is None:
            return False
        last = len(self._ids) - 1
        if row != last:  # move the last row into the hole so the matrix stays dense
            moved = self._ids[last]
            self._rows[row] = self._rows[last]
            self._ids[row], self._row[moved] = moved, row
        self._ids.pop()
        key = self._key.pop(id)
        del self._id_of_key[key]
        if self._ann is not None:
            self._ann.remove(key)
        return True

    def vector(self, id: Hashable) -> np.ndarray:
        return self._rows[self._row[id]].copy()

    def cosines(self, query: np.ndarray) -> tuple[list[Hashable], np.ndarray]:
        """Exact cosine of the query to every vector, in index order."""
        q = self._query(query)
        return list(self._ids), self._rows[:len(self)] @ q

    def search(self, query: np.ndarray, k: int) -> list[tuple[Hashable, float]]:
        """The ``k`` nearest ids by cosine, best first, as (id, cosine)."""
        q = self._query(query)
        if k <= 0 or not len(self):
            return []
        if self.approximate:
            return self._search_ann(q, k)
        self._ann = None  # shrank below the threshold: drop the graph, rebuild if it grows again
        ids, scores = self.cosines(q)
        return _top(ids, scores, k)

    def _search_ann(self, q: np.ndarray, k: int) -> list[tuple[Hashable, float]]:
        if self._ann is None:
            self._build()
            if self._ann is None:
                return _top(*self.cosines(q), k)
        found = self._ann.search(q, min(len(self), max(2 * k, k + 10)))
        ids = [self._id_of_key[int(key)] for key in found.keys]
        exact = self._rows[[self._row[i] for i in ids]] @ q
        return _top(ids, exact, k)

    def _build(self) -> None:
        try:
            usearch = require("usearch.index", "embed")
        except MissingDependency as e:
            # Exact search still works, only slower: say so once and carry on without the graph.
            log.warning("%s; searching %d vectors exactly", e, len(self))
            self.approx_threshold = None
            return
        self._ann = usearch.Index(ndim=self.dim, metric="cos", dtype=usearch.ScalarKind.F32,
                                  connectivity=self.connectivity,
                                  expansion_search=self.expansion_search)
        keys = np.array([self._key[i] for i in self._ids], dtype=np.uint64)
        self._ann.add(keys, self._rows[:len(self)])

    def _query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise InputError(f"query has {q.shape[0]} dimensions but the index has {self.dim}; "
                             "embed it with the same embedder as the index")
        return normalize(q[None, :])[0]

    def _grow(self, needed: int) -> None:
        if needed > len(self._rows):
            bigger = np.zeros((max(needed, 2 * len(self._rows), 64), self.dim), dtype=np.float32)
            bigger[:len(self)] = self._rows[:len(self)]
            self._rows = bigger


def _top(ids: list[Hashable], scores: np.ndarray, k: int) -> list[tuple[Hashable, float]]:
    if k < len(ids):
        best = np.argpartition(-scores, k - 1)[:k]
    else:
        best = np.arange(len(ids))
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(ids[i], float(scores[i])) for i in best]
