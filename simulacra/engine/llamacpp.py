"""The default engine: llama.cpp in-process, through the ``xllamacpp`` wheel.

xllamacpp wraps llama.cpp's own server: a ``Server`` loads the model once and runs llama.cpp's
scheduler (slots, prompt cache) on its own thread; ``handle_completions`` and
``handle_chat_completions`` take OpenAI-shaped request dicts and stream OpenAI-shaped events to a
callback on the calling thread. So a request runs on a worker thread and its callback hands each
event to the asyncio loop; returning True from the callback cancels the generation, which is how
closing the stream early (a stop sequence found by Engine) stops llama.cpp.

Requests are safe to make concurrently: llama.cpp queues them for its ``n_parallel`` slots
(default 1, so one at a time; pass ``n_parallel=4`` to decode four at once, the context is then
shared between them).

The wheel exposes no tokenizer or model metadata, but the server it runs also listens on a
random loopback port, locked with a random API key; count_tokens and the capabilities come from
its ``/tokenize`` and ``/props``. The GGUF header is read first, to reject a file that is not
GGUF with a clear message and to learn the trained context length and whether a chat template
ships with the model.
"""
from __future__ import annotations

import asyncio
import functools
import mmap
import secrets
import struct
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

import httpx

from simulacra.engine.openai import StreamDecoder, error_message, request_body, wire_messages
from simulacra.errors import ConfigError, EngineError, ModelError, ModelNotFound
from simulacra.types import Capabilities, ChatTurn, Chunk, Sampling

DEFAULT_CONTEXT = 4096  # or the model's trained context if smaller: memory stays modest
_DONE = object()


class LlamaCppBackend:
    def __init__(self, model_path: str | Path, n_ctx: int | None = None, **options: Any):
        import xllamacpp

        self.path = Path(model_path)
        meta = read_gguf_metadata(self.path)
        trained = _trained_context(meta)
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = n_ctx or min(DEFAULT_CONTEXT, trained or DEFAULT_CONTEXT)
        params.port = 0  # any free loopback port: several backends (and other programs) may run at once
        params.api_keys = [secrets.token_urlsafe(24)]
        params.ui = False
        params.verbosity = -1  # llama.cpp logs to stderr, which belongs to the CLI
        _apply_options(params, options)
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError:
            raise ModelError(f"llama.cpp could not load {self.path} (corrupt, truncated or an unsupported "
                             "architecture?); download it again, e.g. simulacra models pull NAME") from None
        self._http = httpx.Client(base_url=self._server.listening_address, timeout=30.0,
                                  headers={"Authorization": f"Bearer {params.api_keys[0]}"})
        props = self._http.get("/props").json()
        caps = props.get("chat_template_caps") or {}
        self.capabilities = Capabilities(
            can_logprobs=True,
            can_chat=bool(meta.get("tokenizer.chat_template")),  # llama.cpp would fall back to ChatML
            can_tools=bool(caps.get("supports_tools") or caps.get("supports_tool_calls")),
            max_context=int((props.get("default_generation_settings") or {}).get("n_ctx") or params.n_ctx),
            max_stops=None,
        )
        self.trained_context = trained
        self.count_tokens = functools.lru_cache(maxsize=4096)(self._count_tokens)  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"LlamaCppBackend({str(self.path)!r}, n_ctx={self.capabilities.max_context})"

    async def complete(self, prompt: str, sampling: Sampling) -> AsyncIterator[Chunk]:
        # return_tokens + verbose: each event carries its token ids (an llama.cpp extension)
        body = {"prompt": prompt, **request_body(sampling, chat=False, native=True), "return_tokens": True,
                "verbose": True}
        async for chunk in self._generate("handle_completions", body, sampling):
            yield chunk

    async def chat(self, messages: Sequence[ChatTurn], sampling: Sampling,
                   tools: Sequence[Mapping] | None = None) -> AsyncIterator[Chunk]:
        if not self.capabilities.can_chat:
            raise EngineError(f"{self.path.name} has no chat template; use a completion format (--format irc)")
        body = {"messages": wire_messages(messages), **request_body(sampling, chat=True, native=True)}
        if tools:
            body["tools"] = list(tools)
        async for chunk in self._generate("handle_chat_completions", body, sampling):
            yield chunk

    def _count_tokens(self, text: str) -> int:
        r = self._http.post("/tokenize", json={"content": text})  # as a prompt is read: specials parsed
        return len(r.json()["tokens"])

    async def aclose(self) -> None:
        # Dropping the last reference runs ~Server, which stops llama.cpp's loop (milliseconds);
        # a request still running on a worker thread keeps it alive until that request ends.
        self._server = None
        self._http.close()

    async def _generate(self, handler: str, body: dict, sampling: Sampling) -> AsyncIterator[Chunk]:
        if self._server is None:
            raise EngineError("this llama.cpp engine was closed; load the model again")
        body.update(stream=True, stream_options={"include_usage": True})
        decoder = StreamDecoder(sampling.logprobs)
        async for event in _bridge(getattr(self._server, handler), body):
            chunk = decoder.feed(event)
            if chunk is not None:
                yield chunk
        yield decoder.end()


