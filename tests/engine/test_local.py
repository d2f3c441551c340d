import asyncio
import math
import time

import numpy as np
import pytest

from simulacra.engine.base import Engine, complete_text
from simulacra.engine.local import LocalBackend
from simulacra.errors import InputError
from simulacra.types import Completer, LanguageModel, Sampling

# A byte-level toy vocabulary: "é" and "🙂" are each split over two tokens, as byte-level BPE does.
VOCAB = {0: b"", 1: b"a", 2: b"b", 3: b" ", 4: b"\xc3", 5: b"\xa9", 6: b"\xf0\x9f", 7: b"\x99\x82", 8: b"!"}
EOS = 0
# The model's one habit: after token k it strongly prefers NEXT[k].
NEXT = {1: 2, 2: 4, 4: 5, 5: 3, 3: 6, 6: 7, 7: 8, 8: EOS}


class ToyLM:
    """A hand-made LanguageModel with a cache that records what it had to compute."""

    vocab_size = len(VOCAB)
    eos_ids = frozenset({EOS})

    def __init__(self, max_context: int = 64, step_s: float = 0.0):
        self.max_context = max_context
        self.step_s = step_s
        self.computed: list[int] = []  # tokens run per call: 1 means the cache was reused

    def encode(self, text: str) -> list[int]:
        data, ids = text.encode(), []
        while data:
            token = max((t for t, b in VOCAB.items() if b and data.startswith(b)), key=lambda t: len(VOCAB[t]))
            ids.append(token)
            data = data[len(VOCAB[token]):]
        return ids

    def decode(self, ids) -> str:
        return b"".join(VOCAB[i] for i in ids).decode("utf-8", errors="replace")

    def logits(self, ids, cache=None):
        ids = tuple(ids)
        reused = cache is not None and ids[:len(cache)] == cache
        self.computed.append(len(ids) - len(cache) if reused else len(ids))
        if self.step_s:
            time.sleep(self.step_s)
        out = np.zeros(self.vocab_size, dtype=np.float32)
        out[NEXT.get(ids[-1], 1)] = 5.0
        out[1] = 1.0  # a second choice, so logprobs and sampling have something to weigh
        return out, ids


def run(backend, prompt, sampling):
    async def go():
        return [c async for c in backend.complete(prompt, sampling)]

    return asyncio.run(go())


GREEDY = Sampling(temperature=0, max_tokens=50)


def test_toy_lm_and_backend_meet_the_protocols():
    assert isinstance(ToyLM(), LanguageModel)
    backend = LocalBackend(ToyLM())
    assert isinstance(backend, Completer)
    assert backend.capabilities.can_logprobs and not backend.capabilities.can_chat
    assert backend.capabilities.max_context == 64
    assert backend.count_tokens("ab é") == 5


def test_greedy_runs_the_model_until_its_end_token():
    chunks = run(LocalBackend(ToyLM()), "a", GREEDY)
    assert "".join(c.text for c in chunks) == "bé 🙂!"
    assert [c.tokens for c in chunks if c.tokens] == [(2,), (4,), (5,), (3,), (6,), (7,), (8,)]
    assert chunks[-1].finish_reason == "stop" and not chunks[-1].tokens
    assert all(c.finish_reason is None for c in chunks[:-1])


def test_max_tokens_ends_with_length():
    chunks = run(LocalBackend(ToyLM()), "a", Sampling(temperature=0, max_tokens=3))
    assert len([c for c in chunks if c.tokens]) == 3
    assert chunks[-1].finish_reason == "length"
    assert "".join(c.text for c in chunks) == "bé"


def test_a_split_character_is_held_back_until_whole():
    chunks = run(LocalBackend(ToyLM()), "a", GREEDY)
    by_token = {c.tokens[0]: c.text for c in chunks if c.tokens}
    assert by_token[4] == "" and by_token[5] == "é"
    assert by_token[6] == "" and by_token[7] == "🙂"
    assert not any("\ufffd" in c.text for c in chunks)


def test_an_unfinished_character_at_the_end_is_flushed_not_lost():
    # max_tokens cuts between the two halves of "é": the text says so rather than dropping bytes
    chunks = run(LocalBackend(ToyLM()), "a", Sampling(temperature=0, max_tokens=2))
    assert "".join(c.text for c in chunks) == "b\ufffd"


def test_the_first_token_keeps_its_leading_space():
    chunks = run(LocalBackend(ToyLM()), "é", GREEDY)  # after é comes " "
    assert "".join(c.text for c in chunks).startswith(" 🙂")


def test_logprobs_report_the_chosen_token_and_alternatives():
    chunks = run(LocalBackend(ToyLM()), "a", Sampling(temperature=0, max_tokens=1, logprobs=2))
    (lp,) = chunks[0].logprobs
    norm = math.log(math.exp(5) + math.exp(1) + (len(VOCAB) - 2))
    assert lp.token == "b" and lp.logprob == pytest.approx(5 - norm)
    assert lp.top == (("b", pytest.approx(5 - norm)), ("a", pytest.approx(1 - norm)))
    assert run(LocalBackend(ToyLM()), "a", Sampling(temperature=0, max_tokens=1))[0].logprobs == ()


