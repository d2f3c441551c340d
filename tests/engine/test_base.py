"""Engine: stops, max_tokens, n and usage, written once above every backend."""
import pytest

from simulacra.engine.base import Engine, complete_text
from simulacra.engine.fake import FakeBackend
from simulacra.types import Capabilities, Chunk, Sampling


async def collect(engine, prompt="p", **kw):
    return [c async for c in engine.complete(prompt, Sampling(**kw))]


async def test_stop_cuts_text_and_reports_stop():
    engine = Engine(FakeBackend(["Hello there <bob> hi"]))
    chunks = await collect(engine, stop=("<bob>",))
    assert "".join(c.text for c in chunks) == "Hello there "
    assert chunks[-1].finish_reason == "stop"


async def test_max_tokens_counts_tokens_and_reports_length():
    engine = Engine(FakeBackend(["one two three four five"]))
    chunks = await collect(engine, max_tokens=3)
    assert "".join(c.text for c in chunks) == "one two three"
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage["completion_tokens"] == 3


async def test_n_samples_are_indexed_with_consecutive_seeds():
    seen = []

    class Seeds(FakeBackend):
        async def complete(self, prompt, sampling):
            seen.append(sampling.seed)
            yield Chunk(f"seed {sampling.seed}", tokens=(1,))

    chunks = await collect(Engine(Seeds()), n=3, seed=10)
    assert seen == [10, 11, 12]
    texts = {c.index: c.text for c in chunks if c.text}
    assert texts == {0: "seed 10", 1: "seed 11", 2: "seed 12"}
    assert [c.index for c in chunks if c.finish_reason] == [0, 1, 2]


async def test_stops_beyond_backend_limit_are_enforced_client_side():
    passed = []

    class Limited(FakeBackend):
        def __init__(self):
            super().__init__(["a b c d e f"])
            self.capabilities = Capabilities(max_stops=1)

        async def complete(self, prompt, sampling):
            passed.append(sampling.stop)
            async for c in super().complete(prompt, sampling):
                yield c

    text = await complete_text(Engine(Limited()), "p", Sampling(stop=("zz", "yy", " d")))
    assert passed == [("zz",)]
    assert text == "a b c"


async def test_usage_prompt_tokens_and_total():
    chunks = await collect(Engine(FakeBackend(["x y"])), prompt="one two three")
    assert chunks[-1].usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


async def test_stream_is_closed_when_a_stop_ends_it():
    closed = []

    class Endless(FakeBackend):
        async def complete(self, prompt, sampling):
            try:
                i = 0
                while True:
                    i += 1
                    yield Chunk(f"w{i} ", tokens=(i,))
            finally:
                closed.append(True)

    text = await complete_text(Engine(Endless()), "p", Sampling(stop=("w3",), max_tokens=10**6))
    assert text == "w1 w2 "
    assert closed == [True]


async def test_chat_refused_by_engine_that_cannot_chat():
    from simulacra.errors import EngineError

    engine = Engine(FakeBackend(can_chat=False))
    with pytest.raises(EngineError, match="cannot chat"):
        [c async for c in engine.chat([{"role": "user", "content": "hi"}], Sampling())]


async def test_completion_tokens_are_counted_from_text_when_a_backend_sends_no_ids():
    class NoIds(FakeBackend):
        async def complete(self, prompt, sampling):
            for piece in ("alpha ", "beta ", "gamma <stop> delta"):
                yield Chunk(piece)

    chunks = await collect(Engine(NoIds()), stop=("<stop>",))
    assert "".join(c.text for c in chunks) == "alpha beta gamma "
    assert chunks[-1].usage["completion_tokens"] == 5  # all three chunks were generated, one with the stop


async def test_a_backends_empty_end_marker_is_not_passed_on_as_an_extra_chunk():
    class Ends(FakeBackend):
        async def complete(self, prompt, sampling):
            yield Chunk("word", tokens=(1,))
            yield Chunk("", finish_reason="stop")

    chunks = await collect(Engine(Ends()))
    assert [(c.text, c.finish_reason) for c in chunks] == [("word", None), ("", "stop")]
