"""The Discord interface's pure logic: config, reply decisions, loop guard, cooldown, splitting."""
from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulacra.errors import ConfigError
from simulacra.serve.discord_policy import (LIMIT, DiscordConfig, Incoming, ReplyPolicy, discord_config, outgoing,
                                            split_message, split_spans)
from simulacra.types import Message

ME, BOT, PERSON = 1, 2, 3


def msg(content, author=PERSON, bot=False, channel=10, **kw):
    return Incoming(channel_id=channel, author_id=author, author_name=f"user{author}", content=content,
                    is_bot=bot, **kw)


def policy(clock=None, seed=0, **config):
    return ReplyPolicy(DiscordConfig(**config), ME, ["mara", "MaraBot"], rng=random.Random(seed),
                       clock=clock or (lambda: 0.0))


def decide(p, m):
    p.observe(m)
    return p.decide(m)


# -- config -------------------------------------------------------------------------------

def test_config_comes_from_the_ems_interfaces(make_em, tmp_path):
    em = make_em(tmp_path, {"interfaces": [{"name": "web"}, {"name": "discord", "nicknames": ["mar"],
                                                                 "reply_on_random": 53, "channels": [5, "lab"]}]})
    config = discord_config(em.config.interfaces, "config.yaml")
    assert config.nicknames == ["mar"] and config.channels == [5, "lab"]
    assert config.reply_on_random == pytest.approx(1 / 53)  # Chapter II's "one in N"
    assert discord_config([], "config.yaml") == DiscordConfig()


