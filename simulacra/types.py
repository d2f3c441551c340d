"""The contract every layer speaks (DESIGN.md §2). Imports nothing from the package."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping, Protocol, Sequence, runtime_checkable

# What others can see vs. what only the author sees vs. what the world reports.
PUBLIC_KINDS = frozenset({"message", "action"})
KINDS = PUBLIC_KINDS | {"thought", "observation", "system"}


@dataclass(frozen=True)
class Message:
    author: str | None
    content: str
    kind: str = "message"
    timestamp: float = 0.0
    id: str | None = None
    reply_to: str | None = None

    @property
    def public(self) -> bool:
        return self.kind in PUBLIC_KINDS


@dataclass(frozen=True)
class Sampling:
    """How to turn next-token probabilities into text. One object travels from config to engine.

    Neutral values switch a setting off: temperature 0 is greedy, top_k 0 / top_p 1 / min_p 0
    keep every token, penalties 1.0 (repetition) and 0.0 (frequency, presence) change nothing.
    ``logprobs``: None for none, 0 for the chosen token's logprob, k for the top k as well.
    """

    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    stop: tuple[str, ...] = ()
    max_tokens: int = 256
    seed: int | None = None
    n: int = 1
    logprobs: int | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, as the model wrote it: validation happens above the engine
    id: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A piece of streamed output. ``index`` says which of the ``n`` samples it belongs to.

    ``finish_reason`` is set on the last chunk of a sample: "stop" (a stop sequence or the
    model's end token), "length" (max_tokens), "tool_calls", or "error".
    """

    text: str
    tokens: tuple[int, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: str | None = None
    index: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Mapping[str, int] | None = None  # on the last chunk: prompt_tokens, completion_tokens


# A chat turn in the OpenAI shape: {"role": "system"|"user"|"assistant"|"tool", "content": str,
# optionally "name", "tool_calls", "tool_call_id"}. Plain dicts keep chat servers one hop away.
ChatTurn = Mapping[str, Any]


@dataclass(frozen=True)
class Capabilities:
    """What an engine declares it can do. Never guessed from a model's name."""

    can_logprobs: bool = False
    can_chat: bool = False
    can_tools: bool = False
    can_seed: bool = True
    max_context: int = 2048
    max_stops: int | None = None  # None: no limit; the rest are enforced client-side anyway


@runtime_checkable
class Completer(Protocol):
    """Anything that turns a prompt into streamed text."""

    capabilities: Capabilities

    def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]: ...

    def chat(
        self, messages: Sequence[ChatTurn], sampling: Sampling, tools: Sequence[Mapping] | None = None
    ) -> AsyncIterator[Chunk]: ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class LanguageModel(Protocol):
    """A white-box model: tokens in, next-token logits out, with a reusable cache.

    ``logits(ids, cache)`` returns (logits over the vocabulary for the token after ``ids``, a
    cache for ``ids``). Passing back the cache from a prefix of ``ids`` lets the model compute
    only the new tokens; ``None`` starts fresh.
    """

    vocab_size: int
    max_context: int
    eos_ids: frozenset[int]

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def logits(self, ids: Sequence[int], cache: Any = None) -> tuple[Any, Any]: ...
