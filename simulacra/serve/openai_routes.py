"""The OpenAI-compatible routes: /v1/models, /v1/chat/completions, /v1/completions.

Every generation is a stream of Chunks, whatever produced it:

- an em: the request's messages become its history (``name`` or role picks the speaker: user →
  "user" or its name, assistant → the em), ``converse`` writes the reply, and only its public
  messages leave, joined with newlines (thoughts never do; the reply is sent whole once
  mufflers have passed it, since a rejected draft must not reach the client);
- a model on /v1/chat/completions: ``engine.chat`` if it can chat, else the model's chat
  template (or the IRC format when it has none) rendered into a completion prompt;
- a model on /v1/completions: ``engine.complete`` for each prompt.

The stream is then shaped as OpenAI's JSON (``wire``): SSE chunks or one whole object. The first
chunk is awaited before the response starts so that failures before any output keep their
HTTP status; a failure after that becomes an error event, then ``[DONE]``.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from typing import AsyncIterator, Sequence

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from simulacra.chat import IRC, completion_prompt, from_chat_turns
from simulacra.errors import InputError, ModelNotFound, SimulacraError
from simulacra.serve import wire
from simulacra.serve.queue import QueueFull
from simulacra.serve.schemas import (ChatCompletion, ChatRequest, Completion, CompletionRequest, ModelCard,
                                     ModelList, documented, error_body)
from simulacra.types import Chunk, Message, Sampling

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/v1/models", response_model=ModelList, responses=documented(None))
async def list_models(request: Request) -> dict:
    return {"object": "list", "data": request.app.state.models.cards()}


@router.get("/v1/models/{model:path}", response_model=ModelCard, responses=documented(None))
async def get_model(model: str, request: Request) -> dict:
    for card in request.app.state.models.cards():
        if card["id"] == model:
            return card
    request.app.state.models.find(model)  # raises with close matches
    return {"id": model, "object": "model", "created": request.app.state.models.created, "owned_by": "simulacra"}


@router.post("/v1/chat/completions", responses=documented(ChatCompletion, stream=True))
async def chat_completions(body: ChatRequest, request: Request):
    return await _serve(request, body, wire.CHAT)


@router.post("/v1/completions", responses=documented(Completion, stream=True))
async def completions(body: CompletionRequest, request: Request):
    return await _serve(request, body, wire.COMPLETION)


async def _serve(request: Request, body: ChatRequest | CompletionRequest, shape: "wire.Shape"):
    models = request.app.state.models
    em, spec = models.find(body.model)
    if isinstance(body, CompletionRequest) and body.suffix:
        raise InputError("suffix (fill-in-the-middle) is not supported; leave it out")
    engine = await models.engine(spec)
    _check_capabilities(body, em, engine)
    chunks = _generate(body, em, engine, spec)
    slot = await models.queue(spec).acquire(getattr(request.state, "client_key", ""))
    try:
        first = await anext(chunks, None)
    except BaseException:
        slot.release()
        raise
    run = wire.Run(shape, body.model, prompt_groups=1 if em else body.n)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventStream(run.sse(first, chunks, include_usage), on_close=slot.release, chunks=chunks)
    try:
        return JSONResponse(await run.whole(first, chunks))
    finally:
        try:
            await chunks.aclose()  # the engine stops before the next request gets the slot
        finally:
            slot.release()


def _check_capabilities(body, em, engine) -> None:
    caps, name = engine.capabilities, body.model
    if body.logprob_count() is not None and (em is not None or not caps.can_logprobs):
        raise InputError(f"{name} does not give logprobs; leave out logprobs" +
                         (" (an em's reply is parsed and filtered text, not raw tokens)" if em else ""))
    tools = getattr(body, "tools", None)
    if tools and em is None and not (caps.can_chat and caps.can_tools):
        raise InputError(f"{name} cannot call tools; leave out tools or use a model with a tool-calling template")
    if isinstance(body, CompletionRequest) and body.best_of not in (None, body.n):
        raise InputError("best_of is not supported (every sample is returned); use n")


# --- generation: everything becomes Chunks ----------------------------------------------------------

def _generate(body, em, engine, spec: str) -> AsyncIterator[Chunk]:
    if isinstance(body, ChatRequest):
        turns = [m.turn() for m in body.messages]
        if em is not None:
            return _em_chunks(em, engine, from_chat_turns(turns, em.name, "user"), body)
        sampling = _sampling(body, engine)
        if engine.capabilities.can_chat:
            tools = body.tools if body.tool_choice != "none" else None
            return engine.chat(turns, sampling, tools or None)
        return _chat_by_completion(engine, spec, turns, sampling)
    if em is not None:
        return _em_chunks(em, engine, _transcript(em, body.prompt), body)
    return _completions(engine, body.prompts(), _sampling(body, engine), body.echo)


def _sampling(body, engine) -> Sampling:
    """OpenAI's defaults (temperature 1, top_p 1, no extra samplers); max_tokens: up to the context."""
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return Sampling(temperature=pick(body.temperature, 1.0), top_p=pick(body.top_p, 1.0), top_k=body.top_k or 0,
                    min_p=body.min_p or 0.0, repetition_penalty=pick(body.repetition_penalty, 1.0),
                    frequency_penalty=body.frequency_penalty or 0.0, presence_penalty=body.presence_penalty or 0.0,
                    logit_bias={int(k): v for k, v in (body.logit_bias or {}).items()}, stop=body.stops(),
                    max_tokens=_max_tokens(body, engine), seed=body.seed, n=body.n,
                    logprobs=body.logprob_count())


