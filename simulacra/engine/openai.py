"""The remote engine: any OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio, a hosted API).

It speaks ``/completions`` and ``/chat/completions`` with streaming (server-sent events), asks for
usage with ``stream_options.include_usage``, and retries 429/5xx answers and connection failures
with exponential backoff and jitter, honouring ``Retry-After``. The wire format (request bodies
from ``Sampling``, stream events back to ``Chunk``) is shared with the in-process llama.cpp
backend, whose server internals take and return the same OpenAI-shaped JSON.

Sampling settings outside OpenAI's API (top_k, min_p, repetition penalty) are sent when they are
not neutral, and always to a llama.cpp server (whose own defaults, top_k 40 and min_p 0.05, are
not neutral). max_context comes from the server's ``/models`` when it says (llama.cpp, vLLM and
others do), else ``DEFAULT_CONTEXT``. count_tokens asks the server's ``/tokenize`` (llama.cpp,
vLLM) and falls back to a characters/4 estimate.
"""
from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import math
import os
import random
import time
from typing import Any, AsyncIterator, Mapping, Sequence

import httpx

from simulacra.errors import EngineError, EngineUnavailable
from simulacra.types import Capabilities, ChatTurn, Chunk, Sampling, TokenLogprob, ToolCall

DEFAULT_CONTEXT = 8192  # when the server does not say; most current models have at least this
MAX_STOPS = 4  # OpenAI's limit; Engine enforces the rest client-side
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


# --- wire format: Sampling -> request body, stream events -> Chunks -------------------------------

def request_body(sampling: Sampling, *, chat: bool, native: bool = False) -> dict[str, Any]:
    """OpenAI request fields for ``sampling``. ``native``: a llama.cpp server, which takes extra
    samplers under its own names and whose defaults for them are not neutral, so send them all."""
    s = sampling
    body: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
                            "frequency_penalty": s.frequency_penalty, "presence_penalty": s.presence_penalty}
    if s.stop:
        body["stop"] = list(s.stop)
    if s.seed is not None:
        body["seed"] = s.seed
    if s.logit_bias:
        body["logit_bias"] = {str(t): _bias(b, native) for t, b in s.logit_bias.items()}
    if native or s.top_k:
        body["top_k"] = s.top_k
    if native or s.min_p:
        body["min_p"] = s.min_p
    if native or s.repetition_penalty != 1.0:
        body["repeat_penalty"] = body["repetition_penalty"] = s.repetition_penalty  # llama.cpp, vLLM
    if s.logprobs is not None:
        k = max(1, s.logprobs)  # 0 means the chosen token only, but some servers then send none
        body.update({"logprobs": True, "top_logprobs": k} if chat else {"logprobs": k})
    return body


def _bias(bias: float, native: bool) -> float | bool:
    if native:
        return False if bias == -math.inf else bias  # llama.cpp bans a token with false
    return max(-100.0, min(100.0, bias))  # OpenAI's range; -100 bans


