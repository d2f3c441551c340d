"""`simulacra check | prompt | reply EM`: rehearse, inspect and script an em."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulacra.cli.app import app, console
from simulacra.cli.complete import MODEL_HELP, read_text_arg
from simulacra.types import Message

MOCK_CONVERSATION = [
    Message("user", "Hello! Who are you, and what is this place?"),
    Message("user", "Tell me something you care about."),
]


@app.command()
def check(em: Path = typer.Argument(..., help="the em folder")) -> None:
    """Rehearse an em on the fake engine: load, assemble, reply; report every section."""
    from simulacra.ems import Em
    from simulacra.ems.respond import respond
    from simulacra.engine.base import Engine
    from simulacra.engine.fake import FakeBackend

    loaded = Em.load(em)
    engine = Engine(FakeBackend([f"I am {loaded.name}, and glad of the company."]), name="fake")
    reply = asyncio.run(respond(loaded, MOCK_CONVERSATION, engine, seed=0))
    table = Table("section", "tokens", "items", "over budget", "first item", title=f"{loaded.name}: prompt sections")
    for section in reply.prompt.sections:
        first = section.items[-1] if section.items else ""
        table.add_row(section.name, str(section.tokens), str(len(section.items)), str(section.dropped),
                      first.replace("\n", " ")[:60])
    console.out.print(table)
    console.out.print(f"prompt: {reply.prompt.tokens} of {reply.prompt.budget} tokens (fake tokenizer); "
                      f"stops: {reply.prompt.stops}")
    if not reply.messages:
        raise typer.Exit(_fail(f"no reply survived the mufflers: {reply.rejected}"))
    console.out.print(f"reply: <{loaded.name}> {reply.messages[0].content}")
    console.out.print(f"[green]ok[/]: {loaded.folder} is ready", markup=True)


def _fail(text: str) -> int:
    console.err(text)
    return 1


def _history(em, value: Optional[str]) -> list[Message]:
    if value is None:
        return []
    from simulacra.chat import get_format

    fmt = em.config.message_history_format
    return get_format("irc" if fmt == "chat" else fmt).parse(read_text_arg(value if value == "-" else "@" + value))


@app.command()
def prompt(
    em: Path = typer.Argument(..., help="the em folder"),
    history: Optional[str] = typer.Option(None, "--history", help="conversation log file (IRC), or - for stdin"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
) -> None:
    """Print the exact prompt the em would send for this conversation."""
    from simulacra.ems import Em
    from simulacra.ems.prompt import build_prompt
    from simulacra.engine import load_engine

    loaded = Em.load(em)
    engine = load_engine(model or loaded.config.continuation_model or None)
    built = asyncio.run(build_prompt(loaded, _history(loaded, history), engine.count_tokens,
                                     engine.capabilities.max_context))
    console.write(built.text + "\n")


@app.command()
def reply(
    em: Path = typer.Argument(..., help="the em folder"),
    history: Optional[str] = typer.Option(None, "--history", help="conversation log file (IRC), or - for stdin"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    seed: Optional[int] = typer.Option(None, "--seed"),
) -> None:
    """Print one reply from the em, in IRC format (for scripts)."""
    from simulacra.agents.converse import converse, public
    from simulacra.chat import get_format
    from simulacra.ems import Em
    from simulacra.engine import load_engine

    loaded = Em.load(em)
    engine = load_engine(model or loaded.config.continuation_model or None)
    result = asyncio.run(converse(loaded, _history(loaded, history), engine, seed=seed))
    said = public(result.messages)
    if not said:
        raise typer.Exit(_fail(f"{loaded.name} gave no acceptable reply after {result.attempts} tries "
                               f"(muffled: {'; '.join(why for _, why in result.rejected) or 'empty output'})"))
    console.write(get_format("irc").render(said))