@pytest.mark.parametrize("entry, error", [
    ({"reply_on_pings": True}, r"unknown key 'interfaces\[0\].reply_on_pings' \(did you mean 'reply_on_ping'\?\)"),
    ({"reply_on_regex": "(unclosed"}, r"interfaces\[0\].reply_on_regex: .*bad regex"),
    ({"reply_on_random": True}, r"reply_on_random: .*a chance such as 0.05"),
    ({"max_bot_chain": -1}, r"interfaces\[0\].max_bot_chain"),
    ({"history_limit": "lots"}, r"interfaces\[0\].history_limit"),
])
def test_bad_config_is_one_line(entry, error):
    with pytest.raises(ConfigError, match=error) as e:
        discord_config([{"name": "discord", **entry}], "ems/mara/config.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("ems/mara/config.yaml")


def test_two_discord_entries_are_an_error():
    with pytest.raises(ConfigError, match="2 discord entries"):
        discord_config([{"name": "discord"}, {"name": "discord"}], "c.yaml")


# -- when to reply --------------------------------------------------------------------------

@pytest.mark.parametrize("content, extra, reason", [
    ("hey <@1> you there?", {"mentions": frozenset({ME})}, "ping"),
    ("good point", {"reply_to_author": ME}, "ping"),
    ("what does Mara think?", {}, "name"),
    ("ask @marabot", {}, "name"),
    ("maraschino cherries", {}, None),  # a name only counts as a whole word
    ("nothing to see", {}, None),
    ("nothing to see", {"is_dm": True}, "dm"),
])
def test_ping_name_and_dm(content, extra, reason):
    assert decide(policy(), msg(content, **extra)) == reason


def test_switches_nicknames_and_regex():
    assert decide(policy(reply_on_ping=False), msg("<@1>", mentions=frozenset({ME}))) is None
    assert decide(policy(reply_on_name=False), msg("mara?")) is None
    assert decide(policy(nicknames=["the oracle"]), msg("ask The Oracle")) == "name"
    assert decide(policy(reply_on_regex=r"(?i)\bprophecy\b"), msg("a PROPHECY!")) == "regex"


def test_never_its_own_dotted_or_other_channels_messages():
    assert decide(policy(), msg("mara, me again", author=ME, bot=True)) is None
    assert decide(policy(), msg(".ooc mara is lagging")) is None
    assert decide(policy(ignore_dotted_messages=False), msg(".mara")) == "name"
    served = policy(channels=[10, "lab"])
    assert decide(served, msg("mara", channel=10)) == "name"
    assert decide(served, msg("mara", channel=11, channel_name="lab")) == "name"
    assert decide(served, msg("mara", channel=12, channel_name="random")) is None
    assert decide(policy(dms=False), msg("mara", is_dm=True)) is None


def test_random_replies_are_seeded_and_follow_the_chance():
    def run(seed):
        p = policy(seed=seed, reply_on_random=0.3)
        return [decide(p, msg(f"chatter {i}")) for i in range(2000)]

    first = run(11)
    assert first == run(11) and first != run(12)
    assert set(first) == {"random", None}
    assert 0.26 < first.count("random") / 2000 < 0.34


# -- the loop guard ---------------------------------------------------------------------------

def test_bot_chain_budget_stops_a_bot_loop_and_a_person_resets_it():
    p = policy(max_bot_chain=3, cooldown_s=0)
    assert decide(p, msg("hi mara")) == "name"
    assert decide(p, msg("mara!", author=BOT, bot=True)) == "name"  # run of 1 bot message
    p.observe(msg("my reply", author=ME, bot=True))  # the em's own reply makes it 2
    assert decide(p, msg("mara?", author=BOT, bot=True)) is None  # a reply would make 4 > 3
    assert decide(p, msg("mara??", author=BOT, bot=True)) is None
    assert decide(p, msg("mara, go on")) == "name"  # a person: the run is over
    assert decide(p, msg("mara!", author=BOT, bot=True)) == "name"
    assert decide(p, msg("mara!", author=BOT, bot=True, channel=11)) == "name"  # budgets are per channel


def test_chain_limits_zero_and_none():
    never = policy(max_bot_chain=0, cooldown_s=0)
    assert decide(never, msg("mara", author=BOT, bot=True)) is None
    assert decide(never, msg("mara")) == "name"
    endless = policy(max_bot_chain=None, cooldown_s=0)
    assert all(decide(endless, msg("mara", author=BOT, bot=True)) == "name" for _ in range(50))


def test_cooldown_holds_bots_off_but_never_people():
    now = [100.0]
    p = policy(clock=lambda: now[0], max_bot_chain=None, cooldown_s=30)
    assert decide(p, msg("mara", author=BOT, bot=True)) == "name"
    p.replied(10)
    now[0] = 110.0
    assert decide(p, msg("mara", author=BOT, bot=True)) is None
    assert decide(p, msg("mara", author=BOT, bot=True, channel=11)) == "name"
    assert decide(p, msg("mara, quick question")) == "name"
    now[0] = 130.0
    assert decide(p, msg("mara", author=BOT, bot=True)) == "name"


# -- what is sent ---------------------------------------------------------------------------

def test_outgoing_drops_thoughts_and_italicises_actions():
    reply = [Message("mara", "I distrust him", kind="thought"), Message("mara", "Welcome!"),
             Message("mara", "bows", kind="action"), Message("mara", "   ")]
    assert outgoing(reply) == ["Welcome!", "*bows*"]
    long = outgoing([Message("mara", "word " * 1000)])
    assert len(long) == 3 and all(len(p) <= LIMIT for p in long)


def test_short_text_is_one_piece_and_paragraphs_are_preferred():
    assert split_message("hello") == ["hello"]
    text = "a" * 1500 + "\n\n" + "b " * 300 + "\n" + "c" * 400
    assert split_message(text) == ["a" * 1500 + "\n\n", "b " * 300 + "\n" + "c" * 400]
    words = "word " * 600
    assert all(p.endswith(" ") for p in split_message(words)[:-1])  # never inside a word


def test_a_split_code_block_is_closed_and_reopened_in_its_language():
    code = "```python\n" + "".join(f"x{i} = {i}\n" for i in range(400)) + "```\nthat was the code"
    parts = split_message(code)
    assert len(parts) >= 2
    assert parts[0].startswith("```python\nx0 = 0\n") and parts[0].endswith("\n```")
    assert all(p.startswith("```python\nx") for p in parts[1:])
    assert parts[-1].endswith("```\nthat was the code")
    assert all(p.count("```") % 2 == 0 for p in parts)


def test_a_block_starting_near_the_limit_moves_whole_to_the_next_piece():
    text = "a " * 995 + "\n```py\nprint(1)\n```\n"
    first, second = split_message(text)
    assert "```" not in first and second.startswith("```py\nprint(1)")


_OPENER = re.compile(r"```[\w+#.-]*\n")
pieces = st.one_of(st.text(alphabet="ab `\n", min_size=1, max_size=30), st.sampled_from(["```", "```py\n", "\n\n", "````"]),
                   st.text(alphabet="x", min_size=50, max_size=400))


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=60).map("".join), st.integers(min_value=32, max_value=300))
def test_split_properties(text, limit):
    spans = split_spans(text, limit)
    assert "".join(body for _, body, _ in spans) == text  # nothing lost, nothing moved
    for opener, body, closer in spans:
        piece = opener + body + closer
        assert len(piece) <= limit
        assert piece.count("```") % 2 == 0  # fences balanced in every piece
        assert opener == "" or _OPENER.fullmatch(opener)  # only whole fence lines are added
        assert closer in ("", "```", "\n```")
        assert body or len(spans) == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["word ", "\n", "\n\n", "```js\n", "```\n", "x" * 700]), max_size=40).map("".join))
def test_split_at_discords_limit(text):
    parts = split_message(text)
    assert all(len(p) <= LIMIT for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
