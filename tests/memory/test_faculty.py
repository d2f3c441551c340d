"""The memory and scratchpad faculties: what reaches the prompt, scored with the em's config."""
from __future__ import annotations

import pytest

from simulacra.engine.embed import HashEmbedder
from simulacra.errors import ConfigError
from simulacra.memory import MemoryStore, Scratchpad, memory_path
from simulacra.memory import faculty as memfac
from simulacra.memory.faculty import CLOCK, ago, memory_store, now
from simulacra.ems.prompt import build_prompt
from simulacra.types import Message

HOUR, DAY = 3600.0, 86400.0
T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _fresh_stores():
    yield
    memfac.clear_cache()


@pytest.fixture
def at():
    """Pin the memory clock; returns a setter."""
    tokens = []

    def set_time(t: float) -> None:
        tokens.append(CLOCK.set(lambda: t))

    yield set_time
    for token in reversed(tokens):
        try:
            CLOCK.reset(token)
        except ValueError:  # set inside an async test's own context, which is gone already
            pass


def em_with_memory(make_em, tmp_path, memory=None, faculty=None):
    config = {"representation_model": "hash", "continuation_model": "fake:Aye.",
              "memory": {"enabled": True, **(memory or {})},
              "ensembles": [{"faculty": "memory", **(faculty or {})}]}
    return make_em(tmp_path, config)


def seed(folder, rows):
    """rows: (text, importance, created_at)"""
    with MemoryStore.for_em(folder, HashEmbedder()) as store:
        return [store.add(text, importance=imp, at=t) for text, imp, t in rows]


async def items(em, history):
    [(faculty, config)] = em.faculties
    return [i async for i in faculty.run(em, config, history)]


ASK = [Message("tom", "What is my sister called?")]
ROWS = [("tom said: My sister's name is Ottoline.", 3, T0 - 2 * DAY),
        ("tom said: the harbour froze over", 9, T0 - 3 * HOUR),
        ("I said: Aye, fetch the nets.", 2, T0 - 60)]


async def test_recalls_memories_with_their_age(make_em, tmp_path, at):
    em = em_with_memory(make_em, tmp_path)
    seed(em.folder, ROWS)
    at(T0)
    got = await items(em, ASK)
    assert sorted(got) == sorted(["- (2 days ago) tom said: My sister's name is Ottoline.",
                                  "- (3 hours ago) tom said: the harbour froze over",
                                  "- (1 minute ago) I said: Aye, fetch the nets."])


@pytest.mark.parametrize("weights, first", [
    ({"recency": 0, "importance": 1, "relevance": 0}, "the harbour froze over"),
    ({"recency": 1, "importance": 0, "relevance": 0}, "fetch the nets"),
    ({"recency": 0, "importance": 0, "relevance": 1}, "Ottoline"),
])
async def test_weights_come_from_the_em_config(make_em, tmp_path, at, weights, first):
    em = em_with_memory(make_em, tmp_path, memory=weights)
    seed(em.folder, ROWS)
    at(T0)
    assert first in (await items(em, ASK))[0]


async def test_max_items_and_kind_limit_what_is_recalled(make_em, tmp_path, at):
    em = em_with_memory(make_em, tmp_path, faculty={"max_items": 1})
    seed(em.folder, ROWS)
    at(T0)
    assert len(await items(em, ASK)) == 1
    memfac.clear_cache()
    em2 = em_with_memory(make_em, tmp_path / "b", faculty={"kind": "reflection"})
    seed(em2.folder, ROWS)
    assert await items(em2, ASK) == []


def test_a_bad_kind_is_a_config_error(make_em, tmp_path):
    with pytest.raises(ConfigError, match="kind"):
        em_with_memory(make_em, tmp_path, faculty={"kind": "dream"})


async def test_no_memory_file_means_no_section_and_no_file_created(make_em, tmp_path):
    em = em_with_memory(make_em, tmp_path)
    assert await items(em, ASK) == []
    assert not memory_path(em.folder).exists()