async def _bridge(handler: Callable, body: dict) -> AsyncIterator[dict]:
    """Run a blocking llama.cpp request on a thread; yield its events on this loop.

    Closing this generator sets ``cancelled``; the callback's next return value (True) tells
    llama.cpp to drop the request and free its slot.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()

    def on_event(event: dict) -> bool:  # on the worker thread
        if cancelled.is_set() or loop.is_closed():
            return True
        loop.call_soon_threadsafe(queue.put_nowait, event)  # raises if the loop just closed: llama.cpp stops
        return False

    def work() -> None:
        try:
            handler(body, on_event)
            outcome: object = _DONE
        except Exception as e:  # noqa: BLE001 - handed to the consumer
            outcome = e
        try:
            loop.call_soon_threadsafe(queue.put_nowait, outcome)
        except RuntimeError:
            pass  # the loop closed; nobody is waiting

    # Not a daemon: Python kills daemon threads at exit wherever they are, and one killed inside
    # llama.cpp aborts the process. A cancelled request ends at its next token anyway.
    threading.Thread(target=work, name="llamacpp-request").start()
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, Exception):
                raise EngineError(f"llama.cpp failed: {item}")
            if "choices" not in item and "error" not in item and "code" in item:  # xllamacpp's own errors
                raise EngineError(f"llama.cpp failed: {error_message(item)}")
            yield item
    finally:
        cancelled.set()


def _apply_options(params: Any, options: Mapping[str, Any]) -> None:
    """Extra llama.cpp settings by their CommonParams names (n_parallel, n_gpu_layers, n_batch...)."""
    for key, value in options.items():
        if key == "n_threads":
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = int(value)
        elif not key.startswith("_") and hasattr(params, key):
            setattr(params, key, value)
        else:
            raise ConfigError(f"unknown llama.cpp option '{key}'; use a field of xllamacpp.CommonParams "
                              "(e.g. n_parallel, n_gpu_layers, n_batch) or n_threads")


def _trained_context(meta: Mapping[str, Any]) -> int | None:
    n = meta.get(f"{meta.get('general.architecture')}.context_length")
    return int(n) if isinstance(n, int) and n > 0 else None


# --- GGUF header ----------------------------------------------------------------------------------

_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The key/value metadata of a GGUF file: scalars and strings (arrays are skipped).

    Raises ModelNotFound for a missing file and ModelError for one that is not GGUF.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse_gguf(buf, path)
    except FileNotFoundError:
        raise ModelNotFound(f"no model file at {path}; check the path or run  simulacra models list") from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a GGUF file") from None
    except ValueError:  # mmap of an empty file
        raise ModelError(f"{path} is empty; download it again") from None


def _parse_gguf(buf: Any, path: Path) -> dict[str, Any]:
    if buf[:4] != b"GGUF":
        raise ModelError(f"{path} is not a GGUF file (it starts with {bytes(buf[:4])!r}); "
                         "llama.cpp needs .gguf models")
    pos = 4

    def take(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from("<" + fmt, buf, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = take("Q")
        if pos + n > len(buf):
            raise struct.error("string runs past the end")
        pos += n
        return bytes(buf[pos - n:pos]).decode("utf-8", "replace")

    def value(kind: int) -> Any:
        nonlocal pos
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            inner, count = take("I"), take("Q")
            if inner in _SCALARS:
                pos += count * struct.calcsize(_SCALARS[inner])
            elif inner == _STRING:  # the vocabulary: tens of thousands of strings, skipped fast
                for _ in range(count):
                    pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
            else:
                for _ in range(count):
                    value(inner)
            return None
        if kind not in _SCALARS:
            raise struct.error(f"unknown value type {kind}")
        return take(_SCALARS[kind])

    try:
        version = take("I")
        if version not in (2, 3):
            raise ModelError(f"{path} is GGUF version {version}; this llama.cpp reads versions 2 and 3")
        take("Q")  # tensor count
        meta = {}
        for _ in range(take("Q")):
            key = string()
            meta[key] = value(take("I"))
        return meta
    except struct.error:
        raise ModelError(f"{path} is truncated or corrupt (its GGUF header is unreadable); download it again") from None
