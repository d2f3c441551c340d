"""The default model behind our server against the same model behind llama.cpp's own HTTP server:
greedy replies, usage and finish reasons must match exactly (slow: loads the model twice)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"


def default_gguf() -> Path:
    home = Path(os.environ.get("SIMULACRA_HOME") or "~/.local/share/simulacra").expanduser()
    return home / "models" / MODEL / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def reference():
    """llama.cpp's own server (xllamacpp listening on a free loopback port): its /v1 URL."""
    if not default_gguf().exists():
        pytest.skip(f"default model not pulled: simulacra models pull {MODEL}")
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(default_gguf())
    params.n_ctx = 4096  # as LlamaCppBackend picks for this model
    params.port = 0
    params.verbosity = -1
    server = xllamacpp.Server(params)
    root = server.listening_address
    deadline = time.monotonic() + 60
    while httpx.get(root + "/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "llama.cpp server never became healthy"
        time.sleep(0.1)
    yield root + "/v1"
    del server


@pytest.fixture(scope="module")
def ours(kit, reference):
    from simulacra.serve import create_app

    with kit.running(create_app([], [MODEL], api_keys=[kit.KEY])) as url:
        yield url


@pytest.fixture(scope="module")
def clients(ours, reference, kit):
    from openai import OpenAI

    with OpenAI(base_url=ours, api_key=kit.KEY, max_retries=0, timeout=120) as a, \
            OpenAI(base_url=reference, api_key="none", max_retries=0, timeout=120) as b:
        yield a, b


def test_greedy_completion_matches_llamacpp(clients):
    ours, ref = clients
    kwargs = dict(model=MODEL, prompt="The three primary colours are", max_tokens=24, temperature=0)
    a, b = ours.completions.create(**kwargs), ref.completions.create(**kwargs)
    assert a.choices[0].text == b.choices[0].text and a.choices[0].text.strip()
    assert a.choices[0].finish_reason == b.choices[0].finish_reason == "length"
    assert (a.usage.prompt_tokens, a.usage.completion_tokens) == (b.usage.prompt_tokens, b.usage.completion_tokens)
    streamed = "".join(c.choices[0].text for c in ours.completions.create(**kwargs, stream=True) if c.choices)
    assert streamed == a.choices[0].text


def test_greedy_chat_matches_llamacpp(clients):
    ours, ref = clients
    kwargs = dict(model=MODEL, messages=[{"role": "system", "content": "You are terse."},
                                         {"role": "user", "content": "Name a fruit."}], max_tokens=32, temperature=0)
    a, b = ours.chat.completions.create(**kwargs), ref.chat.completions.create(**kwargs)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.choices[0].finish_reason == b.choices[0].finish_reason
    assert a.usage.prompt_tokens == b.usage.prompt_tokens
    assert a.usage.completion_tokens == b.usage.completion_tokens
    chunks = list(ours.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == a.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == a.usage.completion_tokens


def test_logprobs_and_stops_on_the_real_model(clients):
    ours, _ = clients
    r = ours.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == r.choices[0].text
    assert all(x <= 0 for x in lp.token_logprobs) and all(len(top) == 2 for top in lp.top_logprobs)
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    cut = ours.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[" 7"])
    assert cut.choices[0].finish_reason == "stop" and " 7" not in cut.choices[0].text
    assert r.choices[0].text.startswith(cut.choices[0].text)
