"""Who speaks next in a scene: pluggable next-speaker policies.

A policy is anything with ``async next_speaker(scene, rng) -> name`` that returns someone
present. The floor passes on even when its holder said nothing (a person's empty line, an em
whose drafts were all muffled), so policies look at ``scene.last_turn``, not the last author.

- ``round-robin``: everyone in join order.
- ``mention``: a participant named in the last message speaks next, else the fallback.
- ``random``: weighted draw (``talkativeness``); weight 0 never speaks; not twice in a row.
- ``model``: a completion engine predicts the next speaker's name from the transcript (Chapter
  II's ``reply_on_sim``): the log is rendered in IRC form and ends with ``<``, and the name up
  to ``>`` is read back and matched against the participants, else the fallback.
"""
from __future__ import annotations

import logging
import random
import re
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

from simulacra.chat import IRC
from simulacra.errors import ConfigError
from simulacra.types import Completer, Message, Sampling

if TYPE_CHECKING:
    from simulacra.world.scene import Scene

log = logging.getLogger(__name__)
POLICIES = ("round-robin", "mention", "random", "model")


class Policy(Protocol):
    async def next_speaker(self, scene: "Scene", rng: random.Random) -> str: ...


def _others(scene: "Scene") -> list[str]:
    """Who may take the floor: everyone present but its last holder (unless alone)."""
    present = scene.present
    rest = [n for n in present if n != scene.last_turn]
    return rest or present


class RoundRobin:
    async def next_speaker(self, scene: "Scene", rng: random.Random) -> str:
        present = scene.present
        order = list(scene.participants)  # join order, including people who left
        if scene.last_turn not in order:
            return present[0]
        i = order.index(scene.last_turn)
        for name in order[i + 1:] + order[: i + 1]:
            if name in present:
                return name
        return present[0]


class Mention:
    """The first participant named in the last public message (not its author, not the floor's
    last holder) speaks next."""

    def __init__(self, fallback: Policy | None = None):
        self.fallback = fallback or RoundRobin()

    async def next_speaker(self, scene: "Scene", rng: random.Random) -> str:
        last = next((m for m in reversed(scene.transcript) if m.public or m.author is None), None)
        if last is not None:
            candidates = [n for n in _others(scene) if n != last.author]
            named = mentioned(last.content, candidates)
            if named:
                return named[0]
        return await self.fallback.next_speaker(scene, rng)


def mentioned(text: str, names: Sequence[str]) -> list[str]:
    """Names that occur in ``text`` as whole words (any case, ``@name`` too), in order of first
    occurrence; a longer name wins where names overlap ("Ann" inside "Ann Marie")."""
    hits: list[tuple[int, int, str]] = []
    for name in names:
        m = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE)
        if m:
            hits.append((m.start(), -len(name), name))
    return [name for _, _, name in sorted(hits)]


class Weighted:
    """A random draw weighted by talkativeness (default 1.0 each)."""

    def __init__(self, weights: Mapping[str, float] | None = None):
        self.weights = dict(weights or {})
        bad = [f"{n}={w}" for n, w in self.weights.items() if not w >= 0]
        if bad:
            raise ConfigError(f"weights must be 0 or more: {', '.join(bad)}")

    async def next_speaker(self, scene: "Scene", rng: random.Random) -> str:
        candidates = _others(scene)
        weights = [self.weights.get(n, 1.0) for n in candidates]
        if not any(weights):
            candidates = scene.present
            weights = [self.weights.get(n, 1.0) for n in candidates]
        if not any(weights):
            raise ConfigError("every participant has weight 0; give someone a weight above 0")
        return rng.choices(candidates, weights=weights)[0]


class AskModel:
    """Ask a completion engine who speaks next; fall back when its guess names nobody here."""

    def __init__(self, engine: Completer, fallback: Policy | None = None, tries: int = 3,
                 max_tokens: int = 12, temperature: float = 0.7):
        self.engine, self.fallback, self.tries = engine, fallback or RoundRobin(), tries
        self.max_tokens, self.temperature = max_tokens, temperature

    async def next_speaker(self, scene: "Scene", rng: random.Random) -> str:
        from simulacra.world.scene import public

        name = await predict_speaker(self.engine, public(scene.transcript), scene.present,
                                     seed=rng.randrange(2**31), tries=self.tries,
                                     max_tokens=self.max_tokens, temperature=self.temperature)
        return name or await self.fallback.next_speaker(scene, rng)


async def predict_speaker(engine: Completer, messages: Sequence[Message], candidates: Sequence[str], *,
                          seed: int | None = None, tries: int = 3, max_tokens: int = 12,
                          temperature: float = 0.7) -> str | None:
    """The participant a model expects to speak next, or None when no try names one."""
    from simulacra.engine.base import complete_text

    if not candidates:
        return None
    prompt = speaker_prompt(messages, engine.count_tokens, engine.capabilities.max_context - max_tokens)
    for i in range(tries):
        sampling = Sampling(temperature=temperature, max_tokens=max_tokens, stop=(">", "\n"),
                            seed=None if seed is None else seed + i)
        guess = (await complete_text(engine, prompt, sampling)).split(">")[0]
        name = match_name(guess, candidates)
        log.debug("predicted speaker %r -> %r", guess, name)
        if name:
            return name
    return None


def speaker_prompt(messages: Sequence[Message], count_tokens, budget: int) -> str:
    """The newest messages that fit ``budget`` tokens, as an IRC log, then ``<``. Each message
    is counted once, so this is linear in the transcript."""
    fmt, kept, used = IRC(), [], 1
    for m in reversed(messages):
        line = fmt.render([m])
        used += count_tokens(line)
        if used > budget:
            break
        kept.append(line)
    return "".join(reversed(kept)) + "<"


def match_name(guess: str, candidates: Sequence[str]) -> str | None:
    """A guessed name as one of ``candidates``: exact, then any case, then a unique prefix."""
    guess = guess.strip().lstrip("@")
    if not guess:
        return None
    if guess in candidates:
        return guess
    folded = [c for c in candidates if c.casefold() == guess.casefold()]
    if len(folded) == 1:
        return folded[0]
    prefixed = [c for c in candidates if len(guess) >= 2 and c.casefold().startswith(guess.casefold())]
    return prefixed[0] if len(prefixed) == 1 else None


def make_policy(name: str, *, weights: Mapping[str, float] | None = None, engine: Completer | None = None) -> Policy:
    if name == "round-robin":
        return RoundRobin()
    if name == "mention":
        return Mention()
    if name == "random":
        return Weighted(weights)
    if name == "model":
        if engine is None:
            raise ConfigError("the model policy needs an engine to ask; give --policy-model SPEC")
        return AskModel(engine)
    raise ConfigError(f"unknown turn policy '{name}'; use one of: {', '.join(POLICIES)}")


def parse_weights(items: Sequence[str]) -> dict[str, float]:
    """``["mara=0.5", "bob=2"]`` or ``["mara=0.5,bob=2"]`` into a mapping."""
    out: dict[str, float] = {}
    for item in (part for text in items for part in text.split(",") if part.strip()):
        name, sep, value = item.rpartition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"bad weight '{item}': write NAME=NUMBER, e.g. --weights mara=0.5")
    return out
