"""Importance rating (model, tolerant parse, cache, heuristic fallback) and reflection."""
from __future__ import annotations

import json

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.embed import HashEmbedder
from simulacra.engine.fake import FakeBackend
from simulacra.errors import EngineError
from simulacra.memory import MemoryStore, heuristic_importance
from simulacra.memory.reflect import RatingCache, maybe_reflect, parse_insights, parse_rating, rate_importance

T0 = 1_700_000_000.0


def fake(replies, name="fake"):
    return Engine(FakeBackend(replies), name=name)


@pytest.fixture(autouse=True)
def _fresh_caches():
    RatingCache._open.clear()  # as if each test were a new process
    yield
    RatingCache._open.clear()


@pytest.fixture
def store(tmp_path):
    with MemoryStore(tmp_path / "state" / "memory.db", HashEmbedder(), clock=lambda: T0) as s:
        yield s


# --- importance ------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, rating", [
    (" 7", 7), ("Rating: 8/10", 8), ("10", 10), (" seven.", 7), ("I'd say 3 out of 10", 3),
    ("6.5", 6), ("\n4", 4), ("0", None), ("11", None), ("Hello.", None), ("", None), ("Ten!", 10),
])
def test_parse_rating_is_tolerant(answer, rating):
    assert parse_rating(answer) == rating


async def test_the_model_rates_with_a_short_prompt():
    engine = fake([" 9"])
    assert await rate_importance(engine, "my sister died") == 9
    [prompt] = engine.backend.prompts
    assert prompt.startswith("On a scale of 1 to 10") and prompt.endswith("Rating (1-10):")
    assert "Memory: my sister died" in prompt


@pytest.mark.parametrize("replies", [["Hello."], ["99"], [""]])
async def test_no_number_falls_back_to_the_heuristic(replies):
    text = "I cried when my sister married Tom!"
    assert await rate_importance(fake(replies), text) == heuristic_importance(text)


async def test_an_engine_error_falls_back_to_the_heuristic():
    def broken(prompt):
        raise EngineError("server went away")

    text = "we ate breakfast"
    assert await rate_importance(fake(broken), text) == heuristic_importance(text)


async def test_ratings_are_cached_on_disk_by_engine_and_text(tmp_path):
    engine = fake([" 8", " 2", " 5"])
    assert await rate_importance(engine, "the boat sank", tmp_path) == 8
    assert await rate_importance(engine, "the boat sank", tmp_path) == 8
    assert len(engine.backend.prompts) == 1
    data = json.loads((tmp_path / "importance.json").read_text())
    assert list(data.values()) == [8]
    RatingCache._open.clear()  # a new process reads the file
    again = fake([" 1"])
    assert await rate_importance(again, "the boat sank", tmp_path) == 8 and again.backend.prompts == []
    other = fake([" 3"], name="another-model")  # another model's opinion is its own
    assert await rate_importance(other, "the boat sank", tmp_path) == 3


async def test_heuristic_fallbacks_are_not_cached(tmp_path):
    await rate_importance(fake(["no idea"]), "the boat sank", tmp_path)
    assert not (tmp_path / "importance.json").exists()
    assert await rate_importance(fake([" 6"]), "the boat sank", tmp_path) == 6


async def test_a_damaged_cache_starts_over(tmp_path):
    (tmp_path / "importance.json").write_text("{not json")
    assert await rate_importance(fake([" 4"]), "x happened", tmp_path) == 4


# --- reflection ------------------------------------------------------------------------------

def add(store, *rows):
    return [store.add(text, importance=imp) for text, imp in rows]


async def test_reflection_fires_exactly_at_the_threshold(store):
    engine = fake(["Tom misses his sister (because of 1, 2)"])
    add(store, ("tom said: my sister left", 4), ("tom said: I miss her", 5))
    assert await maybe_reflect(store, engine, threshold=10) == []
    assert engine.backend.prompts == []  # below the threshold the model is not asked
    add(store, ("tom sighed", 1))  # 4 + 5 + 1 == 10
    [reflection] = await maybe_reflect(store, engine, threshold=10, rate=False)
    assert reflection.kind == "reflection" and reflection.text == "Tom misses his sister"
    assert reflection.cites == (1, 2)
    assert store.get(reflection.id).cites == (1, 2)


