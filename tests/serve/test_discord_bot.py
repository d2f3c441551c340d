"""The Discord bot without a network: real discord.Message objects built from gateway payloads
(with a minimal ConnectionState stand-in), a channel stand-in that records what is sent."""
from __future__ import annotations

import datetime
import itertools
import subprocess
import sys
from contextlib import asynccontextmanager

import pytest
import yaml

discord = pytest.importorskip("discord")

from simulacra.engine.base import Engine  # noqa: E402
from simulacra.engine.fake import FakeBackend  # noqa: E402
from simulacra.ems.respond import Reply  # noqa: E402
from simulacra.serve.discord_bot import EmBot, discord_token  # noqa: E402
from simulacra.serve.discord_policy import LIMIT, DiscordConfig, incoming, to_history  # noqa: E402
from simulacra.types import Message  # noqa: E402

MARA, ANN, BOB = 1, 2, 3  # user ids: the em's bot, a person, another bot
START = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)


class State:
    """What discord.Message, Member and Guild read from a ConnectionState."""

    self_id = MARA
    http = None
    shard_count = None
    cache_guild_expressions = False
    member_cache_flags = discord.MemberCacheFlags.none()
    _intents = discord.Intents.default()

    def store_user(self, data, *, cache=True):
        return discord.User(state=self, data=data)

    create_user = store_user

    def _get_guild(self, guild_id):
        return None


def user(uid, name, global_name=None, bot=False):
    return {"id": str(uid), "username": name, "global_name": global_name, "discriminator": "0",
            "avatar": None, "bot": bot}


def member(nick):
    return {"nick": nick, "roles": [], "joined_at": START.isoformat(), "deaf": False, "mute": False, "flags": 0}


USERS = {MARA: (user(MARA, "mara-bot", bot=True), "Mara"), ANN: (user(ANN, "ann99", "Ann"), "Annie"),
         BOB: (user(BOB, "bobbot", bot=True), "Bob the Bot")}


class Channel:
    """A guild text channel: history newest first, typing, send (which posts as the em's bot)."""

    def __init__(self, dm=False, cid=10, name="general"):
        self.state = State()
        self.guild = None if dm else discord.Guild(data={"id": "5", "name": "mesh"}, state=self.state)
        self.id, self.name = cid, name
        self.messages: list = []
        self.raw: dict[int, dict] = {}  # payloads by id, for replies that quote them
        self.sent: list[str] = []
        self.typed = 0
        self._ids = itertools.count(1)

    def post(self, author, content, *, mentions=(), reply_to=None, type=0, attachments=()):
        n = next(self._ids)
        data = {"id": str(discord.utils.time_snowflake(START + datetime.timedelta(minutes=n))),
                "channel_id": str(self.id), "type": type, "content": content, "timestamp": START.isoformat(),
                "author": USERS[author][0], "mentions": [{**USERS[u][0], "member": member(USERS[u][1])} for u in mentions],
                "attachments": [{"id": str(90 + i), "filename": f, "size": 1, "url": "u", "proxy_url": "p"}
                                for i, f in enumerate(attachments)]}
        if self.guild is not None:
            data["member"] = member(USERS[author][1])
        if reply_to is not None:
            data["message_reference"] = {"message_id": str(reply_to.id), "channel_id": str(self.id)}
            data["referenced_message"] = self.raw[reply_to.id]
        message = discord.Message(state=self.state, channel=self, data=data)
        self.raw[message.id] = {k: v for k, v in data.items() if k != "member"}
        self.messages.append(message)
        return message

    async def history(self, limit):
        for m in reversed(self.messages[-limit:]):
            yield m

    @asynccontextmanager
    async def typing(self):
        self.typed += 1
        yield

    async def send(self, text):
        assert len(text) <= LIMIT
        self.sent.append(text)
        return self.post(MARA, text)


# -- mapping --------------------------------------------------------------------------------