def test_the_cache_runs_one_token_a_step_and_is_reused_by_the_next_prompt():
    lm = ToyLM()
    backend = LocalBackend(lm)
    text = "".join(c.text for c in run(backend, "ab", Sampling(temperature=0, max_tokens=3)))
    assert lm.computed == [2, 1, 1]
    lm.computed.clear()
    run(backend, "ab" + text + "a", Sampling(temperature=0, max_tokens=1))
    # only the last generated token (never fed back) and the new "a": the rest was cached
    assert lm.computed == [2]


def test_the_same_seed_gives_the_same_sample():
    sampling = Sampling(temperature=3.0, max_tokens=20, seed=5)
    first = run(LocalBackend(ToyLM()), "a", sampling)
    again = run(LocalBackend(ToyLM()), "a", sampling)
    assert [c.tokens for c in first] == [c.tokens for c in again]
    others = [run(LocalBackend(ToyLM()), "a", Sampling(temperature=3.0, max_tokens=20, seed=s)) for s in range(6, 9)]
    assert any([c.tokens for c in o] != [c.tokens for c in first] for o in others)


def test_bad_prompts_are_input_errors():
    with pytest.raises(InputError, match="empty"):
        run(LocalBackend(ToyLM()), "", GREEDY)
    with pytest.raises(InputError, match="context"):
        run(LocalBackend(ToyLM(max_context=4)), "abab", GREEDY)


def test_the_context_limit_ends_with_length():
    chunks = run(LocalBackend(ToyLM(max_context=4)), "a", GREEDY)
    assert len([c for c in chunks if c.tokens]) == 3 and chunks[-1].finish_reason == "length"


async def test_under_engine_stops_and_usage_work():
    engine = Engine(LocalBackend(ToyLM()))
    chunks = [c async for c in engine.complete("a", Sampling(temperature=0, stop=(" ",), max_tokens=50))]
    assert "".join(c.text for c in chunks) == "bé"
    assert chunks[-1].finish_reason == "stop"
    # b, the two halves of é, and the " " that matched the stop
    assert chunks[-1].usage == {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}
    two = [c async for c in engine.complete("a", Sampling(temperature=1.0, n=2, seed=1, max_tokens=4))]
    assert {c.index for c in two} == {0, 1}
    assert await complete_text(engine, "a", Sampling(temperature=0, max_tokens=2)) == "b\ufffd"


async def test_concurrent_generations_do_not_disturb_each_other():
    backend = LocalBackend(ToyLM())
    alone = [await complete_text(backend, p, GREEDY) for p in ("a", "é")]
    together = await asyncio.gather(*(complete_text(backend, p, GREEDY) for p in ("a", "é")))
    assert list(together) == alone


async def test_slow_steps_do_not_block_the_event_loop():
    backend = LocalBackend(ToyLM(step_s=0.15))
    gaps, done = [], asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await complete_text(backend, "a", Sampling(temperature=0, max_tokens=4))
    done.set()
    await tick
    assert len(gaps) > 20 and max(gaps) < 0.12  # blocking steps would show gaps of 0.15 s


# -- the real model (slow) --------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch_lm(gguf_path):
    pytest.importorskip("transformers")
    from simulacra.lm.transformer import TransformerLM

    return TransformerLM.load(gguf_path)


STORY = "Once upon a time, in a small village by the sea,"


@pytest.mark.slow
def test_greedy_matches_transformers_generate_token_for_token(torch_lm):
    import torch

    ids = torch.tensor([torch_lm.encode(STORY)])
    with torch.inference_mode():
        out = torch_lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False,
                                      pad_token_id=torch_lm.tokenizer.eos_token_id)
    expected = [t for t in out[0, ids.shape[1]:].tolist()]
    if expected[-1] in torch_lm.eos_ids:
        expected.pop()  # ours reports the end token as finish_reason "stop", not as a token
    chunks = run(LocalBackend(torch_lm), STORY, Sampling(temperature=0, max_tokens=20))
    assert [t for c in chunks for t in c.tokens] == expected
    assert "".join(c.text for c in chunks) == torch_lm.decode(expected)


@pytest.mark.slow
def test_a_seed_reproduces_a_sample(torch_lm):
    backend = LocalBackend(torch_lm)
    sampling = Sampling(temperature=1.0, top_p=0.95, max_tokens=12, seed=42)
    first = asyncio.run(complete_text(backend, STORY, sampling))
    assert asyncio.run(complete_text(backend, STORY, sampling)) == first
    other = [asyncio.run(complete_text(backend, STORY, Sampling(temperature=1.0, top_p=0.95, max_tokens=12, seed=s)))
             for s in (1, 2)]
    assert any(o != first for o in other)


@pytest.mark.slow
def test_the_torch_spec_builds_a_working_engine(gguf_path):
    pytest.importorskip("transformers")
    from simulacra.engine.spec import load_engine

    engine = load_engine(f"torch:{gguf_path}")
    assert engine.capabilities.can_logprobs and engine.capabilities.max_context == 8192
    chunks = asyncio.run(_collect(engine, Sampling(temperature=0, max_tokens=8, logprobs=3, stop=("\n\n\n",))))
    assert chunks[-1].usage["completion_tokens"] == len([c for c in chunks if c.tokens]) <= 8
    for c in chunks:
        for lp in c.logprobs:
            assert lp.logprob <= 0 and len(lp.top) == 3 and lp.top[0][1] >= lp.logprob - 1e-6


async def _collect(engine, sampling):
    return [c async for c in engine.complete(STORY, sampling)]
