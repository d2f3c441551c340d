"""Everything engines share, written once above them (httpx-transport style).

A backend implements ``complete`` (and ``chat`` if it can) and declares its capabilities; it may
honour stops, ``max_tokens`` and ``n`` natively or not. ``Engine`` wraps any backend and
guarantees them: stop sequences held back across chunks, ``max_tokens`` by token count, ``n``
samples run one after another with consecutive seeds, and ``usage`` on each sample's last chunk.
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import AsyncIterator, Callable, Mapping, Sequence

from simulacra.types import Capabilities, ChatTurn, Chunk, Completer, Sampling
from simulacra.engine.stops import StopMatcher


class Engine:
    def __init__(self, backend: Completer, name: str = ""):
        self.backend = backend
        self.name = name or type(backend).__name__
        self.capabilities: Capabilities = backend.capabilities

    def __repr__(self) -> str:
        return f"Engine({self.name})"

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    async def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        async for chunk in self._samples(lambda s: self.backend.complete(prompt, s), sampling,
                                         prompt_tokens=lambda: self.count_tokens(prompt)):
            yield chunk

    async def chat(
        self, messages: Sequence[ChatTurn], sampling: Sampling, tools: Sequence[Mapping] | None = None
    ) -> AsyncIterator[Chunk]:
        if not self.capabilities.can_chat:
            from simulacra.errors import EngineError

            raise EngineError(f"{self.name} cannot chat; use a chat model or a completion format (--format irc)")
        count = lambda: sum(self.count_tokens(str(m.get("content") or "")) for m in messages)
        async for chunk in self._samples(lambda s: self.backend.chat(messages, s, tools), sampling, count):
            yield chunk

    async def aclose(self) -> None:
        close = getattr(self.backend, "aclose", None)
        if close:
            await close()

    async def _samples(self, start: Callable[[Sampling], AsyncIterator[Chunk]], sampling: Sampling,
                       prompt_tokens: Callable[[], int]) -> AsyncIterator[Chunk]:
        for i in range(max(1, sampling.n)):
            seed = None if sampling.seed is None else sampling.seed + i
            one = dataclasses.replace(sampling, n=1, seed=seed, stop=self._native_stops(sampling.stop))
            async for chunk in guard(start(one), sampling, prompt_tokens, self.count_tokens):
                yield dataclasses.replace(chunk, index=i)

    def _native_stops(self, stops: tuple[str, ...]) -> tuple[str, ...]:
        # Pass the backend what it can take natively (it saves generating past them);
        # the guard enforces every stop regardless.
        limit = self.capabilities.max_stops
        return stops if limit is None else stops[:limit]


async def guard(stream: AsyncIterator[Chunk], sampling: Sampling, prompt_tokens: Callable[[], int],
                count_tokens: Callable[[str], int]) -> AsyncIterator[Chunk]:
    """Enforce stops and max_tokens on one sample's stream; end it with finish_reason and usage."""
    matcher = StopMatcher(sampling.stop)
    pending: list[Chunk] = []  # chunks whose text the matcher still holds, in part or whole
    produced, finish, backend_usage, text = 0, None, None, []
    try:
        async for chunk in stream:
            produced += len(chunk.tokens)
            text.append(chunk.text)
            backend_usage = chunk.usage or backend_usage
            if chunk.tool_calls:
                yield dataclasses.replace(chunk, usage=None, finish_reason=None)
            pending.append(chunk)
            emitted = matcher.feed(chunk.text)
            for piece in _take(pending, len(emitted)):
                yield piece
            if matcher.stopped:
                finish = "stop"
                break
            if chunk.finish_reason:
                finish = chunk.finish_reason
                break
            if chunk.tokens and produced >= sampling.max_tokens:
                finish = "length"
                break
    finally:
        await _close(stream)
    if not matcher.stopped:
        rest = matcher.flush()
        for piece in _take(pending, len(rest)):
            yield piece
    usage = dict(backend_usage or {})
    if "prompt_tokens" not in usage:  # counting may cost a round trip to a remote /tokenize
        usage["prompt_tokens"] = prompt_tokens()
    if not backend_usage or matcher.stopped:  # backends without token ids: count what they wrote
        usage["completion_tokens"] = produced or count_tokens("".join(text))
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    yield Chunk("", finish_reason=finish or "stop", usage=usage)


def _take(pending: list[Chunk], n_chars: int) -> list[Chunk]:
    """Pop chunks covering the first n_chars of pending text; split the last one if needed.

    Token ids and logprobs travel with the part of a chunk's text that is emitted last, so a
    chunk cut by a stop sequence drops them along with its stopped text.
    """
    out: list[Chunk] = []
    while n_chars > 0 and pending:
        head = pending[0]
        if len(head.text) <= n_chars:
            out.append(dataclasses.replace(pending.pop(0), finish_reason=None, usage=None, tool_calls=()))
            n_chars -= len(head.text)
        else:
            out.append(Chunk(head.text[:n_chars]))
            pending[0] = dataclasses.replace(head, text=head.text[n_chars:])
            n_chars = 0
    while pending and not pending[0].text:  # chunks with only tokens or logprobs pass through
        empty = pending.pop(0)
        if empty.tokens or empty.logprobs:  # a backend's bare end marker carries nothing to pass on
            out.append(dataclasses.replace(empty, finish_reason=None, usage=None, tool_calls=()))
    return out


async def _close(stream: AsyncIterator) -> None:
    close = getattr(stream, "aclose", None)
    if close:
        await close()


async def complete_text(engine: Completer, prompt: str, sampling: Sampling) -> str:
    """The whole text of the first sample."""
    return "".join([c.text async for c in engine.complete(prompt, sampling) if c.index == 0])


def run(coro):
    """The thin sync wrapper for scripts and notebooks: ``run(complete_text(engine, ...))``."""
    return asyncio.run(coro)
