"""`simulacra scene EM [EM...]`: ems (and you) talking in one shared transcript.

stdout carries the transcript as an IRC log, exactly the messages kept; on a terminal each
em's reply also streams live on stderr while it is written (then gives way to what was kept).
"""
from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import List, Optional

import typer

from simulacra.cli.app import app, console
from simulacra.cli.complete import MODEL_HELP
from simulacra.errors import InputError
from simulacra.storage import atomic_write
from simulacra.types import Message


@app.command()
def scene(
    ems: List[Path] = typer.Argument(..., help="em folders; each em speaks with its own config and model"),
    human: Optional[str] = typer.Option(None, "--human", help="join as NAME and type your turns "
                                        "(empty line: pass, /me ACTION, Ctrl-D: leave)"),
    turns: int = typer.Option(10, "--turns", "-n", min=1, help="the scene ends after this many turns"),
    opening: Optional[str] = typer.Option(None, "--opening", help="how the scene starts: a line of "
                                          "narration, or IRC lines such as '<bob> hi'"),
    save: Optional[Path] = typer.Option(None, "--save", help="write the transcript as an IRC log"),
    policy: str = typer.Option("round-robin", "--policy", help="who speaks next: round-robin | mention | "
                               "random | model"),
    weights: Optional[List[str]] = typer.Option(None, "--weights", help="NAME=WEIGHT for --policy random "
                                                "(talkativeness, default 1; 0 never speaks)"),
    policy_model: Optional[str] = typer.Option(None, "--policy-model", help="model that predicts the next "
                                               "speaker for --policy model (default: the first em's)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="run every em on this model. " + MODEL_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed for turn order and sampling"),
) -> None:
    """Run a group conversation between ems, and optionally you."""
    from rich.markup import escape

    from simulacra.ems import Em
    from simulacra.world import Engines, Participant, Scene, make_policy, run_scene
    from simulacra.world.scene import opening_messages
    from simulacra.world.turns import POLICIES, parse_weights

    if len(ems) + (human is not None) < 2:
        raise InputError("a scene needs at least two participants: give two ems, or one em and --human NAME")
    if policy not in POLICIES:
        make_policy(policy)  # raises the one-line error naming the policies, before any model loads
    loaded = [Em.load(folder) for folder in ems]
    names = [em.name for em in loaded] + ([human.strip()] if human is not None else [])
    Scene(Participant(n) for n in names)  # names writable and distinct, checked before any model loads
    weight_map = parse_weights(weights or [])
    unknown = sorted(set(weight_map) - set(names))
    if unknown:
        raise InputError(f"--weights names {', '.join(unknown)}, not in the scene ({', '.join(names)})")
    engines = Engines()
    people = [Participant(em.name, em, engines.for_em(em, model)) for em in loaded]
    if human is not None:
        people.append(Participant(human.strip()))
    the_scene = Scene(people, opening_messages(opening) if opening else ())
    judge = engines.get(policy_model) if policy_model else people[0].engine
    chooser = make_policy(policy, weights=weight_map, engine=judge if policy == "model" else None)

    console.stderr.print(escape(f"scene with {', '.join(names)}; {turns} turns, {policy} "
                                f"({len(engines)} model(s) loaded)"))
    if the_scene.transcript:
        console.write(the_scene.log())
    view = _View()
    try:
        asyncio.run(_run(run_scene(the_scene, chooser, turns, ask=view.ask, seed=seed, hooks=view.hooks()),
                         engines))
    finally:
        view.stop()
        if save is not None:
            _save(save, the_scene.log())
    silent = [p.name for p in people if p.name in the_scene.participants and p.name not in the_scene.speakers]
    console.stderr.print(escape(f"scene over after {the_scene.turns} turns"
                                + (f"; never spoke: {', '.join(silent)}" if silent else "")
                                + (f"; saved to {save}" if save else "")))


async def _run(coro, engines) -> None:
    try:
        await coro
    finally:
        await engines.aclose()


def _save(path: Path, text: str) -> None:
    """Write atomically, so an interrupted save never leaves half a log."""
    path = path.expanduser()
    try:
        atomic_write(path, text)
    except OSError as e:
        raise InputError(f"cannot save the scene to {path}: {e.strerror}") from None


class _View:
    """The terminal side: live text while an em writes, kept messages on stdout, your turns."""

    def __init__(self):
        from simulacra.chat import IRC

        self.fmt = IRC()
        self.live = None
        self.text = ""
        self.tty_in = sys.stdin.isatty()

    def hooks(self):
        from simulacra.world import Hooks

        return Hooks(on_turn=self.on_turn, on_text=self.on_text, on_done=self.on_done)

    def on_turn(self, p) -> None:
        if p.human or not console.stderr.is_terminal:
            return
        from rich.live import Live
        from rich.text import Text

        self.text = self.fmt.prefix(p.name)
        self.live = Live(Text(self.text, style="dim"), console=console.stderr, transient=True,
                         refresh_per_second=12)
        self.live.start()

    def on_text(self, piece: str) -> None:
        if self.live is not None:
            from rich.text import Text

            self.text += piece
            self.live.update(Text(self.text, style="dim"))

    def on_done(self, p, kept: list[Message], muffled: int) -> None:
        from rich.markup import escape

        from simulacra.world.scene import public

        self.stop()
        said = public(kept)
        if p.em is not None and p.em.config.thinking.show:  # thoughts stay off the transcript
            for thought in (m for m in kept if m.kind == "thought"):
                console.stderr.print(f"[dim italic]({escape(p.name)} thinks: {escape(thought.content)})[/]")
        if not p.human or not self.tty_in:  # a person at a terminal already sees what they typed
            console.write(self.fmt.render(said))
        if not said and not p.human:
            note = f"{p.name} says nothing" + (f"; {muffled} draft(s) muffled" if muffled else "")
            console.stderr.print(f"[dim]({escape(note)})[/]")
        elif muffled:
            console.stderr.print(f"[dim]({muffled} draft(s) by {escape(p.name)} muffled)[/]")

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    async def ask(self, name: str) -> str | None:
        prompt = self.fmt.prefix(name) + " "
        return await _read_line(prompt if self.tty_in else None)


async def _read_line(prompt: str | None) -> str | None:
    """A line from stdin without blocking the event loop; None at end of input. The reading
    thread is a daemon so Ctrl-C can end the program while it waits."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def read() -> None:
        try:
            line = input(prompt) if prompt is not None else sys.stdin.readline()
            result = None if prompt is None and line == "" else line.rstrip("\n")
        except EOFError:
            result = None
        except Exception as e:  # noqa: BLE001 - handed to the waiting coroutine
            loop.call_soon_threadsafe(lambda e=e: done.done() or done.set_exception(e))
            return
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(result))

    threading.Thread(target=read, daemon=True).start()
    return await done