def wire_messages(messages: Sequence[ChatTurn]) -> list[dict]:
    """Chat turns as JSON objects; ToolCall objects in ``tool_calls`` become OpenAI dicts."""
    out = []
    for m in messages:
        turn = dict(m)
        if turn.get("tool_calls"):
            turn["tool_calls"] = [c if isinstance(c, Mapping) else
                                  {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                  for c in turn["tool_calls"]]
        out.append(turn)
    return out


class StreamDecoder:
    """Turns stream events of either endpoint into Chunks.

    finish_reason and usage arrive in separate events near the end, and tool calls arrive in
    fragments, so they are held and come out together on the final chunk from ``end()``.
    """

    def __init__(self, logprobs: int | None):
        self.logprobs = logprobs
        self.finish: str | None = None
        self.usage: dict[str, int] | None = None
        self.calls: dict[int, dict] = {}

    def feed(self, event: Mapping) -> Chunk | None:
        if event.get("error"):
            raise EngineError(f"the engine failed: {error_message(event)}")
        if event.get("usage"):
            u = event["usage"]
            self.usage = {"prompt_tokens": u.get("prompt_tokens", 0), "completion_tokens": u.get("completion_tokens", 0)}
        for choice in event.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            self.finish = choice.get("finish_reason") or self.finish
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or ():
                self._add_call(call)
            text = choice.get("text") if "delta" not in choice else delta.get("content")
            logprobs = self._logprobs(choice.get("logprobs"))
            tokens = tuple(t["id"] for t in (choice.get("logprobs") or {}).get("content") or () if "id" in t)
            tokens = tokens or tuple((event.get("__verbose") or {}).get("tokens") or ())  # llama.cpp extension
            if text or tokens or logprobs:
                return Chunk(text or "", tokens=tokens, logprobs=logprobs if self.logprobs is not None else ())
        return None

    def end(self) -> Chunk:
        calls = tuple(ToolCall(name=c["name"], arguments=c["arguments"] or "{}", id=c["id"])
                      for _, c in sorted(self.calls.items()))
        finish = {"function_call": "tool_calls"}.get(self.finish, self.finish)
        return Chunk("", finish_reason=finish or ("tool_calls" if calls else "stop"), tool_calls=calls,
                     usage=self.usage)

    def _add_call(self, call: Mapping) -> None:
        slot = self.calls.setdefault(call.get("index", len(self.calls)), {"name": "", "arguments": "", "id": None})
        slot["id"] = call.get("id") or slot["id"]
        fn = call.get("function") or {}
        slot["name"] += fn.get("name") or ""
        slot["arguments"] += fn.get("arguments") or ""

    def _logprobs(self, data: Mapping | None) -> tuple[TokenLogprob, ...]:
        if not data:
            return ()
        k = self.logprobs or 0
        if data.get("content") is not None:  # chat shape (llama.cpp uses it for completions too)
            return tuple(TokenLogprob(t.get("token", ""), float(t["logprob"]),
                                      tuple((a.get("token", ""), float(a["logprob"])) for a in (t.get("top_logprobs") or ())[:k]))
                         for t in data["content"])
        tops = data.get("top_logprobs") or [None] * len(data.get("tokens") or ())  # legacy completions shape
        return tuple(TokenLogprob(tok, float(lp), tuple(sorted((top or {}).items(), key=lambda kv: -kv[1])[:k]))
                     for tok, lp, top in zip(data.get("tokens") or (), data.get("token_logprobs") or (), tops))


def error_message(data: Any) -> str:
    """The server's own words from an error body, on one line."""
    err = data.get("error", data) if isinstance(data, Mapping) else data
    if isinstance(err, Mapping):
        err = err.get("message") or err.get("detail") or json.dumps(err)
    return " ".join(str(err).split())[:300] or "no message"


# --- the HTTP backend -----------------------------------------------------------------------------

class OpenAIBackend:
    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3, *, max_context: int | None = None, backoff: float = 0.25):
        self.model, self.base_url = model, base_url.rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self.max_retries, self.backoff = max_retries, backoff
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._tokenize_ok = True
        self._sync = httpx.Client(timeout=5.0)  # for the sync calls: probing and counting tokens
        self.count_tokens = functools.lru_cache(maxsize=4096)(self._count_tokens)  # type: ignore[method-assign]
        probed, self.native = self._probe_models()
        self.capabilities = Capabilities(can_logprobs=True, can_chat=True, can_tools=True,
                                         max_context=max_context or probed or DEFAULT_CONTEXT, max_stops=MAX_STOPS)

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.model!r} at {self.base_url})"

    async def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        body = {"model": self.model, "prompt": prompt, **request_body(sampling, chat=False, native=self.native)}
        async for chunk in self._generate("/completions", body, sampling):
            yield chunk

    async def chat(self, messages: Sequence[ChatTurn], sampling: Sampling,
                   tools: Sequence[Mapping] | None = None) -> AsyncIterator[Chunk]:
        body = {"model": self.model, "messages": wire_messages(messages),
                **request_body(sampling, chat=True, native=self.native)}
        if tools:
            body["tools"] = list(tools)
        async for chunk in self._generate("/chat/completions", body, sampling):
            yield chunk

    async def aclose(self) -> None:
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None  # the sync client stays: count_tokens may still be asked after a close

    # --- requests ---

    async def _generate(self, path: str, body: dict, sampling: Sampling) -> AsyncIterator[Chunk]:
        body.update(stream=True, stream_options={"include_usage": True})
        decoder = StreamDecoder(sampling.logprobs)
        async for event in self._stream(path, body):
            chunk = decoder.feed(event)
            if chunk is not None:
                yield chunk
        yield decoder.end()

    async def _stream(self, path: str, body: dict) -> AsyncIterator[dict]:
        """POST and yield the events; retry until the first event, never after (no duplicate text)."""
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                async with self._http().stream("POST", url, json=body, headers=self._headers()) as resp:
                    if resp.status_code == 200:
                        async for event in _sse_events(resp, url):
                            yield event
                        return
                    await resp.aread()
                    if resp.status_code not in RETRY_STATUSES or last:
                        raise _status_error(resp, url, attempt + 1)
                    delay = _retry_after(resp) or self._delay(attempt)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                if last:
                    raise EngineUnavailable(f"cannot reach {self.base_url}: is the server running? ({_reason(e)})") from None
                delay = self._delay(attempt)
            except httpx.TimeoutException:
                raise EngineError(f"{url} did not answer within {self.timeout.read:g}s; "
                                  "raise the timeout or check the server's load") from None
            except httpx.TransportError as e:
                raise EngineError(f"connection to {url} failed: {_reason(e)}") from None
            await asyncio.sleep(delay)

    def _delay(self, attempt: int) -> float:
        return min(8.0, self.backoff * 2 ** attempt) * random.uniform(0.5, 1.0)

    def _http(self) -> httpx.AsyncClient:
        # A client's connections belong to one event loop; scripts may run several (asyncio.run twice).
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client, self._client_loop = httpx.AsyncClient(timeout=self.timeout), loop
        return self._client

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    # --- what the server can tell us (sync: constructors and count_tokens are sync) ---

    def _probe_models(self) -> tuple[int | None, bool]:
        """(context length, is llama.cpp) from GET /models; (None, False) if it says nothing."""
        try:
            r = self._sync.get(self.base_url + "/models", headers=self._headers(), timeout=3.0)
            entries = (r.json().get("data") or []) if r.status_code == 200 else []
        except (httpx.HTTPError, ValueError, AttributeError):
            return None, False
        entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == self.model),
                     entries[0] if len(entries) == 1 and isinstance(entries[0], dict) else {})
        meta = entry.get("meta") or {}
        n = (meta.get("n_ctx") or meta.get("n_ctx_train") or entry.get("max_model_len")
             or entry.get("context_length") or entry.get("context_window"))
        return (int(n) if isinstance(n, (int, float)) and n > 0 else None), entry.get("owned_by") == "llamacpp"

    def _count_tokens(self, text: str) -> int:
        if self._tokenize_ok:
            root = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
            try:
                r = self._sync.post(root + "/tokenize", json={"model": self.model, "prompt": text, "content": text},
                                    headers=self._headers())
                if r.status_code == 200:
                    data = r.json()
                    return int(data["count"]) if "count" in data else len(data["tokens"])
                self._tokenize_ok = r.status_code >= 500  # no such endpoint: stop asking
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass
        return (len(text) + 3) // 4


