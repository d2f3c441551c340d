"""An em as a Discord bot (discord.py, the ``discord`` extra).

    message ─ ReplyPolicy (ping, name, regex, random; loop guard) ─ [ask the model] ─
    channel history → the em's history ─ the em speaks ─ thoughts dropped, long text split ─ send

``EmBot`` holds the em's side and talks to discord.py objects only through ``message.channel``
(``history``, ``typing``, ``send``), so it runs against stand-ins in tests; ``run_bot`` wires it
to a real ``discord.Client``. Replies in one channel never overlap: a trigger that arrives while
the em is writing there is answered once more afterwards, with the history as it is by then.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from typing import TYPE_CHECKING, Any, Callable

from simulacra.errors import ConfigError, SimulacraError, require
from simulacra.serve.discord_policy import (DiscordConfig, ReplyPolicy, discord_config, incoming, outgoing,
                                            to_history)
from simulacra.types import Completer, Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em

log = logging.getLogger(__name__)
TOKEN_ENV = "DISCORD_TOKEN"


class EmBot:
    def __init__(self, em: "Em", engine: Completer, config: DiscordConfig | None = None, *,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic):
        self.em, self.engine = em, engine
        self.config = config or discord_config(em.config.interfaces, em.folder / "config.yaml")
        self.rng, self.clock = rng or random.Random(), clock
        self.policy: ReplyPolicy | None = None  # made on connect, once the bot knows its own id
        self._locks: dict[int, asyncio.Lock] = {}
        self._again: set[int] = set()

    def connected(self, me_id: int, names: list[str]) -> None:
        self.me_id = me_id
        self.policy = ReplyPolicy(self.config, me_id, [self.em.name, *names], rng=self.rng, clock=self.clock)

    async def on_message(self, message: Any) -> str | None:
        """Handle one message the bot sees (its own too); the reason it replied, or None."""
        if self.policy is None:
            return None
        msg = incoming(message)
        self.policy.observe(msg)
        reason = self.policy.decide(msg)
        if reason is None and self.config.reply_on_sim and self.policy.eligible(msg):
            reason = "sim" if await self._model_says_me(message.channel) else None
        if reason is not None:
            log.info("replying in %s (%s)", msg.channel_name or msg.channel_id, reason)
            await self.reply(message.channel)
        return reason

    async def history(self, channel: Any) -> list[Message]:
        recent = [m async for m in channel.history(limit=self.config.history_limit)]  # newest first
        return to_history(reversed(recent), self.me_id, self.em.name,
                          ignore_dotted=self.config.ignore_dotted_messages)

    async def reply(self, channel: Any) -> list[str]:
        """Speak in ``channel``; what was sent."""
        lock = self._locks.setdefault(channel.id, asyncio.Lock())
        if lock.locked():
            self._again.add(channel.id)
            return []
        sent: list[str] = []
        async with lock:
            while True:
                self._again.discard(channel.id)
                sent += await self._reply_once(channel)
                if channel.id not in self._again:
                    return sent

    async def _reply_once(self, channel: Any) -> list[str]:
        from simulacra.world.scene import speak

        async with channel.typing():
            history = await self.history(channel)
            result = await speak(self.em, history, self.engine, next_author=self.em.name)
        parts = outgoing(result.messages)  # thoughts are never sent
        for part in parts:
            await channel.send(part)
        if parts:
            self.policy.replied(channel.id)
        elif result.rejected:
            log.info("%s stays quiet: %d draft(s) muffled", self.em.name, len(result.rejected))
        return parts

    async def _model_says_me(self, channel: Any) -> bool:
        from simulacra.chat import speakers
        from simulacra.world.turns import predict_speaker

        history = await self.history(channel)
        people = [self.em.name, *speakers(history, exclude=self.em.name)]
        guess = await predict_speaker(self.engine, history, people, seed=self.rng.randrange(2**31), tries=1)
        return guess == self.em.name


def discord_token(em: "Em") -> str:
    """The bot token: the em's ``discord_token`` (a key file in its folder) or $DISCORD_TOKEN."""
    secret = em.config.discord_token
    token = (secret.get_secret_value() if secret is not None else "") or os.environ.get(TOKEN_ENV, "")
    if not token.strip():
        raise ConfigError(f"no Discord token for {em.name}: put it in a file named discord_token in "
                          f"{em.folder} or set {TOKEN_ENV}")
    return token.strip()


def run_bot(em: "Em", engine: Completer, token: str, config: DiscordConfig | None = None) -> None:
    """Connect and serve until interrupted."""
    discord = require("discord", "discord")
    bot = EmBot(em, engine, config)
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: switch it on for the bot in the developer portal
    client = discord.Client(intents=intents)

    @client.event
    async def on_ready() -> None:
        user = client.user
        bot.connected(user.id, [user.name, user.display_name])
        log.info("%s is on Discord as %s", em.name, user)

    @client.event
    async def on_message(message) -> None:
        try:
            await bot.on_message(message)
        except SimulacraError as e:  # one failed reply must not take the bot down
            log.warning("%s could not reply: %s", em.name, e)

    try:
        client.run(token, log_handler=None)
    except discord.LoginFailure:
        raise ConfigError(f"Discord rejected the token for {em.name}; copy it again from the developer "
                          "portal (Bot > Reset Token)") from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError("Discord refused the Message Content intent; switch it on under Bot > "
                          "Privileged Gateway Intents in the developer portal") from None
