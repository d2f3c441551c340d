"""The Discord interface's decisions, free of the network: its config, when the em replies, how
a channel's messages become the em's history, and how a reply is cut into Discord messages.

Reading Discord messages is duck-typed (``.author.id``, ``.content``, ``.mentions``...), so
discord.py is never imported here; tests feed real ``discord.Message`` objects all the same.

The loop guard: bots answering bots can go on forever. A run of consecutive bot messages in a
channel (this em's included) never grows past ``max_bot_chain`` through this em's replies, and
after replying in a channel the em answers no bot there for ``cooldown_s`` seconds. A person's
message ends the run. People are never kept waiting by either.
"""
from __future__ import annotations

import bisect
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulacra.errors import ConfigError
from simulacra.types import Message
from simulacra.world.turns import mentioned

LIMIT = 2000  # Discord's most characters in one message


class DiscordConfig(BaseModel):
    """One ``interfaces:`` entry ``{name: discord, ...}`` of an em's config.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["discord"] = "discord"
    reply_on_ping: bool = True  # an @mention of the bot, or a reply to one of its messages
    reply_on_name: bool = True  # the em's name, the bot's name or a nickname as a word
    nicknames: list[str] = []
    reply_on_regex: str | None = None  # re.search over the message
    reply_on_random: float = Field(0.0, description="chance of replying to any message; N > 1: one in N")
    reply_on_sim: bool = False  # ask the model whether the em would speak next (Chapter II)
    ignore_dotted_messages: bool = True  # ".text" is out of character: neither answered nor read
    max_bot_chain: int | None = Field(3, ge=0, description="None: no limit; 0: never answer bots")
    cooldown_s: float = Field(30.0, ge=0)
    history_limit: int = Field(50, ge=1, le=1000)
    channels: list[int | str] = []  # channel ids or names; empty: every channel the bot can read
    dms: bool = True  # answer direct messages (always, as they are addressed to the em)

    @field_validator("reply_on_regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"bad regex: {e}") from None
        return v

    @field_validator("reply_on_random", mode="before")
    @classmethod
    def _chance(cls, v: Any) -> Any:
        if v is False or v is None:
            return 0.0
        if v is True:
            raise ValueError("give a chance such as 0.05, or N for one in N")
        if isinstance(v, (int, float)) and v > 1:
            return 1.0 / v  # Chapter II writes reply_on_random: 53 for one message in 53
        if isinstance(v, (int, float)) and v < 0:
            raise ValueError("must be 0 or more")
        return v


def discord_config(interfaces: Sequence[Any], source: Path | str) -> DiscordConfig:
    """The em's discord entry under ``interfaces:`` (defaults when it has none)."""
    from simulacra.ems.config import validate

    found = [(i, d) for i, d in enumerate(interfaces) if isinstance(d, dict) and d.get("name") == "discord"]
    if len(found) > 1:
        raise ConfigError(f"{source}: interfaces has {len(found)} discord entries; keep one")
    if not found:
        return DiscordConfig()
    i, data = found[0]
    return validate(DiscordConfig, data, source, where=f"interfaces[{i}]")


# -- deciding -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Incoming:
    """What the policy needs to know about a message."""

    channel_id: int
    author_id: int
    author_name: str
    content: str
    is_bot: bool = False
    mentions: frozenset[int] = frozenset()
    reply_to_author: int | None = None  # who wrote the message this one replies to, if known
    is_dm: bool = False
    channel_name: str | None = None


def incoming(message: Any) -> Incoming:
    """A discord.Message (or anything shaped like one) as an Incoming."""
    ref = getattr(message, "reference", None)
    resolved = getattr(ref, "resolved", None) if ref is not None else None
    channel = message.channel
    return Incoming(
        channel_id=channel.id, author_id=message.author.id, author_name=display_name(message.author),
        content=message.content or "", is_bot=bool(getattr(message.author, "bot", False)),
        mentions=frozenset(u.id for u in getattr(message, "mentions", ())),
        reply_to_author=getattr(getattr(resolved, "author", None), "id", None),
        is_dm=getattr(message, "guild", None) is None, channel_name=getattr(channel, "name", None))