async def _sse_events(resp: httpx.Response, url: str) -> AsyncIterator[dict]:
    """Server-sent events: ``data:`` lines (joined until a blank line), ending at ``[DONE]``."""
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line.startswith("error:"):  # llama.cpp reports mid-stream failures this way
            raise EngineError(f"{url} failed while generating: {error_message(_json(line[6:], url))}")
        elif not line and data:
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                return
            yield _json(payload, url)
    if data and "\n".join(data).strip() != "[DONE]":
        yield _json("\n".join(data), url)


def _json(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise EngineError(f"{url} sent something that is not JSON: {text[:80]!r}") from None


def _status_error(resp: httpx.Response, url: str, attempts: int) -> EngineError:
    try:
        said = error_message(resp.json())
    except ValueError:
        said = error_message(resp.text)
    status = resp.status_code
    if status in (401, 403):
        return EngineError(f"{url} refused the API key ({status}: {said}); set OPENAI_API_KEY to a valid key")
    if status == 404:
        return EngineError(f"{url} not found (404: {said}); check the model name and that the base URL ends in /v1")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if status == 429:
        return EngineError(f"rate limited by {url}{tries} (429: {said}); wait, or send fewer requests at once")
    if status >= 500:
        return EngineError(f"server error {status} from {url}{tries}: {said}")
    return EngineError(f"{url} rejected the request ({status}: {said})")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        try:
            return min(60.0, max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time()))
        except (TypeError, ValueError):
            return None


def _reason(e: BaseException) -> str:
    """The most specific cause: httpx's "All connection attempts failed" hides "Connection refused"."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    return " ".join(str(e).split()) or type(e).__name__

