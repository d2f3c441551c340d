"""The ``memory`` and ``scratchpad`` faculties: what the em remembers, put into its prompt.

``memory`` asks the em's long-term memory (``state/memory.db``) for the memories that best fit
the last ``recent_message_attention`` messages, scored by recency, importance and relevance with
the weights and decay of the em's ``memory:`` config, and yields them best first as
``- (2 days ago) text``. It never creates the database: an em without memories gets no section.
``scratchpad`` yields the em's scratchpad (``state/scratchpad.yaml``) as one item.

Both are opened once per process per em folder, so running them every turn costs a query
embedding and a search, not a model load.

The clock. Memory is about time, so everything here reads ``now()``: the clock ``converse``
was given (a context variable, so concurrent conversations keep their own), else the system
clock plus ``$SIMULACRA_CLOCK_OFFSET`` seconds. The offset lets a new process live "a day
later" (``SIMULACRA_CLOCK_OFFSET=86400 simulacra prompt EM``) without touching the system clock.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable, Literal, Sequence

from pydantic import Field

from simulacra.ems.config import FacultyConfig
from simulacra.ems.corpus import message_texts
from simulacra.errors import ConfigError
from simulacra.faculties import Faculty
from simulacra.memory.scoring import Weights
from simulacra.memory.scratchpad import Scratchpad
from simulacra.memory.store import MemoryStore, memory_path
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em

log = logging.getLogger(__name__)

CLOCK_OFFSET_ENV = "SIMULACRA_CLOCK_OFFSET"
CLOCK: contextvars.ContextVar[Callable[[], float] | None] = contextvars.ContextVar("simulacra_clock", default=None)


def now() -> float:
    """Seconds since 1970 as the em lives them (see the module docstring)."""
    clock = CLOCK.get()
    return clock() if clock is not None else time.time() + clock_offset()


def clock_offset() -> float:
    raw = os.environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"${CLOCK_OFFSET_ENV} must be a number of seconds (e.g. 86400 for a day "
                          f"later), not {raw!r}") from None


# --- opening stores once per process ---------------------------------------------------------

_stores: dict[tuple, MemoryStore] = {}
_lock = threading.Lock()


def memory_store(em: "Em", create: bool = True) -> MemoryStore | None:
    """The em's MemoryStore, shared within this process; None if it has none and not ``create``."""
    path = memory_path(em.folder)
    key = (str(path.resolve()), em.config.representation_model, em.config.memory.decay)
    with _lock:
        store = _stores.get(key)
        if store is not None and path.exists():
            return store
        if not create and not path.exists():
            return None
        from simulacra.engine.embed import embedder_by_name

        if store is not None:  # the file was deleted under us: start a fresh one
            store.close()
        _stores[key] = store = MemoryStore(path, embedder_by_name(em.config.representation_model), now,
                                           decay=em.config.memory.decay)
        return store


def clear_cache() -> None:
    """Close and forget the open stores (tests; a long-lived process that moved em folders)."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


# --- the memory faculty ----------------------------------------------------------------------

class MemoryFaculty(FacultyConfig):
    header: str = "What {name} remembers:\n"
    max_items: int | None = Field(8, ge=0, description="how many memories to recall")
    kind: Literal["observation", "reflection", "note"] | None = Field(None, description="only this kind")


async def run_memory(em: "Em", config: MemoryFaculty, history: Sequence[Message]) -> AsyncIterator[str]:
    for line in await asyncio.to_thread(recall, em, config, history):
        yield line


def recall(em: "Em", config: MemoryFaculty, history: Sequence[Message]) -> list[str]:
    """The prompt lines for the memories that best fit the recent conversation, best first."""
    recent = history[-config.recent_message_attention:] if config.recent_message_attention else []
    query = "\n".join(message_texts(em.config.message_history_format, recent))
    store = memory_store(em, create=False)
    if store is None or not query.strip():
        return []
    m = em.config.memory
    k = 8 if config.max_items is None else config.max_items
    at = now()
    hits = store.search(query, k, Weights(m.recency, m.importance, m.relevance), kind=config.kind, at=at)
    return [f"- ({ago(at - h.memory.created_at)}) {h.memory.text}" for h in hits]


def ago(seconds: float) -> str:
    """``just now``, ``5 minutes ago``, ``1 day ago``, ``3 weeks ago``..."""
    if seconds < 60:
        return "just now"
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


# --- the scratchpad faculty ------------------------------------------------------------------

class ScratchpadFaculty(FacultyConfig):
    header: str = "{name}'s notes:\n"


async def run_scratchpad(em: "Em", config: ScratchpadFaculty, history: Sequence[Message]) -> AsyncIterator[str]:
    # Read every time: the em (through its tools) or a person may have just changed it.
    text = await asyncio.to_thread(scratchpad(em.folder).render)
    if text.strip():
        yield text


_pads: dict[str, Scratchpad] = {}


def scratchpad(em_folder: Path) -> Scratchpad:
    """One Scratchpad per em folder per process, so its lock guards every writer here."""
    key = str(Path(em_folder).resolve())
    with _lock:
        if key not in _pads:
            _pads[key] = Scratchpad.for_em(em_folder)
        return _pads[key]


MEMORY = Faculty("memory", MemoryFaculty, run_memory)
SCRATCHPAD = Faculty("scratchpad", ScratchpadFaculty, run_scratchpad)
