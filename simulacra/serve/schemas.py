"""The OpenAI wire shapes: request bodies (validated) and responses (documented in /openapi.json).

Requests are strict about types (``"0.5"`` is not a temperature) and lenient about extra fields
(clients send ``user``, ``store``, ``metadata``... which change nothing here). llama.cpp's own
sampling extensions (top_k, min_p, repeat_penalty) are accepted too. Responses are built as
plain dicts on the hot path; the models below exist so the schema says what those dicts hold,
and the tests check that they do.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

MAX_N = 16
MAX_STOPS = 16


def _whole(value: Any) -> Any:
    # JSON has one number type: 10.0 is an integer to JSON Schema (and to OpenAI), "10" is not
    return int(value) if isinstance(value, float) and value.is_integer() else value


def Int(**bounds: int) -> Any:
    """An integer field type; bounds sit inside the type so the schema shows them under a union."""
    return Annotated[int, Field(**bounds), BeforeValidator(_whole)]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: "StreamOptions | None" = None
    n: Int(ge=1, le=MAX_N) = 1
    max_tokens: Int(ge=1) | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: Annotated[str, Field(min_length=1)] | Annotated[list[Annotated[str, Field(min_length=1)]],
                                                          Field(max_length=MAX_STOPS)] | None = None
    seed: Int(ge=-2**53, le=2**53) | None = None  # integers JSON carries exactly everywhere
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[Annotated[str, Field(pattern=r"^[0-9]+$")], Annotated[float, Field(ge=-100, le=100)]] | None = None
    user: str | None = None
    # llama.cpp's extensions, under its names
    top_k: Int(ge=0) | None = None
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, validation_alias=AliasChoices(
        "repetition_penalty", "repeat_penalty"))

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    include_usage: bool = False


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    # OpenAI's rule for participant names; it also keeps names writable in transcript formats
    # (\s spelt out: Python's and JSON Schema's regexes disagree on a few spaces)
    name: str | None = Field(None, max_length=64, pattern=r"^[^\s\x1c-\x1f\x85\ufeff<|\\/>]+$")
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def turn(self) -> dict[str, Any]:
        """As a plain chat turn (simulacra.types.ChatTurn): text parts joined, Nones dropped."""
        content = self.content
        if isinstance(content, list):
            content = "\n".join(p.text or "" for p in content if p.type == "text")
        out: dict[str, Any] = {"role": self.role, "content": content}
        for key in ("name", "tool_calls", "tool_call_id"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class ChatRequest(Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Int(ge=1) | None = None
    logprobs: bool | None = None
    top_logprobs: Int(ge=0, le=20) | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def logprob_count(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(Request):
    prompt: str | Annotated[list[str], Field(min_length=1)]
    logprobs: Int(ge=0, le=20) | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: Int(ge=1, le=MAX_N) | None = None

    def token_limit(self) -> int | None:
        return self.max_tokens

    def logprob_count(self) -> int | None:
        return self.logprobs

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


# --- responses (documentation and tests; the server builds dicts) ---------------------------------

class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a field the docs do not name is a bug


class Usage(Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(Out):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(Out):
    content: list[TokenLogprob] | None


class ToolCallFunction(Out):
    name: str
    arguments: str


class ToolCallOut(Out):
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class AssistantMessage(Out):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCallOut] | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class ChatChoice(Out):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None
    finish_reason: FinishReason


class ChatCompletion(Out):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionLogprobs(Out):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(Out):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: FinishReason


class Completion(Out):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ChatDelta(Out):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChunkChoice(Out):
    index: int
    delta: ChatDelta
    logprobs: ChatLogprobs | None
    finish_reason: FinishReason | None


class ChatCompletionChunk(Out):
    """One SSE event of a streamed chat completion; with include_usage, a last one with no choices."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChunkChoice(Out):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: FinishReason | None


class CompletionChunk(Out):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None


class ModelCard(Out):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Out):
    object: Literal["list"]
    data: list[ModelCard]


class ErrorDetail(Out):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(Out):
    error: ErrorDetail


def error_body(message: str, status: int, *, param: str | None = None, code: str | None = None) -> dict:
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


SSE_EVENT = {  # one server-sent event (OpenAPI 3.1: a text/event-stream schema describes each event)
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string", "description": "a chunk (ChatCompletionChunk or CompletionChunk) "
                                                             "or an ErrorResponse as JSON; the last event is [DONE]"},
                   "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}}}
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 500, 502, 503)}


def documented(success: type[BaseModel] | None, stream: bool = False) -> dict[Union[int, str], dict]:
    """The ``responses`` of a route: the success shape (and SSE when it streams) and every error."""
    out: dict[Union[int, str], dict] = dict(_ERRORS)
    if success is not None:
        out[200] = {"model": success}
        if stream:
            out[200]["content"] = {"text/event-stream": {"schema": SSE_EVENT}}
    return out


Request.model_rebuild()
ChatRequest.model_rebuild()
CompletionRequest.model_rebuild()