def _max_tokens(body, engine) -> int:
    """What was asked for, up to the context (more could never be produced)."""
    return min(body.token_limit() or engine.capabilities.max_context, engine.capabilities.max_context)


async def _completions(engine, prompts: Sequence[str], sampling: Sampling, echo: bool) -> AsyncIterator[Chunk]:
    """Each prompt's n samples; choice index = prompt number * n + sample number."""
    for p, prompt in enumerate(prompts):
        echoed: set[int] = set()
        async for chunk in engine.complete(prompt, sampling):
            index = p * sampling.n + chunk.index
            if echo and chunk.index not in echoed:
                echoed.add(chunk.index)
                yield Chunk(prompt, index=index)
            yield chunk if index == chunk.index else dataclasses.replace(chunk, index=index)


async def _chat_by_completion(engine, spec: str, turns: list[dict], sampling: Sampling) -> AsyncIterator[Chunk]:
    """Chat on a completion-only engine: the model's chat template if it ships one, else IRC lines."""
    template = _chat_template(spec)
    if template is not None:
        prompt = template.render(turns, add_generation_prompt=True)
        if template.bos_token and prompt.startswith(template.bos_token):
            prompt = prompt[len(template.bos_token):]  # the engine adds its own
        from simulacra.chat import ChatFormat

        stops = ChatFormat(template).stops("assistant", ["user", "system"])
    else:
        prompt, stops = completion_prompt(from_chat_turns(turns, "assistant", "user"), "assistant", IRC())
    sampling = dataclasses.replace(sampling, stop=tuple(dict.fromkeys((*sampling.stop, *stops))))
    started: set[int] = set()
    async for chunk in engine.complete(prompt, sampling):
        if template is None and chunk.index not in started and chunk.text:  # the space after "<assistant>"
            chunk = dataclasses.replace(chunk, text=chunk.text.lstrip())
            if chunk.text:
                started.add(chunk.index)
        yield chunk


@functools.lru_cache(maxsize=32)
def _chat_template(spec: str):
    from simulacra.chat import ChatTemplate
    from simulacra.engine.catalogue import resolve
    from simulacra.engine.spec import parse_spec

    kind, rest = parse_spec(spec)
    if kind not in ("llama", "torch"):
        return None
    try:
        return ChatTemplate.load(resolve(rest, folders_ok=True))
    except SimulacraError:
        return None


def _transcript(em, prompt: str | list[str]) -> list[Message]:
    """/v1/completions on an em: the prompt read as a transcript in the em's format (``<bob> hi``
    lines for IRC); text that is not one is a single message from "user"."""
    text = prompt if isinstance(prompt, str) else "\n".join(prompt)
    if em.config.message_history_format != "chat":
        from simulacra.chat import get_format

        parsed = get_format(em.config.message_history_format).parse(text)
        if parsed:
            return parsed
    return [Message("user", text)] if text.strip() else []


async def _em_chunks(em, engine, history: list[Message], body) -> AsyncIterator[Chunk]:
    from simulacra.agents import converse as conversing  # looked up per call: tests replace converse

    tuned = _Tuned(engine, body)
    for i in range(body.n):
        seed = None if body.seed is None else body.seed + i
        reply = await conversing.converse(em, history, tuned, seed=seed)  # thinks and remembers per config
        shown = [m for m in reply.messages if m.public]  # thoughts (and notices) stay inside
        text = "\n".join(m.content if m.kind == "message" else f"* {m.author} {m.content}" for m in shown)
        if text:
            yield Chunk(text, index=i)
        usage = dict(reply.usage or {})
        usage.setdefault("prompt_tokens", 0)
        usage.setdefault("completion_tokens", 0)
        finish = "content_filter" if not shown and reply.rejected else "stop"
        yield Chunk("", finish_reason=finish, usage=usage, index=i)


