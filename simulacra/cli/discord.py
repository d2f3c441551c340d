"""`simulacra discord EM`: run an em as a Discord bot.

The bot's settings are the em's ``interfaces: [{name: discord, ...}]`` entry; its token is the
file ``discord_token`` in the em folder or $DISCORD_TOKEN, and is never printed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from simulacra.cli.app import app, console
from simulacra.cli.complete import MODEL_HELP


@app.command()
def discord(
    em: Path = typer.Argument(..., help="the em folder"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="run the em on this model. " + MODEL_HELP),
    check: bool = typer.Option(False, "--check", help="check the config and token, then stop without connecting"),
) -> None:
    """Run an em as a Discord bot (needs the discord extra and a bot token)."""
    from simulacra.ems import Em
    from simulacra.errors import require
    from simulacra.serve.discord_bot import discord_token, run_bot
    from simulacra.serve.discord_policy import discord_config

    loaded = Em.load(em)
    config = discord_config(loaded.config.interfaces, loaded.folder / "config.yaml")
    token = discord_token(loaded)
    require("discord", "discord")
    triggers = [name for name, on in (("ping", config.reply_on_ping), ("name", config.reply_on_name),
                                      ("regex", bool(config.reply_on_regex)), ("random", bool(config.reply_on_random)),
                                      ("sim", config.reply_on_sim)) if on]
    console.stderr.print(f"{loaded.name}: replies on {', '.join(triggers) or 'direct messages only'}; "
                         f"bot chain {config.max_bot_chain}, cooldown {config.cooldown_s:g}s; "
                         f"token of {len(token)} characters")
    if check:
        return
    from simulacra.engine import load_engine

    engine = load_engine(model or loaded.config.continuation_model or None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    console.stderr.print(f"connecting {loaded.name} ({engine.name}); Ctrl-C stops")
    run_bot(loaded, engine, token, config)