def test_a_message_maps_to_what_the_policy_needs():
    ch = Channel()
    mine = ch.post(MARA, "I am mara")
    m = ch.post(BOB, "hey <@1>", mentions=[MARA], reply_to=mine)
    inc = incoming(m)
    assert (inc.author_id, inc.author_name, inc.is_bot, inc.is_dm) == (BOB, "Bob the Bot", True, False)
    assert inc.mentions == {MARA} and inc.reply_to_author == MARA
    assert (inc.channel_id, inc.channel_name) == (10, "general")
    dm = Channel(dm=True)
    assert incoming(dm.post(ANN, "psst")).is_dm and incoming(dm.post(ANN, "psst")).author_name == "Ann"


def test_channel_history_becomes_the_ems_history():
    ch = Channel()
    first = ch.post(ANN, "hello <@1> and <@!3> <:wave:123>", mentions=[MARA, BOB])
    ch.post(ANN, "", type=7)  # "Annie joined the server": not conversation
    ch.post(BOB, ".ooc restarting")
    ch.post(MARA, "Hello Annie.")
    ch.post(BOB, "look", attachments=["cat.png"], reply_to=first)
    history = to_history(ch.messages, MARA, "mara")
    assert [(m.author, m.content) for m in history] == [
        ("Annie", "hello @mara and @Bob the Bot :wave:"),
        ("mara", "Hello Annie."),
        ("Bob the Bot", "look\n[attachment: cat.png]"),
    ]
    assert history[-1].reply_to == str(first.id) and history[0].id == str(first.id)
    assert history[0].timestamp < history[-1].timestamp


def test_a_person_named_like_the_em_is_not_the_em():
    ch = Channel()
    ch.post(ANN, "I am also called Annie")
    assert to_history(ch.messages, MARA, "annie")[0].author == "Annie_"


# -- the bot --------------------------------------------------------------------------------

def make_bot(make_em, tmp_path, reply, name="mara", me=MARA, config=None, **kw):
    em = make_em(tmp_path, {"mufflers": []}, name=name)
    backend = FakeBackend(reply if callable(reply) else [reply])
    bot = EmBot(em, Engine(backend), DiscordConfig(**(config or {})), **kw)
    bot.connected(me, [USERS[me][0]["username"]])
    return bot, backend


async def test_a_ping_gets_a_reply_built_from_the_channel_history(make_em, tmp_path):
    bot, backend = make_bot(make_em, tmp_path, " Welcome, Annie.\n<Annie> words for Annie")
    ch = Channel()
    await bot.on_message(ch.post(ANN, "lovely weather"))
    assert ch.sent == []
    assert await bot.on_message(ch.post(ANN, "what do you say, <@1>?", mentions=[MARA])) == "ping"
    assert ch.sent == ["Welcome, Annie."] and ch.typed == 1
    assert backend.prompts[0].endswith("<Annie> lovely weather\n<Annie> what do you say, @mara?\n<mara>")


async def test_long_replies_are_split_and_thoughts_never_sent(make_em, tmp_path, monkeypatch):
    import simulacra.world.scene as scene

    async def speak(em, history, engine, **kw):
        return Reply([Message("mara", "the plan is to lie", kind="thought"), Message("mara", "x " * 2500)], None)

    monkeypatch.setattr(scene, "speak", speak)
    bot, _ = make_bot(make_em, tmp_path, "unused")
    ch = Channel()
    await bot.on_message(ch.post(ANN, "mara, talk to me"))
    assert len(ch.sent) == 3 and all("lie" not in part for part in ch.sent)
    assert "".join(ch.sent).split() == ["x"] * 2500


class SharedChannel(Channel):
    """One channel that two bots post into: ``speaker`` says who is sending."""

    speaker = MARA

    async def send(self, text):
        self.sent.append(text)
        return self.post(self.speaker, text)


class BotView:
    """The shared channel as one bot sees it: sends go out under that bot's id."""

    def __init__(self, shared, me):
        self.shared, self.me = shared, me
        self.id, self.name, self.guild = shared.id, shared.name, shared.guild

    def history(self, limit):
        return self.shared.history(limit)

    def typing(self):
        return self.shared.typing()

    async def send(self, text):
        self.shared.speaker = self.me
        return await self.shared.send(text)


