"""A scripted engine for tests and rehearsal: replies come from a list or a function.

Text streams in word-sized pieces (each counted as one token) so stop sequences, max_tokens and
streaming are exercised exactly as with a real model. Every prompt it was sent is kept in
``prompts`` so tests can assert what reached the model.
"""
from __future__ import annotations

import json
import re
from typing import AsyncIterator, Callable, Mapping, Sequence

from simulacra.types import Capabilities, ChatTurn, Chunk, Sampling, ToolCall

_PIECES = re.compile(r"\s*\S+|\s+")

Script = Sequence[str] | Callable[[str], str]


class FakeBackend:
    def __init__(self, replies: Script = ("Hello.",), max_context: int = 8192, can_chat: bool = True):
        self.replies = replies
        self.prompts: list[str] = []
        self.capabilities = Capabilities(can_chat=can_chat, can_tools=can_chat, max_context=max_context,
                                         can_logprobs=False)

    def count_tokens(self, text: str) -> int:
        return len(_PIECES.findall(text))

    def _reply(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if callable(self.replies):
            return self.replies(prompt)
        i = len(self.prompts) - 1
        return self.replies[min(i, len(self.replies) - 1)] if self.replies else ""

    async def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        async for chunk in self._stream(self._reply(prompt), sampling):
            yield chunk

    async def _stream(self, reply: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        for i, piece in enumerate(_PIECES.findall(reply)):
            if i >= sampling.max_tokens:
                yield Chunk("", finish_reason="length")
                return
            yield Chunk(piece, tokens=(i,))

    async def chat(self, messages: Sequence[ChatTurn], sampling: Sampling,
                   tools: Sequence[Mapping] | None = None) -> AsyncIterator[Chunk]:
        """A reply of the form ``{"tool": NAME, "arguments": {...}}`` becomes a native tool call."""
        prompt = "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in messages)
        reply = self._reply(prompt)
        call = _as_tool_call(reply) if tools else None
        if call:
            yield Chunk("", tool_calls=(call,), finish_reason="tool_calls")
            return
        async for chunk in self._stream(reply, sampling):
            yield chunk


def _as_tool_call(reply: str) -> ToolCall | None:
    try:
        data = json.loads(reply)
    except ValueError:
        return None
    if isinstance(data, dict) and "tool" in data:
        return ToolCall(name=data["tool"], arguments=json.dumps(data.get("arguments", {})), id="call_0")
    return None
