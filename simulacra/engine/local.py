"""The local engine: any white-box ``LanguageModel`` + our sampling, streamed one token a chunk.

One loop: encode the prompt, step the model's logits with its reusable cache, choose a token,
stream it. Stop sequences, ``n`` and usage are the ``Engine`` wrapper's job (engine/base.py).

The model's cache is kept between calls, so a prompt that extends the previous prompt (a chat
that grows by a turn) only runs its new tokens. Two generations at once each get their own cache.

A forward step can take tens of milliseconds on a transformer, which would stall the event loop,
so a step runs in a worker thread (``asyncio.to_thread``, ~0.1 ms of overhead) whenever the
previous one took longer than ``INLINE_STEP_S``; steps quicker than that (a toy n-gram model)
run inline, with the loop still given a turn between tokens.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Mapping, Sequence

import numpy as np

from simulacra.engine.sampling import Sampler, top_logprobs
from simulacra.errors import EngineError, InputError
from simulacra.types import Capabilities, ChatTurn, Chunk, LanguageModel, Sampling, TokenLogprob

INLINE_STEP_S = 0.001
_PROMPT_TAIL = 4  # prompt tokens decoded with the output, so a first token's leading space survives


class LocalBackend:
    def __init__(self, lm: LanguageModel):
        self.lm = lm
        self.capabilities = Capabilities(can_logprobs=True, can_chat=False, can_tools=False, can_seed=True,
                                         max_context=int(lm.max_context), max_stops=None)
        self._idle_cache: Any = None  # the cache of the last finished generation, for reuse

    def count_tokens(self, text: str) -> int:
        return len(self.lm.encode(text))

    async def chat(self, messages: Sequence[ChatTurn], sampling: Sampling,
                   tools: Sequence[Mapping] | None = None) -> AsyncIterator[Chunk]:
        raise EngineError("the local engine completes text only; render the chat with a format (--format irc)")
        yield  # pragma: no cover  (makes this an async generator like complete)

    async def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        ids = list(self.lm.encode(prompt))
        if not ids:
            raise InputError("the prompt is empty; give the model some text to continue")
        if len(ids) >= self.lm.max_context:
            raise InputError(f"the prompt has {len(ids)} tokens, the model's context is "
                             f"{self.lm.max_context}; shorten the prompt")
        sampler = Sampler(sampling, ids)
        text = _Detokenizer(self.lm, ids[-_PROMPT_TAIL:])
        cache, self._idle_cache = self._idle_cache, None
        stepping = False  # a worker thread may still be writing the cache if we are cancelled mid-step
        inline = False
        try:
            for n in range(1, sampling.max_tokens + 1):
                stepping, started = True, time.perf_counter()
                if inline:
                    logits, cache = self.lm.logits(ids, cache)
                    await asyncio.sleep(0)
                else:
                    logits, cache = await asyncio.to_thread(self.lm.logits, ids, cache)
                stepping, inline = False, time.perf_counter() - started < INLINE_STEP_S
                logits = np.asarray(logits)
                token = sampler.choose(logits)
                if token in self.lm.eos_ids:
                    yield Chunk(text.flush(), finish_reason="stop")
                    return
                ids.append(token)
                last = n == sampling.max_tokens or len(ids) >= self.lm.max_context
                piece = text.add(token, final=last)
                logprobs = self._logprobs(logits, token, sampling.logprobs)
                yield Chunk(piece, tokens=(token,), logprobs=logprobs, finish_reason="length" if last else None)
                if last:
                    return
            yield Chunk(text.flush(), finish_reason="length")  # max_tokens <= 0
        finally:
            if not stepping:
                self._idle_cache = cache

    def _logprobs(self, logits: np.ndarray, token: int, k: int | None) -> tuple[TokenLogprob, ...]:
        if k is None:
            return ()
        chosen, best = top_logprobs(logits, token, k)
        decode = self.lm.decode
        return (TokenLogprob(decode([token]), chosen, tuple((decode([i]), lp) for i, lp in best)),)


class _Detokenizer:
    """Turns generated ids into text that never has to be taken back.

    Byte-level BPE splits a character across tokens, and a lone piece decodes to U+FFFD; text is
    emitted only up to a point where the decoding no longer ends in U+FFFD. Decoding restarts
    from the last emitted point (with the tokens before it as context), so each step decodes a
    few tokens, not the whole output.
    """

    def __init__(self, lm: LanguageModel, context: Sequence[int]):
        self.decode = lm.decode
        self.ids: list[int] = list(context)
        self.prefix = 0  # self.ids[prefix:read] is context whose text was already accounted for
        self.read = len(self.ids)

    def add(self, token: int, final: bool = False) -> str:
        self.ids.append(token)
        if final:
            return self.flush()
        before = self.decode(self.ids[self.prefix:self.read])
        after = self.decode(self.ids[self.prefix:])
        if after.endswith("\ufffd") or len(after) <= len(before):
            return ""  # an unfinished character (or nothing new yet): hold it back
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before):]

    def flush(self) -> str:
        """Everything held back, unfinished characters included (the output is over)."""
        before = self.decode(self.ids[self.prefix:self.read])
        after = self.decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):]