async def two_bots_talk(make_em, tmp_path, clock=None, **config):
    shared = SharedChannel()
    mara, _ = make_bot(make_em, tmp_path, " what do you think, Bob?", config=config, clock=clock or (lambda: 0.0))
    bob, _ = make_bot(make_em, tmp_path, " I agree, Mara.", name="bob", me=BOB, config=config,
                      clock=clock or (lambda: 0.0))
    views = {MARA: BotView(shared, MARA), BOB: BotView(shared, BOB)}
    queue = [shared.post(ANN, "mara, start us off")]
    while queue:
        assert len(shared.messages) < 20, "the bots never stopped talking"
        message = queue.pop(0)
        for me, bot in ((MARA, mara), (BOB, bob)):
            before = len(shared.messages)
            message.channel = views[me]
            await bot.on_message(message)
            queue += shared.messages[before:]
    return [(m.author.id, m.content) for m in shared.messages]


async def test_two_bots_stop_at_the_chain_budget(make_em, tmp_path):
    said = await two_bots_talk(make_em, tmp_path, max_bot_chain=3, cooldown_s=0)
    assert said == [(ANN, "mara, start us off"), (MARA, "what do you think, Bob?"), (BOB, "I agree, Mara."),
                    (MARA, "what do you think, Bob?")]


async def test_two_bots_stop_at_the_cooldown(make_em, tmp_path):
    said = await two_bots_talk(make_em, tmp_path, max_bot_chain=None, cooldown_s=30)
    assert [who for who, _ in said] == [ANN, MARA, BOB]  # mara replied moments ago: she lets bob's answer be


async def test_reply_on_sim_asks_the_model_who_speaks_next(make_em, tmp_path):
    def script(prompt):
        return "mara> hi" if prompt.endswith("\n<") else " Hello there."

    bot, backend = make_bot(make_em, tmp_path, script, config={"reply_on_sim": True, "reply_on_name": False})
    ch = Channel()
    assert await bot.on_message(ch.post(ANN, "anyone around?")) == "sim"
    assert backend.prompts[0] == "<Annie> anyone around?\n<" and ch.sent == ["Hello there."]
    quiet, _ = make_bot(make_em, tmp_path / "q", "Annie> me again", config={"reply_on_sim": True})
    assert await quiet.on_message(ch.post(ANN, "anyone?")) is None


def test_the_token_comes_from_the_key_file_or_the_environment(make_em, tmp_path, monkeypatch):
    from simulacra.errors import ConfigError

    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    em = make_em(tmp_path, {})
    with pytest.raises(ConfigError, match="no Discord token for mara: put it in a file named discord_token"):
        discord_token(em)
    monkeypatch.setenv("DISCORD_TOKEN", "env-token")
    assert discord_token(em) == "env-token"
    keyed = make_em(tmp_path / "k", {}, files={"discord_token": "file-token\n"})
    assert discord_token(keyed) == "file-token"


def test_cli_checks_config_and_token_without_connecting(tmp_path):
    folder = tmp_path / "mara"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"interfaces": [{"name": "discord", "reply_on_random": 0.1}]}))
    env = {k: v for k, v in __import__("os").environ.items() if k != "DISCORD_TOKEN"}
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "simulacra", "discord", str(folder), *a],  # noqa: E731
                                          capture_output=True, text=True, timeout=60, env={**env, **kw})
    missing = run("--check")
    assert missing.returncode == 1 and "no Discord token for mara" in missing.stderr
    assert "Traceback" not in missing.stderr
    (folder / "discord_token").write_text("sekrit-token-value")
    ok = run("--check")
    assert ok.returncode == 0, ok.stderr
    assert "replies on ping, name, random" in ok.stderr and "sekrit" not in ok.stderr + ok.stdout
    (folder / "config.yaml").write_text(yaml.safe_dump({"interfaces": [{"name": "discord", "cooldown": 5}]}))
    bad = run("--check")
    assert bad.returncode == 1 and "unknown key 'interfaces[0].cooldown' (did you mean 'cooldown_s'?)" in bad.stderr
