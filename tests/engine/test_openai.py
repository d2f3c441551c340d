"""The OpenAI-compatible backend against servers that misbehave on purpose.

A tiny real HTTP server (http.server on loopback) answers from a script: errors, Retry-After,
streamed tool calls. The backend's behaviour against a real llama.cpp server is the shared suite
in test_llamacpp.py; the last tests here check what it learns from one.
"""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.openai import DEFAULT_CONTEXT, MAX_STOPS, OpenAIBackend
from simulacra.errors import EngineError, EngineUnavailable
from simulacra.types import Sampling, ToolCall

SAMPLING = Sampling(temperature=0.0, max_tokens=16)


def sse(*events) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)


def text_events(*pieces: str, finish="stop", usage=None) -> bytes:
    events = [{"choices": [{"index": 0, "text": p, "finish_reason": None}]} for p in pieces]
    events.append({"choices": [{"index": 0, "text": "", "finish_reason": finish}]})
    if usage:
        events.append({"choices": [], "usage": usage})
    return sse(*events, b"[DONE]")


class Scripted:
    """A loopback HTTP server answering each POST with the next scripted (status, headers, body)."""

    def __init__(self, script, models=None, tokenize=None):
        self.script, self.requests = list(script), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.requests.append(("GET", self.path, dict(self.headers), None))
                self._reply(*((200, {}, json.dumps(models).encode()) if models else (404, {}, b"{}")))

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(("POST", self.path, dict(self.headers), body))
                if self.path.endswith("/tokenize"):
                    return self._reply(*((200, {}, json.dumps(tokenize(body)).encode()) if tokenize else (404, {}, b"")))
                self._reply(*(owner.script.pop(0) if owner.script else (500, {}, b'{"error": "script ran out"}')))

            def _reply(self, status, headers, body):
                self.send_response(status)
                for k, v in {"Content-Type": "text/event-stream" if body.startswith(b"data:") else "application/json",
                             **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def posts(self, suffix="/completions"):
        return [r for r in self.requests if r[0] == "POST" and r[1].endswith(suffix)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(script=(), **kw):
        servers.append(Scripted(script, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there once the socket is closed


async def text_of(engine: Engine, prompt="hi", sampling=SAMPLING):
    chunks = [c async for c in engine.complete(prompt, sampling)]
    return "".join(c.text for c in chunks), chunks[-1]


async def test_streams_text_and_takes_usage_from_the_server(scripted):
    server = scripted([(200, {}, text_events("Hel", "lo", usage={"prompt_tokens": 11, "completion_tokens": 2}))])
    text, last = await text_of(Engine(OpenAIBackend("m", server.url)))
    assert text == "Hello"
    assert last.finish_reason == "stop" and last.usage["prompt_tokens"] == 11 and last.usage["total_tokens"] == 13
    body = server.posts()[0][3]
    assert body["stream"] and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 16 and body["temperature"] == 0.0 and body["model"] == "m"
    assert "top_k" not in body and "min_p" not in body  # neutral extensions stay off a plain OpenAI server


async def test_retries_a_503_after_retry_after_then_succeeds(scripted):
    server = scripted([(503, {"Retry-After": "1"}, b'{"error": {"message": "loading model"}}'),
                       (200, {}, text_events("ok"))])
    started = time.monotonic()
    text, _ = await text_of(Engine(OpenAIBackend("m", server.url, backoff=0.01)))
    assert text == "ok" and len(server.posts()) == 2
    assert time.monotonic() - started >= 0.95  # waited as the server asked, not the 10 ms backoff


async def test_a_persistent_500_is_one_clear_error(scripted):
    server = scripted([(500, {}, b'{"error": {"message": "the GPU caught fire", "code": 500}}')] * 3)
    with pytest.raises(EngineError) as e:
        await text_of(Engine(OpenAIBackend("m", server.url, max_retries=2, backoff=0.01)))
    message = str(e.value)
    assert "500" in message and "the GPU caught fire" in message and "3 attempts" in message
    assert "\n" not in message and not isinstance(e.value, EngineUnavailable)
    assert len(server.posts()) == 3


async def test_401_asks_for_a_key_without_retrying(scripted):
    server = scripted([(401, {}, b'{"error": {"message": "Invalid API key"}}')])
    with pytest.raises(EngineError, match="OPENAI_API_KEY") as e:
        await text_of(Engine(OpenAIBackend("m", server.url, api_key="sk-wrong", backoff=0.01)))
    assert "Invalid API key" in str(e.value) and len(server.posts()) == 1
    assert server.posts()[0][2]["Authorization"] == "Bearer sk-wrong"


async def test_a_bad_request_is_not_retried(scripted):
    server = scripted([(400, {}, b'{"error": {"message": "top_k is not supported"}}')])
    with pytest.raises(EngineError, match="400: top_k is not supported"):
        await text_of(Engine(OpenAIBackend("m", server.url, backoff=0.01)), sampling=Sampling(top_k=5))
    assert len(server.posts()) == 1 and server.posts()[0][3]["top_k"] == 5


async def test_the_key_comes_from_the_environment(scripted, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    server = scripted([(200, {}, text_events("x"))])
    await text_of(Engine(OpenAIBackend("m", server.url)))
    assert server.posts()[0][2]["Authorization"] == "Bearer sk-env"


async def test_an_unreachable_server_is_engine_unavailable():
    url = dead_url()
    with pytest.raises(EngineUnavailable) as e:
        await text_of(Engine(OpenAIBackend("m", url, max_retries=1, backoff=0.01)))
    assert f"cannot reach {url}" in str(e.value) and "is the server running" in str(e.value)


async def test_an_error_event_mid_stream_is_an_engine_error(scripted):
    body = sse({"choices": [{"index": 0, "text": "par", "finish_reason": None}]}) + b'error: {"message": "slot died"}\n\n'
    server = scripted([(200, {}, body)])
    with pytest.raises(EngineError, match="slot died"):
        await text_of(Engine(OpenAIBackend("m", server.url)))


async def test_streamed_tool_call_fragments_become_one_tool_call(scripted):
    def delta(**d):
        return {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}

    events = sse(delta(role="assistant", content=None),
                 delta(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]),
                 delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
                 delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                 {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9}}, b"[DONE]")
    server = scripted([(200, {}, events)])
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    history = [{"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": None, "tool_calls": [ToolCall("f", "{}", id="c0")]},
               {"role": "tool", "tool_call_id": "c0", "content": "{}"}]
    chunks = [c async for c in Engine(OpenAIBackend("m", server.url)).chat(history, SAMPLING, tools)]
    calls = [call for c in chunks for call in c.tool_calls]
    assert calls == [ToolCall("get_weather", '{"city": "Paris"}', id="call_1")]
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage["prompt_tokens"] == 30
    body = server.posts("/chat/completions")[0][3]
    assert body["tools"] == tools
    assert body["messages"][1]["tool_calls"] == [{"id": "c0", "type": "function",
                                                  "function": {"name": "f", "arguments": "{}"}}]


def test_capabilities_and_tokens_from_what_the_server_offers(scripted):
    models = {"data": [{"id": "m", "object": "model", "max_model_len": 12345}]}
    server = scripted(models=models, tokenize=lambda body: {"tokens": list(range(len(body["prompt"].split())))})
    backend = OpenAIBackend("m", server.url)
    assert backend.capabilities.max_context == 12345 and backend.capabilities.max_stops == MAX_STOPS
    assert backend.count_tokens("one two three") == 3
    bare = scripted()  # no /models, no /tokenize
    backend = OpenAIBackend("m", bare.url)
    assert backend.capabilities.max_context == DEFAULT_CONTEXT
    assert backend.count_tokens("x" * 40) == 10 and backend.count_tokens("y" * 8) == 2
    assert len(bare.posts("/tokenize")) == 1  # a server without /tokenize is asked once


def test_one_backend_serves_several_event_loops(scripted):
    server = scripted([(200, {}, text_events("a")), (200, {}, text_events("b"))])
    engine = Engine(OpenAIBackend("m", server.url))
    assert [asyncio.run(text_of(engine))[0] for _ in range(2)] == ["a", "b"]


def test_cli_with_a_dead_server_prints_one_line_and_fails():
    url = dead_url()
    run = subprocess.run([sys.executable, "-m", "simulacra", "complete", "hi", "--model", f"openai:x@{url}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0 and "cannot reach" in run.stderr and url in run.stderr


# --- against a real llama.cpp server ---------------------------------------------------------------

@pytest.mark.slow
def test_learns_context_and_tokenizer_from_llama_cpp(openai_backend, llamacpp_backend):
    assert openai_backend.capabilities.max_context == 2048  # the server's n_ctx, from /v1/models
    assert openai_backend.native  # so llama.cpp's non-neutral sampler defaults get overridden
    for text in ("Hello world", "<|im_start|>user\nhi", "naïve café ☕"):
        assert openai_backend.count_tokens(text) == llamacpp_backend.count_tokens(text)


@pytest.mark.slow
async def test_closing_a_stream_early_stops_the_server(openai_backend, llama_server, wait_until_idle):
    import httpx

    stream = Engine(openai_backend).complete("Once upon a time", Sampling(temperature=0.0, max_tokens=1000))
    async for _ in stream:
        break
    await stream.aclose()  # drops the connection; llama.cpp notices at its next token
    with httpx.Client(base_url=llama_server[: -len("/v1")]) as server:
        assert await wait_until_idle(server), "the server kept generating for a closed connection"
