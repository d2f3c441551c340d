"""``character``: retrieval over the em's corpus ("RAFT"): the chunks closest to the conversation.

The corpus (``<em>/<name>.chr/*.txt``, see ``simulacra.ems.corpus``) is embedded once: vectors
live on disk under ``state/cache/`` keyed by content hash, so a restart embeds only chunks it has
never seen, and the loaded index stays in memory per process until a corpus file changes. The
query is the last ``recent_message_attention`` messages; items come most relevant first, which
prepend assembly places nearest the conversation.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Literal, Sequence

from pydantic import Field

from simulacra.ems.config import FacultyConfig
from simulacra.ems.corpus import CorpusChunk, load_corpus, message_texts
from simulacra.engine.embed import CachedEmbedder, Embedder, embedder_by_name
from simulacra.engine.vectors import VectorIndex
from simulacra.faculties import Faculty
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em

log = logging.getLogger(__name__)

APPROX_CANDIDATES = 100  # how many an approximate search returns when max_items is unset


class Config(FacultyConfig):
    name: str | None = Field(None, description="whose corpus (<name>.chr); default: the em's own")
    chunk_size: int = Field(3, ge=1, description="messages per chunk in chat logs")
    chunk_by: Literal["lines", "section"] = "lines"
    approximate_above: int | None = Field(20_000, ge=1, description="chunks past which search is approximate")


@dataclass
class CorpusIndex:
    chunks: list[CorpusChunk]
    index: VectorIndex
    embedder: Embedder
    signature: tuple

    def search(self, query: str, k: int) -> list[tuple[CorpusChunk, float]]:
        if not query.strip() or not self.chunks:
            return []
        vector = self.embedder.embed_one(query)
        with _lock:  # VectorIndex is not thread-safe (its graph is built on first search)
            found = self.index.search(vector, k)
        return [(self.chunks[i], score) for i, score in found]


_indexes: dict[tuple, CorpusIndex] = {}
_lock = threading.Lock()


async def run(em: "Em", config: Config, history: Sequence[Message]) -> AsyncIterator[str]:
    for chunk, _score in await retrieve(em, config, history):
        yield chunk.text


async def retrieve(em: "Em", config: Config, history: Sequence[Message]) -> list[tuple[CorpusChunk, float]]:
    """(chunk, cosine) best first: what ``run`` yields, with sources and scores for ``check``."""
    recent = history[-config.recent_message_attention:] if config.recent_message_attention else []
    query = "\n".join(message_texts(em.config.message_history_format, recent))
    if not query.strip():
        return []
    corpus = await asyncio.to_thread(corpus_index, em, config)
    k = config.max_items if config.max_items is not None else (
        APPROX_CANDIDATES if corpus.index.approximate else len(corpus.chunks))
    return await asyncio.to_thread(corpus.search, query, k)


def corpus_index(em: "Em", config: Config, embedder: Embedder | None = None) -> CorpusIndex:
    """The em's embedded corpus, built once per process and rebuilt when a file changes."""
    folder = em.folder / f"{config.name}.chr" if config.name else em.corpus_folder
    fmt = em.config.message_history_format
    if embedder is None:
        embedder = embedder_by_name(em.config.representation_model)
    key = (str(folder.resolve()), config.chunk_size, config.chunk_by, fmt, embedder.name,
           config.approximate_above)
    signature = _signature(folder)
    with _lock:
        cached = _indexes.get(key)
        if cached is not None and cached.signature == signature:
            return cached
        chunks = load_corpus(folder, chunk_size=config.chunk_size, chunk_by=config.chunk_by, render_format=fmt)
        cached_embedder = CachedEmbedder(embedder, em.state / "cache")
        try:
            log.info("embedding %d corpus chunks from %s", len(chunks), folder)
            vectors = cached_embedder.embed([c.text for c in chunks])
        finally:
            cached_embedder.close()
        index = VectorIndex(embedder.dim, approx_threshold=config.approximate_above)
        index.add(range(len(chunks)), vectors)
        _indexes[key] = built = CorpusIndex(chunks, index, embedder, signature)
        return built


def clear_cache() -> None:
    """Forget the in-memory indexes (the on-disk vectors stay)."""
    with _lock:
        _indexes.clear()


def _signature(folder: Path) -> tuple:
    if not folder.is_dir():
        return ()
    return tuple((p.name, st.st_mtime_ns, st.st_size) for p in sorted(folder.glob("*.txt"))
                 for st in [p.stat()])


FACULTY = Faculty("character", Config, run)