class _Tuned:
    """An em's engine seen through the request: ``respond`` builds its sampling from the em's
    config; settings the client sent win, and the client's stops join the em's."""

    _FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty",
               "presence_penalty")

    def __init__(self, engine, body):
        self.engine, self.capabilities, self.count_tokens = engine, engine.capabilities, engine.count_tokens
        self.changes = {f: getattr(body, f) for f in self._FIELDS if getattr(body, f) is not None}
        if body.logit_bias:
            self.changes["logit_bias"] = {int(k): v for k, v in body.logit_bias.items()}
        if body.token_limit():
            self.changes["max_tokens"] = _max_tokens(body, engine)
        self.stops = body.stops()

    def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        return self.engine.complete(prompt, self._tune(sampling))

    def chat(self, messages, sampling: Sampling, tools=None) -> AsyncIterator[Chunk]:
        return self.engine.chat(messages, self._tune(sampling), tools)

    def _tune(self, sampling: Sampling) -> Sampling:
        stop = tuple(dict.fromkeys((*sampling.stop, *self.stops)))
        return dataclasses.replace(sampling, **self.changes, stop=stop)


# --- responses and errors ---------------------------------------------------------------------------

class EventStream(StreamingResponse):
    """SSE whose slot is released however the stream ends: done, failed, or the client gone
    (even before the first byte was sent, when the body iterator never started)."""

    media_type = "text/event-stream"

    def __init__(self, content, on_close, chunks):
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._on_close, self._chunks = on_close, chunks

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self.body_iterator.aclose()
                await self._chunks.aclose()
            finally:
                self._on_close()


def install_error_handlers(app) -> None:
    """Every error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    @app.exception_handler(SimulacraError)
    async def simulacra_error(request, exc: SimulacraError):
        code = {ModelNotFound: "model_not_found", QueueFull: "rate_limit_exceeded"}.get(type(exc))
        headers = {"Retry-After": "1"} if isinstance(exc, QueueFull) else None
        param = "model" if isinstance(exc, ModelNotFound) else None
        if exc.status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        return JSONResponse(error_body(str(exc), exc.status, param=param, code=code), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        message, param = _describe(exc.errors())
        return JSONResponse(error_body(message, 400, param=param, code="invalid_request"), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        import http

        text = str(exc.detail)
        if text == http.HTTPStatus(exc.status_code).phrase:  # starlette's bare default: say more
            text = {404: f"no route {request.url.path}",
                    405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, text)
        code = {413: "request_too_large", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(text, exc.status_code, code=code), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal server error; see the server's log", 500), 500)


def _describe(errors: Sequence[dict]) -> tuple[str, str | None]:
    if not errors:
        return "invalid request", None
    err = errors[0]
    if err.get("type") == "json_invalid":
        return f"the body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}", None
    path, tag, _ = _split(err.get("loc", ()))
    if tag is not None:  # a union (str | list[str]): a branch that got the right type says most
        union = [e for e in errors if _split(e.get("loc", ()))[0] == path]
        specific = next((e for e in union if not e.get("type", "").endswith("_type")
                         or len(_split(e.get("loc", ()))[2]) > len(path)), None)
        if specific is not None:
            err, tag = specific, None
            path = _split(err.get("loc", ()))[2]
    param = ".".join(path) or None
    where = f"{param}: " if param else "the body: "
    if err.get("type") == "missing":
        return f"{where}is required", param
    if tag is not None:
        tags = dict.fromkeys(_TAGS.get(t, t) for e in union if (t := _split(e.get("loc", ()))[1]))
        return f"{where}expected {' or '.join(tags)} (got {_short(err.get('input'))})", param
    if not path and isinstance(err.get("input"), (bytes, str)):
        return "the body must be a JSON object (send Content-Type: application/json)", None
    return f"{where}{err.get('msg', 'invalid')} (got {_short(err.get('input'))})", param


_TAGS = {"str": "a string", "constrained-str": "a string", "list[constrained-str]": "a list of strings",
         "list[str]": "a list of strings", "int": "an integer", "float": "a number", "bool": "a boolean",
         "none": "null", "list[TextPart]": "a list of content parts", "dict[str,any]": "an object"}


def _split(loc) -> tuple[list[str], str | None, list[str]]:
    """A pydantic location as (field path up to a union branch, that branch or None, the whole
    field path without branch names)."""
    path: list[str] = []
    head, tag = None, None
    for part in (str(p) for p in loc):
        if part == "body" and not path and head is None:
            continue
        if part.isdigit() or (part.isidentifier() and part not in _TAGS):
            path.append(part)
        elif tag is None:
            head, tag = list(path), part
    return (path if head is None else head), tag, path


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
