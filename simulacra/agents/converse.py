"""One turn of an em, with its mind switched on: the call every interface makes.

    history ─ think (private thought) ─ respond ─ critique & revise ─ remember ─ maybe reflect
              thinking.enabled                    thinking.critique   memory.enabled

``converse`` is ``respond`` plus what an em's ``thinking:`` and ``memory:`` config ask for:

- thinking: before replying the em writes one private line, prompted exactly like its reply but
  cued as a thought (``* mara (thinks)`` in irc/colon, ``<think>`` in chat templates). The reply
  is written with that thought in its history (an em sees its own thoughts, nobody else does).
- critique: the draft is checked against the em's persona (its ``notes`` faculties); if the
  model judges it out of character, the verdict becomes a second private thought and the reply
  is written again. The first draft goes to ``Reply.rejected``.
- memory: after the exchange the em remembers, as ``observation``s, what was said to it since
  it last spoke (``tom said: ...``, at most ``MAX_INCOMING``) and what it said (``I said: ...``);
  its thought is kept as a ``note`` (``I thought: ...``): its own inner life, not something it
  saw, but worth recalling and worth reflecting on. Importance is rated by the model
  (``rate_importance``) or the word heuristic; then ``maybe_reflect`` runs. Writes go through
  ``asyncio.to_thread`` and finish before ``converse`` returns, so the next turn can recall them.
  A retried turn (same history) is not remembered twice within a process. Recall is the
  ``memory`` faculty's job: an em recalls only if its ``ensembles`` list ``faculty: memory``.

``Reply.messages`` holds the thoughts first, then the public messages; interfaces show
``public(reply.messages)`` unless ``thinking.show``. ``clock`` (default: the memory clock, which
honours ``$SIMULACRA_CLOCK_OFFSET``) stamps thoughts and memories and is what the memory faculty
reads while this turn's prompt is built.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
from collections import deque
from typing import Callable, Iterable, Sequence

from simulacra.chat import ChatFormat
from simulacra.ems.em import Em
from simulacra.ems.prompt import build_prompt, em_format
from simulacra.ems.respond import Reply, respond
from simulacra.engine.base import complete_text
from simulacra.memory.faculty import CLOCK, memory_store, now
from simulacra.memory.reflect import maybe_reflect, rate_importance
from simulacra.memory.scoring import heuristic_importance
from simulacra.types import PUBLIC_KINDS, Completer, Message, Sampling

log = logging.getLogger(__name__)

MAX_INCOMING = 5  # messages since the em last spoke that one turn remembers
CRITIQUE_PROMPT = (
    "{persona}\n\n{name} is about to say: \"{draft}\"\n\n"
    "Question: is that in character for {name}, as described above? "
    "Answer yes or no, then say why in a few words.\nAnswer:"
)


def public(messages: Iterable[Message]) -> list[Message]:
    """What others may see of a reply: everything but thoughts."""
    return [m for m in messages if m.kind != "thought"]


async def converse(em: Em, history: Sequence[Message], engine: Completer, *, next_author: str | None = None,
                   on_text: Callable[[str], None] | None = None, seed: int | None = None,
                   clock: Callable[[], float] | None = None,
                   on_thought: Callable[[str], None] | None = None) -> Reply:
    """One reply from the em, thinking and remembering as its config says.

    ``on_text`` sees the reply's raw text as it streams; ``on_thought`` each private thought.
    """
    token = CLOCK.set(clock) if clock is not None else None
    try:
        return await _turn(em, list(history), engine, next_author, on_text, seed, clock or now, on_thought)
    finally:
        if token is not None:
            CLOCK.reset(token)


async def _turn(em: Em, history: list[Message], engine: Completer, next_author: str | None, on_text,
                seed: int | None, clock: Callable[[], float], on_thought) -> Reply:
    as_self = next_author in (None, em.name)
    thinking = em.config.thinking
    thoughts: list[Message] = []
    thought = None
    if thinking.enabled and as_self:
        thought = await think(em, history, engine, seed=seed, at=clock())
        if thought is not None:
            thoughts.append(thought)
            if on_thought:
                on_thought(thought.content)
    reply = await respond(em, [*history, *thoughts], engine, next_author=next_author, on_text=on_text, seed=seed,
                          now=clock())
    if thinking.critique and as_self and reply.messages:
        reply, verdict = await critique(em, [*history, *thoughts], engine, reply, seed=seed, at=clock(),
                                        on_text=on_text)
        if verdict is not None:
            thoughts.append(verdict)
            if on_thought:
                on_thought(verdict.content)
    at = clock()
    said = [m if m.timestamp else dataclasses.replace(m, timestamp=at) for m in reply.messages]
    reply.messages = [*thoughts, *said]
    if em.config.memory.enabled and as_self:
        await remember(em, history, said, [thought] if thought else [], engine, at)
    return reply


# --- thinking --------------------------------------------------------------------------------

async def think(em: Em, history: Sequence[Message], engine: Completer, *, seed: int | None = None,
                at: float = 0.0) -> Message | None:
    """One private line: the em's prompt, cued as its thought instead of its message."""
    fmt = em_format(em)
    prompt = await build_prompt(em, history, engine.count_tokens, engine.capabilities.max_context, fmt=fmt)
    if isinstance(fmt, ChatFormat):
        text, stops = prompt.text + "<think>\n", [*prompt.stops, "</think>"]
    else:  # the same cue prompt.py renders past thoughts with: "* mara (thinks) ..."
        text = prompt.text.removesuffix(fmt.prefix(em.name)) + fmt.prefix(em.name, "action") + " (thinks)"
        stops = prompt.stops
    base = seed if seed is not None else em.config.seed
    sampling = em.sampling(max_tokens=em.config.thinking.max_tokens, stop=tuple(stops),
                           seed=None if base is None else base + 104729)
    raw = await first_line(engine, text, sampling)
    content = " ".join(raw.strip().lstrip(":").split())
    if not content:
        log.info("%s had no thought this turn", em.name)
        return None
    return Message(em.name, content, kind="thought", timestamp=at)


