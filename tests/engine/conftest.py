"""Fixtures for the engine tests: the default GGUF model, llama.cpp in-process, and a real
llama.cpp HTTP server on loopback for the OpenAI-compatible backend. Each loads the model once
per session; tests that use them are marked slow."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest

from simulacra.engine.base import Engine

N_CTX = 2048  # small: tests use short prompts, and several test sessions share the machine


def default_gguf() -> Path:
    home = Path(os.environ.get("SIMULACRA_HOME") or "~/.local/share/simulacra").expanduser()
    return home / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    path = default_gguf()
    if not path.exists():
        pytest.skip(f"default model not pulled ({path}); run  simulacra models pull smollm2-135m-instruct")
    return path


@pytest.fixture(scope="session")
def llama_server(gguf_path):
    """A llama.cpp HTTP server (xllamacpp's Server listens on a port) on a free loopback port.

    Yields its OpenAI base URL, e.g. http://127.0.0.1:41234/v1.
    """
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path)
    params.n_ctx = N_CTX
    params.port = 0  # the OS picks a free port; no race with other test sessions
    params.verbosity = -1
    server = xllamacpp.Server(params)
    root = server.listening_address
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(root + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"llama.cpp server at {root} never became healthy")
        time.sleep(0.1)
    yield root + "/v1"
    del server  # ~Server stops llama.cpp's loop and its HTTP listener


@pytest.fixture(scope="session")
def llamacpp_backend(gguf_path):
    from simulacra.engine.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(gguf_path, n_ctx=N_CTX)
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture(scope="session")
def openai_backend(llama_server):
    from simulacra.engine.openai import OpenAIBackend

    backend = OpenAIBackend("smollm2", llama_server)
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture(params=["llamacpp", "openai"])
def engine(request) -> Engine:
    """The same behavioural suite runs on both: in-process, and over HTTP to a llama.cpp server."""
    return Engine(request.getfixturevalue(f"{request.param}_backend"), name=request.param)


@pytest.fixture
def wait_until_idle():
    """``await wait_until_idle(http_client)``: poll a llama.cpp server's /slots until none is busy."""

    async def wait(client: httpx.Client, seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not any(slot.get("is_processing") for slot in client.get("/slots").json()):
                return True
            await asyncio.sleep(0.05)
        return False

    return wait
