"""`simulacra chat [EM]`: talk to a bare model, or to an em when given its folder."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from simulacra.cli.app import app, console
from simulacra.cli.complete import MODEL_HELP
from simulacra.cli.repl import Session, run_repl
from simulacra.types import Message, Sampling


@app.command()
def chat(
    em: Optional[Path] = typer.Argument(None, help="an em folder; without one, chat with the bare model"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    system: Optional[str] = typer.Option(None, "--system", help="system prompt (bare model only)"),
    fmt: Optional[str] = typer.Option(None, "--format", help="irc | colon | chat (default: chat if the model can)"),
    name: str = typer.Option("user", "--name", help="your name in the conversation"),
    temperature: float = typer.Option(0.7, "--temperature", "-t"),
    max_tokens: int = typer.Option(200, "--max-tokens"),
    seed: Optional[int] = typer.Option(None, "--seed"),
) -> None:
    """Chat interactively, streaming replies; Ctrl-C stops a reply, Ctrl-D leaves."""
    from simulacra.engine import load_engine

    if em is not None:
        session, banner = em_session(em, model, name, seed)
    else:
        engine = load_engine(model)
        session = model_session(engine, name, system, fmt, Sampling(temperature=temperature, max_tokens=max_tokens,
                                                                     seed=seed, min_p=0.05))
        banner = f"chatting with {engine.name}"
    run_repl(session, banner)


def em_session(folder: Path, model: Optional[str], you: str, seed: Optional[int]) -> tuple[Session, str]:
    from simulacra.agents.converse import converse, public
    from simulacra.ems import Em
    from simulacra.ems.prompt import em_format
    from simulacra.engine import load_engine

    em = Em.load(folder)
    engine = load_engine(model or em.config.continuation_model or None)
    fmt = em_format(em)
    show_thoughts = em.config.thinking.show

    async def reply(transcript: list[Message], write) -> list[Message]:
        started = False

        def stream(text: str) -> None:  # the speaker prefix goes after any thought
            nonlocal started
            if not started:
                write(fmt.prefix(em.name) + " ")
                started, text = True, text.lstrip()  # the model's own leading space follows the prefix
            write(text)

        def thought(text: str) -> None:  # private: dimmed, and only when the em's config allows it
            nonlocal started
            if started:  # a critique came after a streamed draft: the rewrite starts a new line
                write("\n")
                started = False
            if show_thoughts:
                console.out.print(f"* {em.name} thinks: {text}", style="dim", markup=False)

        result = await converse(em, transcript, engine, on_text=stream, seed=seed, on_thought=thought)
        session.last_prompt = result.prompt.text
        said = public(result.messages)
        if result.rejected and said:
            write(f"\n[{len(result.rejected)} draft(s) muffled; kept: {' / '.join(m.content for m in said)}]")
        return result.messages  # thoughts stay in the transcript: the em sees its own next turn

    session = Session(you, reply, lambda messages: fmt.render(public(messages)))
    return session, f"chatting with {em.name} ({engine.name})"


def model_session(engine, you: str, system: Optional[str], fmt_name: Optional[str], sampling: Sampling) -> Session:
    from simulacra.chat import completion_prompt, get_format, parse_reply, to_chat_turns

    use_chat = (fmt_name or ("chat" if engine.capabilities.can_chat else "irc")) == "chat"
    fmt = get_format("irc" if use_chat else fmt_name or "irc")
    bot = "assistant"

    async def reply(transcript: list[Message], write) -> list[Message]:
        text = ""
        if use_chat:
            turns = to_chat_turns(transcript, bot, system=system)
            session.last_prompt = "\n".join(f"{t['role']}: {t['content']}" for t in turns)
            stream = engine.chat(turns, sampling)
        else:
            prompt, stops = completion_prompt(transcript, bot, fmt, system=system)
            session.last_prompt = prompt
            stream = engine.complete(prompt, dataclasses.replace(sampling, stop=tuple(stops)))
        write(fmt.prefix(bot) + " ")
        async for chunk in stream:
            write(chunk.text if text else chunk.text.lstrip())
            text += chunk.text
        if use_chat:
            return [Message(bot, text.strip())] if text.strip() else []
        return parse_reply(bot, text, fmt)

    session = Session(you, reply, fmt.render)
    return session