class ReplyPolicy:
    """Whether the em replies to a message. Call ``observe`` for every message the bot sees (its
    own included), in order, then ``decide``; call ``replied`` after sending."""

    def __init__(self, config: DiscordConfig, me_id: int, names: Iterable[str],
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic):
        self.config, self.me_id = config, me_id
        self.names = list(dict.fromkeys(n for n in [*names, *config.nicknames] if n and n.strip()))
        self.rng, self.clock = rng or random.Random(), clock
        self.chain: dict[int, int] = {}  # channel -> consecutive bot messages up to now
        self.replied_at: dict[int, float] = {}

    def observe(self, msg: Incoming) -> None:
        if self._dotted(msg):
            return
        self.chain[msg.channel_id] = self.chain.get(msg.channel_id, 0) + 1 if msg.is_bot else 0

    def eligible(self, msg: Incoming) -> bool:
        """Whether the em may answer ``msg`` at all: not its own, not dotted, in a channel it
        serves, and (for a bot's message) within the loop guard."""
        if msg.author_id == self.me_id or self._dotted(msg) or not self._allowed(msg):
            return False
        return not msg.is_bot or self._bot_ok(msg.channel_id)

    def decide(self, msg: Incoming) -> str | None:
        """The reason to reply ("dm", "ping", "name", "regex", "random"), or None. Asking the
        model (``reply_on_sim``) is the caller's, for eligible messages this turns down."""
        c = self.config
        if not self.eligible(msg):
            return None
        if msg.is_dm:
            return "dm"
        if c.reply_on_ping and (self.me_id in msg.mentions or msg.reply_to_author == self.me_id):
            return "ping"
        if c.reply_on_name and mentioned(msg.content, self.names):
            return "name"
        if c.reply_on_regex and re.search(c.reply_on_regex, msg.content):
            return "regex"
        if c.reply_on_random and self.rng.random() < c.reply_on_random:
            return "random"
        return None

    def replied(self, channel_id: int) -> None:
        self.replied_at[channel_id] = self.clock()

    def _bot_ok(self, channel_id: int) -> bool:
        limit = self.config.max_bot_chain
        if limit is not None and self.chain.get(channel_id, 0) + 1 > limit:
            return False
        last = self.replied_at.get(channel_id)
        return last is None or self.clock() - last >= self.config.cooldown_s

    def _dotted(self, msg: Incoming) -> bool:
        return self.config.ignore_dotted_messages and msg.content.startswith(".")

    def _allowed(self, msg: Incoming) -> bool:
        if msg.is_dm:
            return self.config.dms
        wanted = self.config.channels
        return not wanted or msg.channel_id in wanted or str(msg.channel_id) in wanted or \
            (msg.channel_name is not None and (msg.channel_name in wanted or f"#{msg.channel_name}" in wanted))


# -- history ------------------------------------------------------------------------------

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_KEEP_TYPES = ("default", "reply")


def display_name(user: Any) -> str:
    """A Discord user's name as it shows in the channel, writable in an IRC log."""
    name = getattr(user, "display_name", None) or getattr(user, "name", "") or ""
    name = re.sub(r"[<>\r\n]", "", name).strip()
    return name or f"user{getattr(user, 'id', '')}"


def to_history(messages: Iterable[Any], me_id: int, em_name: str, *, ignore_dotted: bool = True) -> list[Message]:
    """Channel messages, oldest first, as the em's history: its own messages under its name,
    everyone else (bots included) under their display names, mentions written ``@Name``."""
    out: list[Message] = []
    for m in messages:
        if getattr(getattr(m, "type", None), "name", "default") not in _KEEP_TYPES:
            continue  # joins, pins, boosts: not conversation
        content = clean_content(m, me_id, em_name)
        if ignore_dotted and content.startswith("."):
            continue
        files = [f"[attachment: {a.filename}]" for a in getattr(m, "attachments", ())]
        content = "\n".join([content, *files]).strip() if files else content.strip()
        if not content:
            continue
        mine = m.author.id == me_id
        author = em_name if mine else display_name(m.author)
        if not mine and author.casefold() == em_name.casefold():
            author += "_"  # someone sharing the em's name must not read as the em
        ref = getattr(m, "reference", None)
        created = getattr(m, "created_at", None)
        out.append(Message(author, content, timestamp=created.timestamp() if created else 0.0, id=str(m.id),
                           reply_to=str(ref.message_id) if ref is not None and ref.message_id else None))
    return out


def clean_content(message: Any, me_id: int, em_name: str) -> str:
    names = {u.id: (em_name if u.id == me_id else display_name(u)) for u in getattr(message, "mentions", ())}
    text = _USER_MENTION.sub(lambda m: "@" + names.get(int(m.group(1)), "someone"), message.content or "")
    return _EMOJI.sub(r":\1:", text)


