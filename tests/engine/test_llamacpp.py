"""llama.cpp in-process, and the behavioural suite every real engine must pass.

The suite runs through ``Engine`` on both the in-process backend and the OpenAI-compatible
backend talking to a real llama.cpp HTTP server (fixtures in conftest.py). Expected texts are
never hard-coded: each test derives what it expects from the model's own output.
"""
from __future__ import annotations

import asyncio
import dataclasses
import math
import struct

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.llamacpp import LlamaCppBackend, read_gguf_metadata
from simulacra.errors import ConfigError, EngineError, ModelError, ModelNotFound
from simulacra.types import Sampling

PROMPT = "Once upon a time, in a small village by the sea,"
GREEDY = Sampling(temperature=0.0, max_tokens=16)


async def run(engine: Engine, prompt: str = PROMPT, sampling: Sampling = GREEDY):
    """(text of sample 0, all chunks)."""
    chunks = [c async for c in engine.complete(prompt, sampling)]
    return "".join(c.text for c in chunks if c.index == 0), chunks


def final(chunks, index: int = 0):
    return [c for c in chunks if c.index == index and c.finish_reason][-1]


# --- the shared behavioural suite (both engines) -------------------------------------------------

@pytest.mark.slow
async def test_greedy_is_deterministic(engine):
    first, _ = await run(engine)
    second, _ = await run(engine)
    assert first.strip() and first == second


@pytest.mark.slow
async def test_greedy_gives_the_same_text_in_process_and_over_http(llamacpp_backend, openai_backend):
    local, _ = await run(Engine(llamacpp_backend))
    remote, _ = await run(Engine(openai_backend))
    assert local.strip() and local == remote


@pytest.mark.slow
async def test_same_seed_same_text_and_seeds_matter(engine):
    hot = dataclasses.replace(GREEDY, temperature=0.9, seed=1234)
    a, _ = await run(engine, sampling=hot)
    b, _ = await run(engine, sampling=hot)
    assert a == b
    others = {(await run(engine, sampling=dataclasses.replace(hot, seed=s)))[0] for s in (1, 2, 3)}
    assert len(others | {a}) > 1, "different seeds should not all give the same sample at temperature 0.9"


@pytest.mark.slow
async def test_max_tokens_stops_with_length(engine):
    text, chunks = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=5))
    end = final(chunks)
    assert end.finish_reason == "length"
    assert end.usage["completion_tokens"] == 5
    longer, _ = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=12))
    assert longer.startswith(text) and len(longer) > len(text)


@pytest.mark.slow
async def test_stop_sequence_ends_the_text_before_it(engine):
    full, _ = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=24))
    words = full.split()
    stop = words[len(words) // 2]  # a word from the middle of what the model writes anyway
    text, chunks = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=24, stop=(stop,)))
    assert stop not in text
    assert text == full[: full.index(stop)]
    assert final(chunks).finish_reason == "stop"


@pytest.mark.slow
async def test_usage_matches_the_tokenizer(engine):
    sampling = dataclasses.replace(GREEDY, max_tokens=8, logprobs=0)
    text, chunks = await run(engine, sampling=sampling)
    usage = final(chunks).usage
    assert 0 <= usage["prompt_tokens"] - engine.count_tokens(PROMPT) <= 1  # +1 where a BOS is added
    ids = [t for c in chunks for t in c.tokens]
    assert usage["completion_tokens"] == len(ids) == 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert abs(engine.count_tokens(text) - len(ids)) <= 2  # re-tokenizing may merge a few pieces


@pytest.mark.slow
async def test_logprobs_are_log_probabilities_of_the_chosen_tokens(engine):
    text, chunks = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=8, logprobs=3))
    lps = [lp for c in chunks for lp in c.logprobs]
    assert len(lps) == 8
    assert "".join(lp.token for lp in lps) == text
    for lp in lps:
        assert lp.logprob <= 0.0
        assert len(lp.top) == 3
        assert [p for _, p in lp.top] == sorted((p for _, p in lp.top), reverse=True)
        assert math.fsum(math.exp(p) for _, p in lp.top) <= 1.0 + 1e-4
        assert lp.top[0] == (lp.token, pytest.approx(lp.logprob, abs=1e-4))  # greedy picks the argmax


@pytest.mark.slow
async def test_chat_uses_the_models_template(engine, gguf_path):
    """A chat equals a completion of the GGUF's own template rendered by jinja2 (the reference)."""
    jinja2 = pytest.importorskip("jinja2")
    meta = read_gguf_metadata(gguf_path)
    messages = [{"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Name a colour."}]
    template = jinja2.Environment().from_string(meta["tokenizer.chat_template"])
    prompt = template.render(messages=messages, add_generation_prompt=True)
    sampling = dataclasses.replace(GREEDY, max_tokens=10)
    chat = [c async for c in engine.chat(messages, sampling)]
    completed, _ = await run(engine, prompt, sampling)
    assert "".join(c.text for c in chat) == completed
    assert final(chat).usage["prompt_tokens"] == engine.count_tokens(prompt)


@pytest.mark.slow
async def test_n_samples_have_their_own_indices_and_seeds(engine):
    sampling = dataclasses.replace(GREEDY, temperature=0.9, seed=7, n=2, max_tokens=8)
    chunks = [c async for c in engine.complete(PROMPT, sampling)]
    assert {c.index for c in chunks} == {0, 1}
    assert final(chunks, 0).finish_reason and final(chunks, 1).finish_reason
    for i in (0, 1):  # Engine runs sample i with seed + i
        alone, _ = await run(engine, sampling=dataclasses.replace(sampling, n=1, seed=7 + i))
        assert "".join(c.text for c in chunks if c.index == i) == alone


