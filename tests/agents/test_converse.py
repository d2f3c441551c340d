"""converse: thought before the reply, critique and revise, memory after, recall next time."""
from __future__ import annotations

import pytest

from simulacra.agents.converse import converse, incoming, parse_verdict, public
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.memory import faculty as memfac
from simulacra.memory import memory_path
from simulacra.memory.faculty import memory_store
from simulacra.memory.reflect import RatingCache
from simulacra.types import Message

T0 = 1_700_000_000.0
DAY = 86400.0
PERSONA = "Mara is a gruff old sailor. She never says 'awesome'."


@pytest.fixture(autouse=True)
def _fresh():
    yield
    memfac.clear_cache()
    RatingCache._open.clear()


class Router:
    """A fake model that answers each kind of prompt converse sends in its own way."""

    def __init__(self, reply="Aye.", thought="He wants something.", rating="no number",
                 verdict="Yes, that is her.", insight="Tom trusts me (because of 1)", replies=None):
        self.reply, self.thought, self.rating, self.verdict, self.insight = reply, thought, rating, verdict, insight
        self.replies = list(replies or [])
        self.seen: dict[str, list[str]] = {k: [] for k in ("reply", "thought", "rating", "verdict", "insight")}

    def __call__(self, prompt: str) -> str:
        kind = ("rating" if prompt.startswith("On a scale of 1 to 10") else
                "verdict" if "is that in character" in prompt else
                "insight" if "high-level insights" in prompt else
                "thought" if prompt.endswith("(thinks)") else "reply")
        self.seen[kind].append(prompt)
        if kind == "reply" and self.replies:
            return self.replies.pop(0)
        return getattr(self, kind)


def setup(make_em, tmp_path, router, **config):
    em = make_em(tmp_path, {"representation_model": "hash", "continuation_model": "fake:x",
                            "mufflers": [], "ensembles": [{"faculty": "notes", "text": PERSONA},
                                                          {"faculty": "memory"}], **config})
    return em, Engine(FakeBackend(router), name="router")


HELLO = [Message("tom", "Morning, Mara. My sister's name is Ottoline.")]


async def test_plain_converse_is_respond(make_em, tmp_path):
    router = Router()
    em, engine = setup(make_em, tmp_path, router)
    reply = await converse(em, HELLO, engine, seed=1)
    assert [(m.author, m.content, m.kind) for m in reply.messages] == [("mara", "Aye.", "message")]
    assert router.seen["thought"] == [] and len(router.seen["reply"]) == 1
    assert not memory_path(em.folder).exists()


async def test_a_thought_comes_first_and_the_reply_sees_it(make_em, tmp_path):
    router = Router(thought=" He is fishing for news.\n<tom> I am not!")
    em, engine = setup(make_em, tmp_path, router, thinking={"enabled": True, "max_tokens": 20})
    heard = []
    reply = await converse(em, HELLO, engine, seed=1, on_thought=heard.append)
    thought, said = reply.messages
    assert (thought.author, thought.kind, thought.content) == ("mara", "thought", "He is fishing for news.")
    assert heard == ["He is fishing for news."]
    assert public(reply.messages) == [said] and said.content == "Aye."
    [thought_prompt] = router.seen["thought"]
    assert thought_prompt.endswith("<tom> Morning, Mara. My sister's name is Ottoline.\n* mara (thinks)")
    assert PERSONA in thought_prompt
    # the reply was written with the thought in the em's own history
    assert "* mara (thinks) He is fishing for news.\n<mara>" in router.seen["reply"][0]
    assert "(thinks)" in reply.prompt.text


async def test_no_thought_when_writing_as_someone_else(make_em, tmp_path):
    router = Router()
    em, engine = setup(make_em, tmp_path, router, thinking={"enabled": True}, memory={"enabled": True})
    reply = await converse(em, HELLO, engine, next_author="narrator", seed=1)
    assert all(m.kind != "thought" for m in reply.messages) and router.seen["thought"] == []
    assert not memory_path(em.folder).exists()


async def test_critique_rewrites_an_out_of_character_draft(make_em, tmp_path):
    router = Router(replies=["Awesome, dude!", "Aye, lad."], verdict="No, Mara would never say awesome.")
    em, engine = setup(make_em, tmp_path, router, thinking={"enabled": True, "critique": True})
    reply = await converse(em, HELLO, engine, seed=1)
    assert [m.content for m in public(reply.messages)] == ["Aye, lad."]
    assert ("Awesome, dude!", "out of character: Mara would never say awesome") in reply.rejected
    thoughts = [m for m in reply.messages if m.kind == "thought"]
    assert len(thoughts) == 2 and "Mara would never say awesome" in thoughts[1].content
    [check] = router.seen["verdict"]
    assert PERSONA in check and '"Awesome, dude!"' in check
    assert thoughts[1].content in router.seen["reply"][1]  # the rewrite knew why


async def test_critique_keeps_a_draft_in_character(make_em, tmp_path):
    router = Router(verdict="Yes. Gruff enough.")
    em, engine = setup(make_em, tmp_path, router, thinking={"enabled": True, "critique": True})
    reply = await converse(em, HELLO, engine, seed=1)
    assert [m.content for m in public(reply.messages)] == ["Aye."] and reply.rejected == []
    assert len(router.seen["reply"]) == 1