async def test_no_history_means_no_query(make_em, tmp_path):
    em = em_with_memory(make_em, tmp_path)
    seed(em.folder, ROWS)
    assert await items(em, []) == []


async def test_only_the_recent_messages_make_the_query(make_em, tmp_path, at):
    em = em_with_memory(make_em, tmp_path, memory={"recency": 0, "importance": 0},
                        faculty={"recent_message_attention": 1})
    seed(em.folder, ROWS)
    at(T0)
    history = [*ASK, Message("mara", "Is the harbour frozen over?")]
    assert "harbour froze" in (await items(em, history))[0]


async def test_the_store_is_opened_once_and_sees_other_writers(make_em, tmp_path, at):
    em = em_with_memory(make_em, tmp_path)
    seed(em.folder, ROWS[:1])
    at(T0)
    first = await items(em, ASK)
    store = memory_store(em)
    assert memory_store(em) is store
    seed(em.folder, ROWS[1:])  # another connection, as another process would write
    assert len(await items(em, ASK)) == len(first) + 2
    assert memory_store(em) is store


async def test_the_section_lands_in_the_prompt_under_its_header(make_em, tmp_path, at):
    em = em_with_memory(make_em, tmp_path, memory={"recency": 0, "importance": 0})
    seed(em.folder, ROWS)
    at(T0)
    prompt = await build_prompt(em, ASK, lambda s: len(s.split()), 4096)
    section = next(s for s in prompt.sections if s.name == "memory")
    assert section.text.startswith("What mara remembers:\n")
    # prepend: the best memory sits nearest the conversation
    assert section.items[-1].endswith("Ottoline.")
    assert prompt.text.index("Ottoline") < prompt.text.index("<tom> What is my sister called?")


def test_clock_offset_from_the_environment(monkeypatch):
    monkeypatch.setenv("SIMULACRA_CLOCK_OFFSET", str(DAY))
    import time

    assert now() - time.time() == pytest.approx(DAY, abs=5)
    monkeypatch.setenv("SIMULACRA_CLOCK_OFFSET", "tomorrow")
    with pytest.raises(ConfigError, match="SIMULACRA_CLOCK_OFFSET"):
        now()


def test_a_context_clock_wins_over_the_environment(monkeypatch, at):
    monkeypatch.setenv("SIMULACRA_CLOCK_OFFSET", str(DAY))
    at(T0)
    assert now() == T0


@pytest.mark.parametrize("seconds, text", [
    (0, "just now"), (59, "just now"), (60, "1 minute ago"), (3 * 60 + 5, "3 minutes ago"),
    (HOUR, "1 hour ago"), (DAY - 1, "23 hours ago"), (DAY, "1 day ago"), (2 * DAY + 5, "2 days ago"),
    (15 * DAY, "2 weeks ago"), (65 * DAY, "2 months ago"), (800 * DAY, "2 years ago"), (-30, "just now"),
])
def test_ago(seconds, text):
    assert ago(seconds) == text


# --- scratchpad ------------------------------------------------------------------------------

async def test_scratchpad_yields_its_render_and_sees_edits_at_once(make_em, tmp_path):
    em = make_em(tmp_path, {"ensembles": [{"faculty": "scratchpad"}]})
    assert await items(em, ASK) == []
    pad = Scratchpad.for_em(em.folder)
    pad.remember("tom", "has a sister, Ottoline")
    pad.note("the well went dry")
    assert await items(em, ASK) == [pad.render()] == ["tom: has a sister, Ottoline\n- the well went dry"]
    pad.forget("tom")
    assert await items(em, ASK) == ["- the well went dry"]


async def test_scratchpad_section_in_the_prompt(make_em, tmp_path):
    em = make_em(tmp_path, {"ensembles": [{"faculty": "scratchpad"}]})
    Scratchpad.for_em(em.folder).remember("tom", "owes me two coins")
    prompt = await build_prompt(em, ASK, lambda s: len(s.split()), 4096)
    assert "mara's notes:\ntom: owes me two coins\n" in prompt.text
