"""The interactive loop shared by `simulacra chat` (a bare model) and `simulacra chat EM`.

A turn runs as a task on one event loop; Ctrl-C cancels the task (the reply stops, the session
lives on), Ctrl-C at an empty prompt or Ctrl-D leaves.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable

from simulacra.cli.app import console
from simulacra.types import Message

HELP = "/reset  forget the conversation   /save FILE  write it as a log   /retry  resample the last reply\n" \
       "/prompt  show the last prompt      /quit  leave (or Ctrl-D)"


class Session:
    """What a REPL drives: a transcript, a way to reply, a way to render it."""

    def __init__(self, you: str, reply: Callable[[list[Message], Callable[[str], None]], Awaitable[list[Message]]],
                 render: Callable[[list[Message]], str]):
        self.you, self.reply, self.render = you, reply, render
        self.transcript: list[Message] = []
        self.last_prompt = ""


def run_repl(session: Session, banner: str) -> None:
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    console.note(banner + "  (/help for commands)")
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                line = input(f"<{session.you}> ")
            except EOFError:
                console.write("\n")
                return
            except KeyboardInterrupt:
                console.write("\n")
                return
            if not line.strip():
                continue
            if line.startswith("/"):
                if _command(session, line.strip()) == "quit":
                    return
                if not line.strip().startswith("/retry"):
                    continue
            else:
                session.transcript.append(Message(session.you, line))
            _turn(loop, session)
    finally:
        loop.close()


def _turn(loop: asyncio.AbstractEventLoop, session: Session) -> None:
    task = loop.create_task(session.reply(list(session.transcript), console.write))
    try:
        messages = loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()
        try:
            loop.run_until_complete(task)
        except (asyncio.CancelledError, KeyboardInterrupt):
            pass
        console.note("\n[stopped]")
        return
    except Exception as e:  # a failed reply must not end the session
        from simulacra.errors import SimulacraError

        if not isinstance(e, SimulacraError):
            raise
        console.err(str(e))
        return
    console.write("\n")
    session.transcript.extend(messages)


def _command(session: Session, line: str) -> str | None:
    name, _, arg = line.partition(" ")
    if name in ("/quit", "/exit"):
        return "quit"
    if name == "/help":
        console.note(HELP)
    elif name == "/reset":
        session.transcript.clear()
        console.note("[conversation forgotten]")
    elif name == "/save":
        if not arg:
            console.err("usage: /save FILE")
        else:
            Path(arg).write_text(session.render(session.transcript), encoding="utf-8")
            console.note(f"[saved {len(session.transcript)} messages to {arg}]")
    elif name == "/prompt":
        console.write((session.last_prompt or "(no prompt yet)") + "\n")
    elif name == "/retry":
        while session.transcript and session.transcript[-1].author != session.you:
            session.transcript.pop()
    else:
        console.err(f"unknown command {name}; /help lists them")
    return None