@pytest.mark.slow
async def test_top_k_one_is_greedy_at_any_temperature(engine):
    greedy, _ = await run(engine)
    for seed in (1, 2):
        text, _ = await run(engine, sampling=dataclasses.replace(GREEDY, temperature=1.5, top_k=1, seed=seed))
        assert text == greedy


@pytest.mark.slow
async def test_logit_bias_bans_a_token(engine):
    _, chunks = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=1, logprobs=0))
    first = chunks[0].tokens[0]
    _, banned = await run(engine, sampling=dataclasses.replace(GREEDY, max_tokens=1, logprobs=0,
                                                               logit_bias={first: -math.inf}))
    assert banned[0].tokens and banned[0].tokens[0] != first


@pytest.mark.slow
async def test_a_prompt_longer_than_the_context_is_one_clear_error(engine):
    with pytest.raises(EngineError) as e:
        await run(engine, "hello " * 3000)  # the fixtures' context is 2048 tokens
    assert "context" in str(e.value) and "\n" not in str(e.value)


# --- llama.cpp in-process only -------------------------------------------------------------------

@pytest.mark.slow
async def test_closing_a_stream_early_frees_llama_cpp(llamacpp_backend, wait_until_idle):
    engine = Engine(llamacpp_backend)
    stream = engine.complete(PROMPT, dataclasses.replace(GREEDY, max_tokens=1000))
    async for _ in stream:
        break
    await stream.aclose()
    # the backend's own llama.cpp server: its /slots shows whether the request is still running
    assert await wait_until_idle(llamacpp_backend._http), "llama.cpp kept generating after the stream closed"
    text, _ = await run(engine)  # and the slot serves the next request
    assert text.strip()


@pytest.mark.slow
async def test_concurrent_requests_match_sequential_ones(llamacpp_backend):
    engine = Engine(llamacpp_backend)
    prompts = [PROMPT, "The recipe for bread is", "Dear diary, today"]
    sequential = [(await run(engine, p))[0] for p in prompts]
    concurrent = await asyncio.gather(*(run(engine, p) for p in prompts))
    assert [t for t, _ in concurrent] == sequential


@pytest.mark.slow
def test_capabilities_come_from_the_model(llamacpp_backend, gguf_path):
    caps = llamacpp_backend.capabilities
    assert caps.can_logprobs and caps.max_stops is None
    assert caps.can_chat == bool(read_gguf_metadata(gguf_path).get("tokenizer.chat_template"))
    assert caps.max_context == 2048


def test_metadata_reader_reads_what_the_gguf_package_writes(tmp_path):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "tiny.gguf"
    written = {"t.u8": 7, "t.i16": -300, "t.f32": 0.5, "t.b": True, "t.u64": 2**40, "t.i64": -(2**40),
               "t.f64": 1e-9, "tokenizer.chat_template": "{{ messages }} ünïcode"}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(1234)
    for add, key in [(writer.add_uint8, "t.u8"), (writer.add_int16, "t.i16"), (writer.add_float32, "t.f32"),
                     (writer.add_bool, "t.b"), (writer.add_uint64, "t.u64"), (writer.add_int64, "t.i64"),
                     (writer.add_float64, "t.f64"), (writer.add_string, "tokenizer.chat_template")]:
        add(key, written[key])
    writer.add_array("t.strings", ["a", "bb", "ccc"])  # arrays are skipped, and what follows still reads
    writer.add_array("t.ints", [1, 2, 3])
    writer.add_string("t.after", "still here")
    writer.add_tensor("x", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_gguf_metadata(path) == {"general.architecture": "llama", "llama.context_length": 1234, **written,
                                        "t.strings": None, "t.ints": None, "t.after": "still here"}


@pytest.mark.slow
def test_a_truncated_model_is_a_model_error(gguf_path, tmp_path):
    bad = tmp_path / "cut.gguf"
    with open(gguf_path, "rb") as f:
        bad.write_bytes(f.read(20_000_000))  # the header survives, the tensors do not
    with pytest.raises(ModelError) as e:
        LlamaCppBackend(bad, n_ctx=256)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)


def test_a_file_that_is_not_gguf_is_a_model_error(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"<html>not a model</html>" * 10)
    with pytest.raises(ModelError, match="not a GGUF file"):
        LlamaCppBackend(bad)


def test_a_gguf_llama_cpp_rejects_is_a_model_error(tmp_path):
    bad = tmp_path / "empty-model.gguf"  # a valid header with one key and no tensors
    key, val = b"general.architecture", b"nonsense"
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                    + struct.pack("<IQ", 8, len(val)) + val)
    assert read_gguf_metadata(bad) == {"general.architecture": "nonsense"}
    with pytest.raises(ModelError, match="could not load"):
        LlamaCppBackend(bad, n_ctx=256)


def test_a_corrupt_header_and_a_missing_file(tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 5) + struct.pack("<Q", 1000) + b"short")
    with pytest.raises(ModelError, match="truncated or corrupt"):
        read_gguf_metadata(cut)
    with pytest.raises(ModelNotFound):
        LlamaCppBackend(tmp_path / "absent.gguf")


def test_unknown_options_are_config_errors(gguf_path):
    with pytest.raises(ConfigError, match="n_paralel"):
        LlamaCppBackend(gguf_path, n_paralel=2)
