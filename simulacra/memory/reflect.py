"""Asking the model about memories: how important one is, and what a run of them adds up to.

Both follow Generative Agents (Park et al. 2023). ``rate_importance`` asks for a 1..10 rating and
reads the first number it can find; when the model gives none (a small model, the scripted fake,
an error) the word heuristic stands in, so storing a memory never fails for want of a rating.
Model ratings are cached by (engine, text) hash in ``state/importance.json`` next to the memory.

``maybe_reflect`` sums the importance of what the em has remembered since it last reflected;
once the sum reaches the threshold it shows the model those memories, numbered by their ids,
and asks for a few insights written ``insight (because of 3, 7)``. Each insight becomes a
``reflection`` memory citing the ids it named that were really shown; an insight citing none of
them is dropped as made up. Where the em got to is kept in ``state/reflection.json``, so a turn
whose reflection produced nothing usable does not ask again until the threshold is reached anew.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
from pathlib import Path
from simulacra.engine.base import complete_text
from simulacra.errors import SimulacraError
from simulacra.memory.scoring import heuristic_importance
from simulacra.memory.scratchpad import atomic_write
from simulacra.memory.store import Memory, MemoryStore
from simulacra.types import Completer, Sampling

log = logging.getLogger(__name__)

IMPORTANCE_PROMPT = (
    "On a scale of 1 to 10, where 1 is entirely ordinary (tying a shoe, a remark about the weather) "
    "and 10 is life-changing (a death in the family, falling in love), rate how much the following "
    "memory matters.\nMemory: {text}\nRating (1-10):"
)
REFLECT_PROMPT = (
    "{whose} memories, numbered:\n{memories}\n\n"
    "What {n} high-level insights can be drawn from these memories? Write one per line, each "
    "ending with the numbers of the memories it comes from, like this:\n"
    "insight text (because of 3, 7)\n\n1."
)
CACHE_LIMIT = 5000  # ratings kept on disk; the oldest go first
MAX_SHOWN = 30  # the newest memories a reflection looks at

_WORDS = {w: i for i, w in enumerate("one two three four five six seven eight nine ten".split(), 1)}
_NUMBER = re.compile(r"\b(10|[1-9])(?:\.\d+)?\b|\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)
# "(because of 3, 7)", "(from memories 3 and 7)", "(#3)": any short lead-in, then the ids
_CITES = re.compile(r"\(([^()\d]{0,30})(#?\d+(?:(?:\s*(?:,|and|&)\s*|\s+)#?\d+)*)\s*\)\s*\.?\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


# --- importance ------------------------------------------------------------------------------

def parse_rating(text: str) -> int | None:
    """The first rating 1..10 in the model's answer (digits or words), or None."""
    m = _NUMBER.search(text)
    if not m:
        return None
    return int(m.group(1)) if m.group(1) else _WORDS[m.group(2).lower()]


async def rate_importance(engine: Completer, text: str, cache: Path | str | None = None) -> int:
    """1..10: the model's rating when it gives one, else ``heuristic_importance(text)``.

    ``cache``: a folder (the em's ``state/``) whose ``importance.json`` keeps model ratings.
    """
    store = RatingCache.at(cache) if cache is not None else None
    key = _key(engine, text)
    if store is not None and (hit := store.get(key)) is not None:
        return hit
    sampling = Sampling(temperature=0.0, max_tokens=6, seed=0)  # no stop: "\n7" is an answer too
    try:
        answer = await complete_text(engine, IMPORTANCE_PROMPT.format(text=" ".join(text.split())), sampling)
    except Exception as e:  # noqa: BLE001  a rating is never worth a failed turn
        log.warning("importance rating failed (%s); using the heuristic", e)
        answer = ""
    rating = parse_rating(answer)
    if rating is None:
        log.debug("no rating in %r; using the heuristic", answer[:40])
        return heuristic_importance(text)
    if store is not None:
        await asyncio.to_thread(store.put, key, rating)
    return rating


def _key(engine: Completer, text: str) -> str:
    name = getattr(engine, "name", type(engine).__name__)
    return hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()[:24]