@pytest.mark.parametrize("answer, verdict", [
    ("Yes.", (True, "")), (" no - too cheerful.", (False, "too cheerful")), ("Maybe", (None, "")),
    ("NO, she is gruff", (False, "she is gruff")), ("Nope", (None, "")),
])
def test_parse_verdict(answer, verdict):
    assert parse_verdict(answer) == verdict


async def test_memory_stores_the_exchange_and_the_thought(make_em, tmp_path):
    router = Router(rating=" 7")
    em, engine = setup(make_em, tmp_path, router, memory={"enabled": True, "reflect_threshold": 100},
                       thinking={"enabled": True})
    history = [Message("mara", "Morning."), Message("tom", "My sister's name is Ottoline."),
               Message("tom", "* waves", kind="message"), Message("tom", "waves", kind="action")]
    await converse(em, history, engine, seed=1, clock=lambda: T0)
    memories = memory_store(em).all()
    assert [(m.kind, m.text) for m in memories] == [
        ("observation", "tom said: My sister's name is Ottoline."),
        ("observation", "tom said: * waves"),
        ("observation", "tom waves"),
        ("observation", "I said: Aye."),
        ("note", "I thought: He wants something."),
    ]
    assert all(m.importance == 7 and m.created_at == T0 for m in memories)
    assert len(router.seen["rating"]) == 5


async def test_importance_falls_back_to_the_heuristic(make_em, tmp_path):
    from simulacra.memory import heuristic_importance

    router = Router(rating="I cannot rate that")
    em, engine = setup(make_em, tmp_path, router, memory={"enabled": True})
    await converse(em, HELLO, engine, seed=1)
    assert [m.importance for m in memory_store(em).all()] == \
        [heuristic_importance(m.text) for m in memory_store(em).all()]
    router2 = Router(rating="9")
    em2, engine2 = setup(make_em, tmp_path / "b", router2, memory={"enabled": True, "rate_importance": False})
    await converse(em2, HELLO, engine2, seed=1)
    assert router2.seen["rating"] == []


async def test_a_retried_turn_is_not_remembered_twice(make_em, tmp_path):
    em, engine = setup(make_em, tmp_path, Router(), memory={"enabled": True})
    await converse(em, HELLO, engine, seed=1)
    await converse(em, HELLO, engine, seed=2)
    texts = [m.text for m in memory_store(em).all()]
    assert texts.count("tom said: Morning, Mara. My sister's name is Ottoline.") == 1
    assert texts.count("I said: Aye.") == 2  # each reply was really said


async def test_reflection_runs_after_the_exchange(make_em, tmp_path):
    router = Router(rating=" 9", insight="Tom trusts me with family news (because of 1, 2, 77)")
    em, engine = setup(make_em, tmp_path, router, memory={"enabled": True, "reflect_threshold": 18})
    await converse(em, HELLO, engine, seed=1)
    [reflection] = memory_store(em).all("reflection")
    assert reflection.text == "Tom trusts me with family news" and reflection.cites == (1, 2)


async def test_recall_the_next_day_through_the_memory_faculty(make_em, tmp_path):
    router = Router()
    em, engine = setup(make_em, tmp_path, router, memory={"enabled": True})
    await converse(em, HELLO, engine, seed=1, clock=lambda: T0)
    memfac.clear_cache()  # as a new process would open it
    ask = [Message("tom", "What is my sister called?")]
    reply = await converse(em, ask, engine, seed=1, clock=lambda: T0 + DAY)
    assert "- (1 day ago) tom said: Morning, Mara. My sister's name is Ottoline." in reply.prompt.text
    assert "Ottoline" in router.seen["reply"][-1]


async def test_without_memory_nothing_is_recalled(make_em, tmp_path):
    router = Router()
    em, engine = setup(make_em, tmp_path, router)
    await converse(em, HELLO, engine, seed=1, clock=lambda: T0)
    reply = await converse(em, [Message("tom", "What is my sister called?")], engine, seed=1, clock=lambda: T0 + DAY)
    assert "Ottoline" not in reply.prompt.text


def test_incoming_is_what_came_since_the_em_spoke():
    history = [Message("tom", "a"), Message("mara", "b"), Message("mara", "hm", kind="thought"),
               Message("tom", "c"), Message(None, "the door opens", kind="observation"),
               Message("ann", "secret", kind="thought"), Message(None, "sys", kind="system")]
    assert [(i, m.content) for i, m in incoming(history, "mara")] == [(3, "c"), (4, "the door opens")]
    many = [Message("tom", str(i)) for i in range(9)]
    assert [m.content for _, m in incoming(many, "mara")] == ["4", "5", "6", "7", "8"]


async def test_a_critique_is_not_remembered_as_a_thought(make_em, tmp_path):
    router = Router(replies=["Awesome!", "Aye."], verdict="No.")
    em, engine = setup(make_em, tmp_path, router, memory={"enabled": True}, thinking={"critique": True})
    reply = await converse(em, HELLO, engine, seed=1)
    assert [m.kind for m in reply.messages] == ["thought", "message"]
    texts = [m.text for m in memory_store(em).all()]
    assert "I said: Aye." in texts and not any(t.startswith("I thought") or "Awesome" in t for t in texts)


async def test_a_thought_may_start_on_the_next_line_and_ends_with_its_line(make_em, tmp_path):
    router = Router(thought="\n  Tom looks tired today.\nSecond line that is never read")
    em, engine = setup(make_em, tmp_path, router, thinking={"enabled": True})
    reply = await converse(em, HELLO, engine, seed=1)
    assert reply.messages[0].content == "Tom looks tired today."
