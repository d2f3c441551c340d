"""Tokens spent by ReAct and by ReWOO on the same tasks, with scripted models.

    python bench/agents.py

Each task is a fixed chain of tool calls where later calls use earlier results. A scripted
model plays it perfectly in both loops (ReAct: one step per model call, reading the
observations from its prompt; ReWOO: the whole plan in one call, then the solver), so the
difference is the loops' own cost: ReAct resends its instructions, tool list, examples and the
growing transcript on every step; ReWOO sends the planner prompt once and a short solver prompt.
Token counts are the fake engine's (one token per whitespace-separated piece). The ReWOO paper
reports about 5x fewer tokens on its multi-step benchmarks; this prints our figure.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Callable

from simulacra.agents import ToolBox, builtin_tools, run_react, run_rewoo, tool
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend

# Plain numbers: ReWOO pastes evidence into later calls verbatim, so "545,000 people" would break
# the sum where a ReAct model could read the number out of it.
FACTS = {"lisbon": "545000", "porto": "232000", "speed of sound": "343"}


@tool
def lookup(topic: str) -> str:
    """Look up a fact.

    Args:
        topic: what to look up, e.g. lisbon
    """
    return FACTS.get(topic.lower().strip(), "no entry")


# (question, [(thought, tool, argument template)]); "{0}" is the first result, "{1}" the second...
TASKS: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("Roll 2d6, then multiply the result by 3.",
     [("Roll the dice.", "roll_dice", "2d6"), ("Triple the roll.", "calculator", "{0} * 3")]),
    ("Roll 1d20 and 1d8, then add them.",
     [("Roll the d20.", "roll_dice", "1d20"), ("Roll the d8.", "roll_dice", "1d8"),
      ("Add the rolls.", "calculator", "{0} + {1}")]),
    ("How many minutes are in a week, less the minutes in one day?",
     [("Minutes in a week.", "calculator", "7 * 24 * 60"), ("Take away a day.", "calculator", "{0} - 24 * 60")]),
    ("How many people live in Lisbon and Porto together?",
     [("Find Lisbon.", "lookup", "lisbon"), ("Find Porto.", "lookup", "porto"),
      ("Add them.", "calculator", "{0} + {1}")]),
    ("How far does sound go in a minute, in km, rounded to one place?",
     [("Find the speed of sound.", "lookup", "speed of sound"),
      ("Metres in a minute.", "calculator", "{0} * 60"), ("In kilometres.", "calculator", "round({1} / 1000, 1)")]),
]


def number(text: str) -> str:
    """The first number in an observation."""
    m = re.search(r"-?\d[\d,]*\.?\d*", text)
    return m.group(0).replace(",", "") if m else text


def react_script(question: str, steps) -> Callable[[str], str]:
    def reply(prompt: str) -> str:
        run = prompt.rsplit(f"Question: {question}", 1)[1]
        seen = [number(o) for o in re.findall(r"^Observation: (.*)$", run, flags=re.M)]
        if len(seen) >= len(steps):
            return f" I know the answer.\nFinal Answer: {seen[-1]}"
        thought, name, template = steps[len(seen)]
        key = "spec" if name == "roll_dice" else "expression" if name == "calculator" else "topic"
        return f" {thought}\nAction: {name} {json.dumps({key: template.format(*seen)})}"
    return reply


def rewoo_script(question: str, steps) -> Callable[[str], str]:
    refs = [f"#E{i + 1}" for i in range(len(steps))]

    def reply(prompt: str) -> str:
        if prompt.endswith("Plan:"):
            return " " + "\nPlan: ".join(f"{thought}\n#E{i + 1} = {name}[{template.format(*refs)}]"
                                          for i, (thought, name, template) in enumerate(steps))
        return " " + number(re.findall(r"^Evidence: (.*)$", prompt, flags=re.M)[-1])
    return reply


def toolbox(seed: int) -> ToolBox:
    return ToolBox([*builtin_tools(rng=random.Random(seed)), lookup], allow=["roll_dice", "calculator", "lookup"])


async def main() -> None:
    print(f"{'task':<62} {'ReAct':>7} {'calls':>5} {'ReWOO':>7} {'calls':>5} {'ratio':>6}")
    totals = [0, 0]
    for i, (question, steps) in enumerate(TASKS):
        react = await run_react(Engine(FakeBackend(react_script(question, steps))), toolbox(i), question)
        rewoo = await run_rewoo(Engine(FakeBackend(rewoo_script(question, steps))), toolbox(i), question)
        assert react.answer == rewoo.answer and react.stopped == rewoo.stopped == "answer", (react.answer, rewoo.answer)
        a, b = react.usage.total_tokens, rewoo.usage.total_tokens
        totals[0] += a
        totals[1] += b
        print(f"{question[:62]:<62} {a:>7} {react.usage.model_calls:>5} {b:>7} {rewoo.usage.model_calls:>5} "
              f"{a / b:>5.2f}x")
    print(f"{'all five (prompt + completion tokens)':<62} {totals[0]:>7} {'':>5} {totals[1]:>7} {'':>5} "
          f"{totals[0] / totals[1]:>5.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