def outgoing(messages: Iterable[Message], limit: int = LIMIT) -> list[str]:
    """The em's reply as Discord messages: thoughts never, actions in italics, long ones split."""
    out: list[str] = []
    for m in messages:
        if m.kind == "thought" or not m.content.strip():
            continue
        text = f"*{m.content.strip()}*" if m.kind == "action" else m.content.strip()
        out += [part for part in split_message(text, limit) if part.strip()]
    return out


# -- splitting ----------------------------------------------------------------------------

_FENCE = "```"
_LANG = re.compile(r"[\w+#.-]{1,20}(?=\n)")
_RUN = re.compile(r"`{3,}")


def split_message(text: str, limit: int = LIMIT) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, preferring paragraph, then line,
    then word boundaries; a code block cut in two is closed and reopened (same language)."""
    return [opener + body + closer for opener, body, closer in split_spans(text, limit)]


def split_spans(text: str, limit: int = LIMIT) -> list[tuple[str, str, str]]:
    """``split_message`` as (added opener, original text, added closer) triples: the bodies
    joined are ``text``, and every piece holds an even number of ``` fences."""
    if limit < 32:
        raise ConfigError(f"a message limit of {limit} is too small to split code blocks; use 32 or more")
    fences = _Fences(text)
    spans: list[tuple[str, str, str]] = []
    pos = 0
    while True:
        opener = f"{_FENCE}{fences.lang(pos)}\n" if fences.inside(pos) else ""
        rest = len(text) - pos + (4 if fences.inside(len(text)) else 0)
        cut = len(text) if len(opener) + rest <= limit else \
            pos + _choose_cut(text, fences, pos, limit - len(opener) - 4)
        body = text[pos:cut]
        closer = "" if not fences.inside(cut) else _FENCE if body.endswith("\n") else "\n" + _FENCE
        spans.append((opener, body, closer))
        pos = cut
        if pos >= len(text):
            return spans


class _Fences:
    """Where code blocks open and close. A run of n backticks (n >= 3) is n // 3 fences, as
    ``str.count`` sees them; pieces are only cut between runs or 3k backticks into one, so each
    piece's own count of fences agrees with this whole-text view."""

    def __init__(self, text: str):
        self.runs: list[tuple[int, int, int, str]] = []  # start, end, fences before it, language if it opens
        before = 0
        for m in _RUN.finditer(text):
            n = (m.end() - m.start()) // 3
            opens = (before + n) % 2 == 1
            lang = _LANG.match(text, m.end())
            self.runs.append((m.start(), m.end(), before, lang.group(0) if opens and lang else ""))
            before += n
        self.text = text
        self.starts = [r[0] for r in self.runs]

    def _count(self, i: int) -> tuple[int, tuple | None]:
        """Fences before position i, and the run holding or ending before i."""
        k = bisect.bisect_left(self.starts, i) - 1
        if k < 0:
            return 0, None
        a, b, before, _ = self.runs[k]
        return before + (min(i, b) - a) // 3, self.runs[k]

    def inside(self, i: int) -> bool:
        return self._count(i)[0] % 2 == 1

    def lang(self, i: int) -> str:
        count, run = self._count(i)
        return run[3] if run is not None and count % 2 == 1 and i >= run[1] else ""

    def safe(self, i: int, strict: bool) -> bool:
        """Whether a piece may end at i: never inside a fence; when strict, never between a
        block's opening fence and the end of its line (the block moves to the next piece)."""
        k = bisect.bisect_left(self.starts, i) - 1
        if k < 0:
            return True
        a, b, before, _ = self.runs[k]
        if a < i < b and (i - a) % 3:
            return False
        if strict and (before + (b - a) // 3) % 2 == 1 and a < i:
            nl = self.text.find("\n", b)
            return i > (len(self.text) if nl < 0 else nl + 1)
        return True


def _choose_cut(text: str, fences: _Fences, pos: int, room: int) -> int:
    """How much of text[pos:] goes in this piece: 1..room characters."""
    window = text[pos:pos + room]
    for sep, floor in (("\n\n", room // 2), ("\n", room // 2), (" ", room // 2),
                       ("\n\n", 0), ("\n", 0), (" ", 0)):
        end = len(window)
        while (i := window.rfind(sep, 0, end)) >= 0 and i + len(sep) > floor:
            if fences.safe(pos + i + len(sep), strict=True):
                return i + len(sep)
            end = i + len(sep) - 1
    for strict in (True, False):
        for c in range(len(window), 0, -1):
            if fences.safe(pos + c, strict):
                return c
    return len(window)
