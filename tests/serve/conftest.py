"""A real uvicorn server on a free loopback port, serving a tiny em and scripted engines, for the
official openai client to talk to. Engines are built by a test loader so tests can look at what
reached them (``engines[spec].backend.prompts``) and use slow, failing or logprob-giving ones."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.engine.spec import load_engine
from simulacra.errors import EngineError
from simulacra.types import Capabilities, Chunk, Sampling, TokenLogprob

KEY = "test-key-123"
EM_REPLY = "Hi there, friend. How are you today?"
FAKE = "fake:Hello there, my friend."  # a raw model: the spec names its reply


class SlowBackend(FakeBackend):
    """Each piece takes ``delay`` seconds, like a real model decoding."""

    def __init__(self, reply: str, delay: float):
        super().__init__([reply])
        self.delay = delay
        self.sent = 0  # pieces produced so far, across requests

    async def _stream(self, reply, sampling):
        async for chunk in super()._stream(reply, sampling):
            await asyncio.sleep(self.delay)
            self.sent += 1
            yield chunk


class BrokenBackend(FakeBackend):
    """Streams two pieces, then fails the way a crashed engine does."""

    async def _stream(self, reply, sampling):
        yield Chunk("Half", tokens=(0,))
        yield Chunk(" a", tokens=(1,))
        raise EngineError("the model fell over")


class LogprobBackend(FakeBackend):
    """Scripted text whose every piece carries a logprob and two alternatives."""

    def __init__(self, reply: str):
        super().__init__([reply])
        self.capabilities = Capabilities(can_chat=True, can_logprobs=True)

    async def _stream(self, reply, sampling: Sampling):
        async for chunk in super()._stream(reply, sampling):
            if chunk.text:
                top = ((chunk.text, -0.5), ("x", -1.5))[: sampling.logprobs or 0]
                chunk = Chunk(chunk.text, chunk.tokens, (TokenLogprob(chunk.text, -0.5, top),), chunk.finish_reason)
            yield chunk


def make_loader(engines: dict):
    """spec -> Engine; remembers each so tests can inspect prompts."""

    def load(spec: str) -> Engine:
        if spec == "slow":
            engine = Engine(SlowBackend("one two three four five six seven eight", 0.02), name=spec)
        elif spec == "crawl":
            engine = Engine(SlowBackend(" ".join(["step"] * 400), 0.05), name=spec)
        elif spec == "nochat":
            engine = Engine(FakeBackend(["Sure thing.\n<user> and more"], can_chat=False), name=spec)
        elif spec == "broken":
            engine = Engine(BrokenBackend(), name=spec)
        elif spec == "logprobs":
            engine = Engine(LogprobBackend("alpha beta gamma"), name=spec)
        else:
            engine = load_engine(spec)
        engines[spec] = engine
        return engine

    return load


@contextmanager
def running(app):
    """Serve ``app`` with uvicorn on a thread; yield its base URL (…/v1)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def make_em(root: Path, name: str = "mara", reply: str = EM_REPLY, **config) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    lines = [f'continuation_model: "fake:{reply}"'] + [f"{k}: {v}" for k, v in config.items()]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def kit():
    """This file's constants and helpers for the tests (conftest is not importable by name)."""
    import types

    return types.SimpleNamespace(KEY=KEY, FAKE=FAKE, EM_REPLY=EM_REPLY, running=running, make_em=make_em,
                                 make_loader=make_loader)


@pytest.fixture(scope="module")
def engines() -> dict:
    return {}


@pytest.fixture(scope="module")
def em_folder(tmp_path_factory) -> Path:
    return make_em(tmp_path_factory.mktemp("ems"))


@pytest.fixture(scope="module")
def base_url(em_folder, engines):
    from simulacra.serve import create_app

    app = create_app([em_folder], [FAKE, "slow", "nochat", "broken", "logprobs"], api_keys=[KEY],
                     parallel=2, loader=make_loader(engines))
    with running(app) as url:
        yield url


@pytest.fixture
def client(base_url):
    from openai import OpenAI

    with OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=20) as c:
        yield c
