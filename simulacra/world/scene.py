"""A scene: ems and people talking in one shared transcript (layer 6).

Each participant keeps its own faculties: an em speaks through its own ``Em`` and engine and
sees only what was said while it was present (presence is a list of spans of the transcript).
A turn gives one participant the floor: an em replies with itself as ``next_author``, and only
its own messages are kept, so no em ever speaks for another; a person types a line (an empty
line passes, ``None`` leaves the scene). Who speaks next is a policy (``simulacra.world.turns``).

The transcript saves as an IRC log (public messages and world notices; thoughts stay private),
and ``read_log`` parses it back.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable, Sequence

from simulacra.chat import IRC, visible
from simulacra.errors import ConfigError, InputError
from simulacra.types import Completer, Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em
    from simulacra.world.turns import Policy

log = logging.getLogger(__name__)
_IRC = IRC()

Ask = Callable[[str], Awaitable["str | None"]]  # a person's turn: their line, "" to pass, None to leave


@dataclass
class Participant:
    """An em (with its engine) or a person (``em`` None)."""

    name: str
    em: "Em | None" = None
    engine: Completer | None = None

    @property
    def human(self) -> bool:
        return self.em is None


class Scene:
    def __init__(self, participants: Iterable[Participant] = (), opening: Sequence[Message] = ()):
        self.transcript: list[Message] = []
        self.participants: dict[str, Participant] = {}
        self._spans: dict[str, list[list[int | None]]] = {}  # name -> [[start, end or None], ...]
        self.last_turn: str | None = None  # who had the floor last, whether or not they spoke
        self.turns = 0
        for p in participants:
            self.join(p)
        self.post(*opening)

    # -- presence -------------------------------------------------------------------------
    def join(self, participant: Participant, announce: bool = False) -> None:
        name = participant.name
        if not _IRC.valid_name(name):
            raise InputError(f"participant name {name!r} cannot be written in an IRC log; "
                             "use a name without <, > or line breaks")
        if name in self.present:
            raise ConfigError(f"two participants are named '{name}'; rename one (the em's name: "
                              "in its config.yaml)")
        self.participants[name] = participant
        if announce:
            self.post(Message(None, f"{name} joins", kind="observation"))
        self._spans.setdefault(name, []).append([len(self.transcript), None])

    def leave(self, name: str, announce: bool = False) -> None:
        if name not in self.present:
            return
        self._spans[name][-1][1] = len(self.transcript)
        if announce:
            self.post(Message(None, f"{name} leaves", kind="observation"))

    @property
    def present(self) -> list[str]:
        """Who is here now, in the order they (first) joined."""
        return [n for n, spans in self._spans.items() if spans[-1][1] is None]

    def seen_by(self, name: str) -> list[Message]:
        """What ``name`` witnessed: messages posted while present, others' thoughts left out."""
        seen: list[Message] = []
        for start, end in self._spans.get(name, []):
            seen += self.transcript[start:end]
        return visible(seen, name, thoughts=True)

    # -- the transcript -------------------------------------------------------------------
    def post(self, *messages: Message) -> None:
        now = time.time()
        self.transcript += [m if m.timestamp else dataclasses.replace(m, timestamp=now) for m in messages]

    def log(self) -> str:
        """The transcript as an IRC log: public messages and world notices, no thoughts."""
        return _IRC.render(public(self.transcript))

    @property
    def speakers(self) -> set[str]:
        return {m.author for m in self.transcript if m.author is not None and m.public}


def public(messages: Iterable[Message]) -> list[Message]:
    """What anyone can see: messages, actions and world notices."""
    return [m for m in messages if m.public or (m.author is None and m.kind in ("observation", "system"))]


def read_log(text: str) -> list[Message]:
    return _IRC.parse(text)


def opening_messages(text: str) -> list[Message]:
    """``--opening``: IRC lines (``<bob> hi``) become messages; plain text a world notice."""
    parsed = _IRC.parse(text)
    return parsed or [Message(None, text.strip(), kind="observation")]


# -- taking turns -------------------------------------------------------------------------

@dataclass
class Hooks:
    """How a runner shows the scene: who has the floor, streamed text, what was kept."""

    on_turn: Callable[[Participant], None] = lambda p: None
    on_text: Callable[[str], None] | None = None
    on_done: Callable[[Participant, list[Message], int], None] = lambda p, kept, muffled: None


async def take_turn(scene: Scene, name: str, *, ask: Ask | None = None, seed: int | None = None,
                    hooks: Hooks | None = None) -> list[Message]:
    """Give ``name`` the floor; post and return what they said (possibly nothing)."""
    hooks = hooks or Hooks()
    p = scene.participants[name]
    scene.last_turn = name
    hooks.on_turn(p)
    muffled = 0
    if p.human:
        if ask is None:
            raise InputError(f"{name} is a person but nobody is reading their turns")
        line = await ask(name)
        if line is None:
            scene.leave(name, announce=True)
            kept = []
        else:
            kept = [human_message(name, line)] if line.strip() else []
    else:
        reply = await speak(p.em, scene.seen_by(name), p.engine, next_author=name, on_text=hooks.on_text,
                            seed=seed)
        # respond keeps only next_author's messages; checked again because the scene's promise
        # ("no em speaks for another") must not depend on which speaking function ran
        kept = [m for m in reply.messages if m.author == name]
        muffled = len(reply.rejected) + len(reply.messages) - len(kept)
    scene.post(*kept)
    scene.turns += 1
    hooks.on_done(p, kept, muffled)
    return kept


def human_message(name: str, line: str) -> Message:
    text = line.strip()
    if text.startswith("/me "):
        return Message(name, text[4:].strip(), kind="action")
    return Message(name, text)


async def speak(em: "Em", history: Sequence[Message], engine: Completer, **kwargs):
    """The em's full turn: ``converse`` (thinking, memory) when the agents layer has it, else
    a plain ``respond``."""
    try:
        from simulacra.agents.converse import converse as reply_fn
    except ImportError:
        from simulacra.ems.respond import respond as reply_fn
    return await reply_fn(em, history, engine, **kwargs)


async def run_scene(scene: Scene, policy: "Policy", turns: int, *, ask: Ask | None = None,
                    seed: int | None = None, hooks: Hooks | None = None) -> Scene:
    """Run ``turns`` turns (passes count), or until nobody is left."""
    rng = random.Random(seed)
    for i in range(turns):
        if not scene.present:
            break
        name = await policy.next_speaker(scene, rng)
        await take_turn(scene, name, ask=ask, seed=None if seed is None else seed + 7919 * (i + 1), hooks=hooks)
    return scene


# -- engines ------------------------------------------------------------------------------

class Engines:
    """Engines by model spec, loaded once: ems on the same model share one loaded model."""

    def __init__(self, load: Callable[[str], Completer] | None = None):
        self._load = load
        self._by_spec: dict[str, Completer] = {}

    def get(self, spec: str | None) -> Completer:
        from simulacra.engine.spec import default_model

        key = spec or default_model()
        if key not in self._by_spec:
            if self._load is None:
                from simulacra.engine import load_engine

                self._load = load_engine
            self._by_spec[key] = self._load(key)
        return self._by_spec[key]

    def for_em(self, em: "Em", override: str | None = None) -> Completer:
        return self.get(override or em.config.continuation_model or None)

    def __len__(self) -> int:
        return len(self._by_spec)

    async def aclose(self) -> None:
        for engine in self._by_spec.values():
            close = getattr(engine, "aclose", None)
            if close:
                await close()
