"""`simulacra agent EM TASK`: the em works on a task with the tools its config allows."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import typer

from simulacra.cli.app import app, console
from simulacra.cli.complete import MODEL_HELP

LOOPS = ("react", "rewoo", "native")


@app.command()
def agent(
    em: Path = typer.Argument(..., help="the em folder (its config's tools: allow, confirm, read_root, mcp_servers)"),
    task: str = typer.Argument(..., help="what to do"),
    loop: str = typer.Option("react", "--loop", help="react | rewoo (plan first, you approve) | native (tool calls)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="run tools that need confirmation without asking"),
) -> None:
    """Work on TASK with the em's tools, showing each step; the answer goes to stdout."""
    from simulacra.errors import InputError

    if loop not in LOOPS:
        raise InputError(f"unknown loop '{loop}'; use one of: {', '.join(LOOPS)}")
    answer = asyncio.run(_run(em, task, loop, model, yes))
    console.write((answer or "(no answer)") + "\n")


async def _run(folder: Path, task: str, loop: str, model: Optional[str], yes: bool) -> str | None:
    from simulacra.agents import run_native, run_react, run_rewoo
    from simulacra.agents.em_tools import em_tools
    from simulacra.ems import Em
    from simulacra.engine import load_engine

    em = Em.load(folder)
    engine = load_engine(model or em.config.continuation_model or None)
    sampling = em.sampling(stop=(), max_tokens=200)
    ask = (lambda call: True) if yes else _ask
    try:
        async with em_tools(em, confirm=ask) as box:
            if not box.available:
                console.note(f"{em.name} may use no tools: list them under tools: allow: in its config.yaml")
            common = dict(sampling=sampling, on_step=_show)
            if loop == "react":
                trace = await run_react(engine, box, task, max_steps=em.config.tools.max_steps, **common)
            elif loop == "rewoo":
                trace = await run_rewoo(engine, box, task, approve=(lambda plan: True) if yes else _approve, **common)
            else:
                trace = await run_native(engine, box, task, max_steps=em.config.tools.max_steps, **common)
    finally:
        await engine.aclose()
    console.note(f"[{trace.stopped}; {trace.usage.prompt_tokens} prompt + {trace.usage.completion_tokens} "
                 f"completion tokens in {trace.usage.model_calls} model calls]")
    return trace.answer


def _show(step) -> None:
    if step.thought:
        console.note(f"Thought: {step.thought}")
    if step.call is not None:
        console.note(f"Action: {step.call.name} {json.dumps(dict(step.call.arguments))}")
    if step.observation is not None:
        console.note(f"Observation: {step.observation.text}")


def _ask(call) -> bool:
    return typer.confirm(f"run {call.name} {json.dumps(dict(call.arguments))}?", default=False, err=True)


def _approve(plan) -> bool:
    console.note(str(plan))
    return typer.confirm("run this plan?", default=True, err=True)