class RatingCache:
    """A JSON dict hash -> rating, shared by everything in this process that rates for an em."""

    _open: dict[Path, "RatingCache"] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, int] | None = None

    @classmethod
    def at(cls, folder: Path | str) -> "RatingCache":
        path = (Path(folder) / "importance.json").resolve()
        with cls._open_lock:
            return cls._open.setdefault(path, cls(path))

    def get(self, key: str) -> int | None:
        with self._lock:
            return self._load().get(key)

    def put(self, key: str, rating: int) -> None:
        with self._lock:
            data = self._load()
            data.pop(key, None)
            data[key] = rating
            while len(data) > CACHE_LIMIT:
                del data[next(iter(data))]
            atomic_write(self.path, json.dumps(data))

    def _load(self) -> dict[str, int]:
        if self._data is None:
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # missing or damaged: a cache starts over
                raw = {}
            self._data = {k: v for k, v in raw.items() if isinstance(v, int) and 1 <= v <= 10} \
                if isinstance(raw, dict) else {}
        return self._data


# --- reflection ------------------------------------------------------------------------------

def pending(store: MemoryStore) -> list[Memory]:
    """Memories since the last reflection (reflections themselves do not count)."""
    last = _last_reflected(store)
    memories = store.all()
    if memories and last > memories[-1].id:  # the database was replaced: start counting again
        last = 0
    return [m for m in memories if m.id > last and m.kind != "reflection"]


async def maybe_reflect(store: MemoryStore, engine: Completer, threshold: float, *, name: str | None = None,
                        insights: int = 3, rate: bool = True) -> list[Memory]:
    """Reflect when the importance summed since the last reflection reaches ``threshold``.

    Returns the reflections stored (none when below the threshold or the model gave nothing
    usable). ``rate``: rate each insight with the model, else by the heuristic.
    """
    recent = await asyncio.to_thread(pending, store)
    if not recent or sum(m.importance for m in recent) < threshold:
        return []
    shown = recent[-MAX_SHOWN:]
    prompt = REFLECT_PROMPT.format(whose=f"{name}'s" if name else "My",
                                   memories="\n".join(f"{m.id}. {' '.join(m.text.split())}" for m in shown),
                                   n=insights)
    sampling = Sampling(temperature=0.5, max_tokens=60 * insights, stop=("\n\n",), seed=0)
    try:
        answer = await complete_text(engine, prompt, sampling)
    except SimulacraError as e:
        log.warning("reflection failed (%s); will try again after more memories", e)
        return []
    found = parse_insights(answer, {m.id for m in shown})[:insights]
    state = store.path.parent
    stored = []
    for text, cites in found:
        importance = await rate_importance(engine, text, state) if rate else heuristic_importance(text)
        stored.append(await asyncio.to_thread(store.add, text, "reflection", importance, cites))
    await asyncio.to_thread(_mark_reflected, store, max(m.id for m in recent))
    log.info("reflected on %d memories: %d insight(s)", len(shown), len(stored))
    return stored


def parse_insights(answer: str, known: set[int]) -> list[tuple[str, tuple[int, ...]]]:
    """``insight (because of 3, 7)`` lines -> (insight, ids among ``known``); lines citing no
    known id (none at all, or only invented ones) are dropped."""
    out = []
    for line in answer.splitlines():
        m = _CITES.search(line)
        if not m:
            continue
        cites = tuple(dict.fromkeys(int(n) for n in re.findall(r"\d+", m.group(2)) if int(n) in known))
        text = _BULLET.sub("", line[:m.start()]).strip().rstrip(":;,-").strip()
        if text and cites:
            out.append((text, cites))
    return out


def _state_file(store: MemoryStore) -> Path:
    return store.path.parent / "reflection.json"


def _last_reflected(store: MemoryStore) -> int:
    try:
        data = json.loads(_state_file(store).read_text(encoding="utf-8"))
        return int(data.get("last_id", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _mark_reflected(store: MemoryStore, last_id: int) -> None:
    atomic_write(_state_file(store), json.dumps({"last_id": last_id}))
