"""Responding: prompt → engine → parse → this em's messages only → mufflers → retry.

    history ─ build_prompt ─ engine.complete ─ fmt.parse_reply ─ mufflers ─ accepted messages

Stop sequences come from every other recent speaker's prefix (no cap: the Engine enforces what
a backend can't take natively). A rejected draft is retried with a new seed up to max_retries.
"""
from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from simulacra.chat import parse_reply
from simulacra.ems.em import Em
from simulacra.ems.mufflers import parse_mufflers
from simulacra.ems.prompt import Prompt, build_prompt, em_format
from simulacra.types import Completer, Message

log = logging.getLogger(__name__)


@dataclass
class Reply:
    messages: list[Message]
    prompt: Prompt
    attempts: int = 1
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (draft, why)
    usage: dict = field(default_factory=dict)


async def respond(em: Em, history: Sequence[Message], engine: Completer, *, next_author: str | None = None,
                  on_text: Callable[[str], None] | None = None, seed: int | None = None,
                  now: float | None = None) -> Reply:
    """One reply from the em. ``on_text`` sees raw text as it streams (for live display)."""
    fmt = em_format(em)
    prompt = await build_prompt(em, history, engine.count_tokens, engine.capabilities.max_context,
                                next_author=next_author, fmt=fmt, now=now)
    mufflers = parse_mufflers(em.config.mufflers, em.folder / "config.yaml")
    base_seed = seed if seed is not None else em.config.seed
    if base_seed is None:
        base_seed = random.randrange(2**31)
    reply = Reply([], prompt)
    for attempt in range(em.config.max_retries + 1):
        reply.attempts = attempt + 1
        sampling = em.sampling(stop=tuple(prompt.stops), seed=base_seed + 7919 * attempt)
        text, usage = "", {}
        async for chunk in engine.complete(prompt.text, sampling):
            text += chunk.text
            if on_text and chunk.text:
                on_text(chunk.text)
            usage = dict(chunk.usage or usage)
        reply.usage = {k: reply.usage.get(k, 0) + v for k, v in usage.items()}
        for message in parse_reply(prompt.next_author, text, fmt):
            why = "written as someone else" if message.author != prompt.next_author else \
                next((r for m in mufflers if (r := m(message, prompt.text))), None)
            if why:
                reply.rejected.append((message.content, why))
                log.info("muffled %r: %s", message.content[:60], why)
            else:
                reply.messages.append(dataclasses.replace(message, author=prompt.next_author))
        if reply.messages:
            break
    return reply
