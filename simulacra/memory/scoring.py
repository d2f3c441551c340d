"""Retrieval scoring from Generative Agents (Park et al. 2023), as pure functions.

A memory's score for a query is the weighted sum of three parts, each min-max normalised over the
candidates so that no part dominates by its scale:

- recency: ``decay ** hours`` since the memory was last accessed (0.995 per hour in the paper),
- importance: 1 (mundane) .. 10 (poignant), rated when the memory is stored,
- relevance: cosine similarity between the memory's embedding and the query's.

When every candidate has the same value of a part, the paper's code gives each 0.5; so do we.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

DEFAULT_DECAY = 0.995
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Weights:
    recency: float = 1.0
    importance: float = 1.0
    relevance: float = 1.0

    @classmethod
    def of(cls, weights: "Weights | tuple[float, float, float] | None") -> "Weights":
        """Accept a Weights, an (alpha_recency, alpha_importance, alpha_relevance) triple or None."""
        if weights is None:
            return cls()
        if isinstance(weights, Weights):
            return weights
        return cls(*(float(w) for w in weights))


@dataclass(frozen=True)
class Parts:
    """Per-candidate arrays: the final score and its three normalised parts."""

    score: np.ndarray
    recency: np.ndarray
    importance: np.ndarray
    relevance: np.ndarray


def recency(hours_since_access: np.ndarray, decay: float = DEFAULT_DECAY) -> np.ndarray:
    """Exponential decay per hour; a last access in the future (clock skew) counts as now."""
    hours = np.maximum(np.asarray(hours_since_access, dtype=np.float64), 0.0)
    return np.power(decay, hours)


def min_max(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    low, high = values.min(), values.max()
    if high - low <= 1e-12:
        return np.full_like(values, 0.5)
    return (values - low) / (high - low)


def score(now: float, last_accessed: np.ndarray, importance: np.ndarray, cosine: np.ndarray,
          weights: Weights | tuple[float, float, float] | None = None,
          decay: float = DEFAULT_DECAY) -> Parts:
    """Score candidates; ``now`` and ``last_accessed`` are in seconds (e.g. ``time.time()``)."""
    w = Weights.of(weights)
    hours = (now - np.asarray(last_accessed, dtype=np.float64)) / SECONDS_PER_HOUR
    rec = min_max(recency(hours, decay))
    imp = min_max(importance)
    rel = min_max(cosine)
    return Parts(w.recency * rec + w.importance * imp + w.relevance * rel, rec, imp, rel)


# --- importance without a model --------------------------------------------------------------
# The paper asks the language model to rate 1..10. Until that rating exists (and for ems whose
# engine is too small to rate), this guesses from surface cues: feelings, life events, people,
# emphasis and length push a memory up; routine activity pulls it down.

_FEELING = {
    "love", "loved", "loves", "hate", "hated", "afraid", "scared", "fear", "angry", "furious",
    "cried", "crying", "tears", "happy", "sad", "grief", "miss", "lonely", "jealous", "proud",
    "ashamed", "sorry", "betrayed", "hurt", "hope", "dream", "secret", "promise", "promised",
}
_EVENT = {
    "died", "dead", "death", "killed", "born", "birth", "married", "marry", "wedding", "divorce",
    "broke", "fired", "hired", "won", "lost", "attack", "attacked", "fire", "accident", "sick",
    "ill", "pregnant", "engaged", "kiss", "kissed", "fight", "fought", "stole", "escaped",
}
_ROUTINE = {
    "ate", "eating", "breakfast", "lunch", "sleeping", "slept", "walked", "walking", "sat",
    "sitting", "idle", "empty", "nothing", "brushing", "cleaning", "waiting", "weather",
}
_SELF = {"i", "me", "my", "mine", "myself", "we", "us", "our"}


def heuristic_importance(text: str) -> int:
    """A 1..10 guess at how poignant a memory is, from words alone (no model)."""
    words = re.findall(r"[A-Za-z']+", text)
    lower = [w.lower() for w in words]
    points = 2.0
    points += min(2.0, math.log1p(len(words)) / 2)  # more said, usually more to remember
    points += 2.0 * min(2, sum(w in _FEELING for w in lower))
    points += 2.0 * min(2, sum(w in _EVENT for w in lower))
    points -= 1.0 * min(2, sum(w in _ROUTINE for w in lower))
    points += 1.0 if any(w in _SELF for w in lower) else 0.0
    points += min(2.0, 0.5 * text.count("!"))
    points += min(1.5, 0.5 * len(_names(text)))
    return int(min(10, max(1, round(points))))


def _names(text: str) -> set[str]:
    """Capitalised words that do not start a sentence: a cheap stand-in for named entities."""
    names = set()
    for sentence in re.split(r"[.!?]\s+|\n", text):
        for word in re.findall(r"[A-Za-z']+", sentence)[1:]:
            if word[0].isupper() and word != "I":
                names.add(word)
    return names
