"""Responding: only this em's messages, mufflers, retries with new seeds."""
from simulacra.ems.respond import respond
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.types import Chunk, Message

HELLO = [Message("user", "hello")]


async def test_reply_stops_at_another_speaker_and_keeps_only_the_em(make_em, tmp_path):
    em = make_em(tmp_path)
    engine = Engine(FakeBackend([" Welcome, traveller.\n<user> I speak for the user now"]))
    reply = await respond(em, HELLO, engine)
    assert [(m.author, m.content) for m in reply.messages] == [("mara", "Welcome, traveller.")]


async def test_muffled_draft_is_retried_with_a_new_seed(make_em, tmp_path):
    em = make_em(tmp_path, {"mufflers": ["has_url"], "max_retries": 2})
    seeds = []

    class Scripted(FakeBackend):
        async def complete(self, prompt, sampling):
            seeds.append(sampling.seed)
            text = " see http://spam.example" if len(seeds) == 1 else " Just a plain answer."
            yield Chunk(text, tokens=(1,))

    reply = await respond(em, HELLO, Engine(Scripted()), seed=5)
    assert [m.content for m in reply.messages] == ["Just a plain answer."]
    assert reply.rejected == [("see http://spam.example", "contains a URL")]
    assert len(set(seeds)) == 2 and seeds[0] == 5


async def test_regex_muffler_from_config_and_giving_up_after_max_retries(make_em, tmp_path):
    em = make_em(tmp_path, {"mufflers": [{"muffler": "regex", "pattern": "(?i)as an ai"}], "max_retries": 1})
    reply = await respond(em, HELLO, Engine(FakeBackend([" As an AI, I cannot."])))
    assert reply.messages == []
    assert reply.attempts == 2
    assert all("as an ai" in why for _, why in reply.rejected)


async def test_repeating_the_prompt_is_muffled(make_em, tmp_path):
    em = make_em(tmp_path, {"max_retries": 0})
    history = [Message("user", "the quick brown fox jumps over the lazy dog again")]
    reply = await respond(em, history, Engine(FakeBackend([" the quick brown fox jumps over the lazy dog again"])))
    assert reply.messages == [] and "repeats the prompt" in reply.rejected[0][1]


async def test_bad_muffler_config_is_one_clear_error(make_em, tmp_path):
    import pytest
    from simulacra.errors import ConfigError

    em = make_em(tmp_path, {"mufflers": ["has_urls"]})
    with pytest.raises(ConfigError, match="unknown muffler 'has_urls'"):
        await respond(em, HELLO, Engine(FakeBackend(["x"])))