async def test_insights_cite_only_real_memory_ids(store):
    real = add(store, ("tom said: my sister left", 5), ("tom said: I miss her", 5), ("the well ran dry", 5))
    ids = [m.id for m in real]
    engine = fake([f"Tom is lonely (because of {ids[0]}, 97, {ids[1]})\n"
                   f"2. The village is in trouble (because of 98, {ids[2]})\n"
                   "3. The moon is made of cheese (because of 42, 99)\n"
                   "4. A line with no evidence at all"])
    found = await maybe_reflect(store, engine, threshold=15, rate=False)
    assert [(r.text, r.cites) for r in found] == [("Tom is lonely", (ids[0], ids[1])),
                                                 ("The village is in trouble", (ids[2],))]
    prompt = engine.backend.prompts[0]
    for m in real:  # the model saw each memory under its id
        assert f"\n{m.id}. {m.text}\n" in prompt + "\n"
    assert "(because of 3, 7)" in prompt


async def test_counting_restarts_after_a_reflection_and_skips_reflections(store):
    engine = fake(["A (because of 1)", "B (because of 3)"])
    add(store, ("one", 5), ("two", 5))
    assert len(await maybe_reflect(store, engine, threshold=10, rate=False)) == 1
    assert await maybe_reflect(store, engine, threshold=10, rate=False) == []  # the reflection (10) doesn't count
    add(store, ("three", 9))
    assert await maybe_reflect(store, engine, threshold=10, rate=False) == []
    add(store, ("four", 1))
    # asked again, about the new memories only; "B (because of 3)" cites the first reflection
    # (id 3), which was not shown, so it is no evidence and B is dropped
    assert await maybe_reflect(store, engine, threshold=10, rate=False) == []
    prompt = engine.backend.prompts[1]
    assert "4. three" in prompt and "5. four" in prompt and "1. one" not in prompt


async def test_a_useless_answer_still_ends_the_round(store):
    engine = fake(["I don't know.", "C (because of 1)"])
    add(store, ("one", 6), ("two", 6))
    assert await maybe_reflect(store, engine, threshold=10) == []
    assert await maybe_reflect(store, engine, threshold=10) == []
    assert len(engine.backend.prompts) == 1  # not asked again until the threshold is reached anew


async def test_reflections_are_rated_by_the_model_when_asked(store):
    def script(prompt):
        return " 8" if prompt.startswith("On a scale") else "Tom is lonely (because of 1, 2)"

    add(store, ("a", 5), ("b", 5))
    [r] = await maybe_reflect(store, fake(script), threshold=10, rate=True)
    assert r.importance == 8


async def test_a_replaced_database_counts_from_the_start(tmp_path):
    path = tmp_path / "state" / "memory.db"
    with MemoryStore(path, HashEmbedder()) as s:
        add(s, *[(f"m{i}", 5) for i in range(4)])
        assert await maybe_reflect(s, fake(["X (because of 1)"]), threshold=10, rate=False)
    for f in path.parent.glob("memory.db*"):
        f.unlink()
    with MemoryStore(path, HashEmbedder()) as s:
        add(s, ("n1", 5), ("n2", 5))
        assert await maybe_reflect(s, fake(["Y (because of 2)"]), threshold=10, rate=False)


@pytest.mark.parametrize("line, parsed", [
    ("1. Tom is lonely (because of 1, 2)", [("Tom is lonely", (1, 2))]),
    ("- Tom is lonely (because of 1 and 2).", [("Tom is lonely", (1, 2))]),
    ("Tom is lonely (from memories #2, #1)", [("Tom is lonely", (2, 1))]),
    ("Tom is lonely (1)", [("Tom is lonely", (1,))]),
    ("Tom is lonely (because of 7)", []),
    ("Tom is lonely because of 1", []),
    ("(because of 1, 2)", []),
])
def test_parse_insights(line, parsed):
    assert parse_insights(line, {1, 2, 3}) == parsed