async def first_line(engine: Completer, prompt: str, sampling: Sampling) -> str:
    """The first non-blank line of the continuation; generation stops once it is complete.

    Not a "\n" stop sequence: small models often open with a newline, which would end the
    thought before it began."""
    text, stream = "", engine.complete(prompt, sampling)
    try:
        async for chunk in stream:
            text += chunk.text
            lines = text.lstrip().split("\n")
            if len(lines) > 1:
                return lines[0]
    finally:
        close = getattr(stream, "aclose", None)
        if close:
            await close()  # stop the engine now, not when the generator is collected
    return text.strip()


async def critique(em: Em, seen: Sequence[Message], engine: Completer, draft: Reply, *, seed: int | None = None,
                   at: float = 0.0, on_text=None) -> tuple[Reply, Message | None]:
    """Check the draft against the em's persona; rewrite it once if judged out of character.

    Returns the reply to use and, when it was rewritten, the thought that explains why.
    """
    persona = persona_notes(em)
    if not persona:
        return draft, None
    said = " / ".join(m.content for m in draft.messages)
    prompt = CRITIQUE_PROMPT.format(persona=persona, name=em.name, draft=" ".join(said.split()))
    answer = await complete_text(engine, prompt, Sampling(temperature=0.0, max_tokens=40, stop=("\n\n",), seed=0))
    fits, why = parse_verdict(answer)
    if fits is not False:
        return draft, None
    note = Message(em.name, f"That sounded unlike me ({why or 'out of character'}); I'll say it my way.",
                   kind="thought", timestamp=at)
    revised = await respond(em, [*seen, note], engine, on_text=on_text,
                            seed=None if seed is None else seed + 1)
    if not revised.messages:  # a rewrite that fails every muffler keeps the draft
        return draft, None
    revised.rejected = [*draft.rejected, (said, f"out of character: {why or 'critique said no'}"),
                        *revised.rejected]
    revised.attempts += draft.attempts
    revised.usage = {k: draft.usage.get(k, 0) + revised.usage.get(k, 0) for k in {*draft.usage, *revised.usage}}
    return revised, note


def persona_notes(em: Em) -> str:
    from simulacra.faculties.notes import note_text

    return "\n".join(t for f, c in em.faculties if f.name == "notes" and (t := note_text(em, c)))


def parse_verdict(answer: str) -> tuple[bool | None, str]:
    """(True: in character, False: not, None: no clear answer), and the reason given."""
    m = re.match(r"\W*(yes|no)\b\W*(.*)", answer.strip(), re.IGNORECASE | re.DOTALL)
    if not m:
        return None, ""
    return m.group(1).lower() == "yes", " ".join(m.group(2).split()).rstrip(".")


# --- remembering -----------------------------------------------------------------------------

_seen: dict[str, deque] = {}  # store path -> keys of recently remembered incoming messages
_seen_lock = threading.Lock()


async def remember(em: Em, history: Sequence[Message], said: Sequence[Message], thoughts: Sequence[Message],
                   engine: Completer, at: float) -> None:
    """Store this exchange in the em's long-term memory, then reflect if it is time."""
    config = em.config.memory
    store = await asyncio.to_thread(memory_store, em)
    entries = [(text, "observation") for text in _new_incoming(str(store.path), history, em.name)]
    if said:
        entries.append(("I said: " + " / ".join(_own(m) for m in said), "observation"))
    entries += [(f"I thought: {t.content}", "note") for t in thoughts]
    for text, kind in entries:
        importance = await rate_importance(engine, text, em.state) if config.rate_importance \
            else heuristic_importance(text)
        await asyncio.to_thread(store.add, text, kind, importance, at=at)
    await maybe_reflect(store, engine, config.reflect_threshold, name=em.name, rate=config.rate_importance)


def incoming(history: Sequence[Message], name: str) -> list[tuple[int, Message]]:
    """(position, message) for what reached the em since it last spoke, oldest first."""
    out = []
    for i in range(len(history) - 1, -1, -1):
        m = history[i]
        if m.author == name and m.kind in PUBLIC_KINDS:
            break
        if m.kind not in ("thought", "system") and m.content.strip():
            out.append((i, m))
    return out[::-1][-MAX_INCOMING:]


def _new_incoming(store: str, history: Sequence[Message], name: str) -> list[str]:
    texts = []
    with _seen_lock:
        seen = _seen.setdefault(store, deque(maxlen=256))
        for i, m in incoming(history, name):
            key = (i, m.author, m.content, m.timestamp, m.id)
            if key not in seen:
                seen.append(key)
                texts.append(_line(m))
    return texts


def _own(m: Message) -> str:
    content = " ".join(m.content.split())
    return f"* {content}" if m.kind == "action" else content


def _line(m: Message) -> str:
    """A message as the em remembers it: ``tom said: hi``, ``tom waves``, or the notice."""
    content = " ".join(m.content.split())
    if m.author is None:
        return content
    if m.kind == "action":
        return f"{m.author} {content}"
    if m.kind == "message":
        return f"{m.author} said: {content}"
    return f"{m.author}: {content}"
