"""Chunks into OpenAI's JSON: server-sent chunk events, or one whole object.

Chat and completions differ only in how a choice looks (``Shape``); a ``Run`` keeps each
choice's text, logprobs and tool calls as chunks arrive, and counts usage honestly: completion
tokens of every sample, prompt tokens once per distinct prompt (``prompt_groups`` samples share
one; an em builds a new prompt per sample, so there it is 1).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

from simulacra.errors import EngineError, SimulacraError
from simulacra.serve.schemas import error_body
from simulacra.types import Chunk, TokenLogprob, ToolCall

log = logging.getLogger(__name__)
DONE = b"data: [DONE]\n\n"


@dataclass
class Choice:
    index: int
    text: list[str] = field(default_factory=list)
    chars: int = 0  # text so far, for text_offset
    logprobs: list[TokenLogprob] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    finish: str | None = None

    def add(self, chunk: Chunk) -> None:
        at = self.chars
        for t in chunk.logprobs:
            self.offsets.append(at)
            at += len(t.token)
        self.text.append(chunk.text)
        self.chars += len(chunk.text)
        self.logprobs += chunk.logprobs
        self.calls += chunk.tool_calls
        if chunk.finish_reason == "error":
            raise EngineError("the engine failed while generating; try again")
        self.finish = chunk.finish_reason or self.finish


class Shape:
    whole_object = chunk_object = id_prefix = ""

    def deltas(self, choice: Choice, chunk: Chunk, first: bool) -> list[dict]:
        raise NotImplementedError

    def whole(self, choice: Choice) -> dict:
        raise NotImplementedError


class ChatShape(Shape):
    whole_object, chunk_object, id_prefix = "chat.completion", "chat.completion.chunk", "chatcmpl-"

    def deltas(self, choice: Choice, chunk: Chunk, first: bool) -> list[dict]:
        i, out = choice.index, []
        if first:
            out.append(_delta(i, {"role": "assistant", "content": ""}))
        if chunk.text or chunk.logprobs:
            out.append(_delta(i, {"content": chunk.text}, _chat_logprobs(chunk.logprobs)))
        if chunk.tool_calls:
            done = len(choice.calls) - len(chunk.tool_calls)
            out.append(_delta(i, {"tool_calls": [dict(_call(c), index=done + k) for k, c in enumerate(chunk.tool_calls)]}))
        if chunk.finish_reason:
            out.append(_delta(i, {}, finish=chunk.finish_reason))
        return out

    def whole(self, choice: Choice) -> dict:
        message: dict = {"role": "assistant", "content": "".join(choice.text)}
        if choice.calls:
            message["tool_calls"] = [_call(c) for c in choice.calls]
            message["content"] = message["content"] or None
        return {"index": choice.index, "message": message, "logprobs": _chat_logprobs(choice.logprobs),
                "finish_reason": choice.finish or "stop"}


class CompletionShape(Shape):
    whole_object = chunk_object = "text_completion"
    id_prefix = "cmpl-"

    def deltas(self, choice: Choice, chunk: Chunk, first: bool) -> list[dict]:
        out = []
        if chunk.text or chunk.logprobs:
            n = len(chunk.logprobs)
            logprobs = _text_logprobs(chunk.logprobs, choice.offsets[len(choice.offsets) - n:])
            out.append({"index": choice.index, "text": chunk.text, "logprobs": logprobs, "finish_reason": None})
        if chunk.finish_reason:
            out.append({"index": choice.index, "text": "", "logprobs": None, "finish_reason": chunk.finish_reason})
        return out

    def whole(self, choice: Choice) -> dict:
        return {"index": choice.index, "text": "".join(choice.text), "finish_reason": choice.finish or "stop",
                "logprobs": _text_logprobs(choice.logprobs, choice.offsets)}


CHAT, COMPLETION = ChatShape(), CompletionShape()


class Run:
    """One response: its id, its choices as they fill, and its usage."""

    def __init__(self, shape: Shape, model: str, prompt_groups: int = 1):
        self.shape, self.model, self.groups = shape, model, max(1, prompt_groups)
        self.id = shape.id_prefix + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.choices: dict[int, Choice] = {}
        self.prompt_tokens = self.completion_tokens = 0

    def take(self, chunk: Chunk) -> list[dict]:
        """Record a chunk; the choice deltas it makes when streamed."""
        first = chunk.index not in self.choices
        choice = self.choices.setdefault(chunk.index, Choice(chunk.index))
        choice.add(chunk)
        if chunk.usage:
            if chunk.index % self.groups == 0:
                self.prompt_tokens += chunk.usage.get("prompt_tokens", 0)
            self.completion_tokens += chunk.usage.get("completion_tokens", 0)
        return self.shape.deltas(choice, chunk, first)

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    async def whole(self, first: Chunk | None, rest: AsyncIterator[Chunk]) -> dict:
        if first is not None:
            self.take(first)
            async for chunk in rest:
                self.take(chunk)
        return {"id": self.id, "object": self.shape.whole_object, "created": self.created, "model": self.model,
                "choices": [self.shape.whole(self.choices[i]) for i in sorted(self.choices)], "usage": self.usage()}

    async def sse(self, first: Chunk | None, rest: AsyncIterator[Chunk], include_usage: bool) -> AsyncIterator[bytes]:
        head = {"id": self.id, "object": self.shape.chunk_object, "created": self.created, "model": self.model}
        if include_usage:
            head["usage"] = None  # OpenAI's shape: null on every chunk but the last
        try:
            if first is not None:
                for delta in self.take(first):
                    yield _event({**head, "choices": [delta]})
                async for chunk in rest:
                    for delta in self.take(chunk):
                        yield _event({**head, "choices": [delta]})
            if include_usage:
                yield _event({**head, "choices": [], "usage": self.usage()})
        except SimulacraError as e:
            yield _event(error_body(str(e), e.status))
        except Exception:  # noqa: BLE001 - the client gets an error event, the log the traceback
            log.exception("generation failed mid-stream")
            yield _event(error_body("internal server error while generating; see the server's log", 500))
        yield DONE


def _event(data: dict) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _delta(index: int, delta: dict, logprobs: dict | None = None, finish: str | None = None) -> dict:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _call(call: ToolCall) -> dict:
    return {"id": call.id or "call_" + uuid.uuid4().hex[:24], "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}


def _chat_logprobs(logprobs) -> dict | None:
    if not logprobs:
        return None
    return {"content": [{"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
                         "top_logprobs": [{"token": a, "logprob": b, "bytes": list(a.encode())} for a, b in t.top]}
                        for t in logprobs]}


def _text_logprobs(logprobs, offsets: list[int]) -> dict | None:
    if not logprobs:
        return None
    return {"tokens": [t.token for t in logprobs], "token_logprobs": [t.logprob for t in logprobs],
            "top_logprobs": [dict(t.top) for t in logprobs], "text_offset": list(offsets)}
