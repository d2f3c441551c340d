"""ReWOO (Xu et al. 2023): plan every tool call up front, run them, then solve.

The planner writes the whole plan in one generation, naming each result as evidence:

    Plan: Roll the dice.
    #E1 = roll_dice[2d6]
    Plan: Triple the roll.
    #E2 = calculator[#E1 * 3]

Later calls refer to earlier evidence by ``#E1``-style placeholders, filled in when they run.
Because tool results never go back to the planner, the model is called twice whatever the number
of tools (ReAct calls it once per step, resending the growing prompt each time), and a person can
read and approve the plan before anything runs (``approve``).
"""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from simulacra.agents.textproto import ActionParseError, generate, observation_text, parse_call, tool_prompt
from simulacra.agents.tools import Call, Observation, ToolBox
from simulacra.agents.trace import Step, Trace
from simulacra.types import Completer, Sampling

DEFAULT_SAMPLING = Sampling(temperature=0.0, max_tokens=300)
MAX_PLAN_STEPS = 12

PLANNER = """Make a plan to answer the question with these tools:
{tools}

For each step write a line "Plan: ..." and then a line "#E<n> = tool_name[input]" that calls a tool.
Use {{...}} instead of [...] for tools with more than one argument. A later input can use an earlier
result by writing its name, e.g. #E1. Do not work out the results yourself."""

EXAMPLES: list[tuple[frozenset[str], str]] = [
    (frozenset({"calculator"}), """Question: A box holds 12 eggs. How many eggs are in 7 boxes if 5 break?
Plan: Multiply the boxes by the eggs in each box.
#E1 = calculator[7 * 12]
Plan: Take away the 5 broken eggs.
#E2 = calculator[#E1 - 5]"""),
    (frozenset({"roll_dice", "calculator"}), """Question: Roll 1d20 for the goblin and add 4 to the roll.
Plan: Roll 1d20.
#E1 = roll_dice[1d20]
Plan: Add 4 to the roll.
#E2 = calculator[#E1 + 4]"""),
]

SOLVER = """Answer the question using the plan and the evidence its tools gave. Trust the evidence.

Question: {question}
{work}

Reply with the answer only.
Final Answer:"""


@dataclass
class PlanStep:
    var: str  # "#E1"
    reason: str
    line: str  # the call as the planner wrote it
    call: Call | None = None
    error: str | None = None  # why the line could not be read


@dataclass
class Plan:
    steps: list[PlanStep] = field(default_factory=list)
    text: str = ""

    def __str__(self) -> str:
        return "\n".join(f"Plan: {s.reason}\n{s.var} = {s.line}" for s in self.steps)


Approve = Callable[[Plan], "bool | Awaitable[bool]"]
_STEP = re.compile(r"^\s*(#E\d+)\s*[:=]\s*(.+)$")
_REF = re.compile(r"#E\d+")


def planner_prompt(box: ToolBox, question: str, examples: Sequence[str] | None = None) -> str:
    return tool_prompt(PLANNER, box, question, examples, EXAMPLES, "Plan:")


def parse_plan(text: str, box: ToolBox) -> Plan:
    """Read "Plan: ..." / "#En = tool[input]" lines; unreadable calls are kept with their error."""
    plan, reason = Plan(text=text), ""
    for raw in ("Plan:" + text).splitlines():
        line = raw.strip()
        if line.lower().startswith("plan:"):
            reason = line[5:].strip()
        elif m := _STEP.match(line):
            step = PlanStep(m.group(1), reason, m.group(2).strip())
            try:
                step.call = parse_call(step.line, box)
            except ActionParseError as e:
                step.error = str(e)
            plan.steps.append(step)
            reason = ""
        if len(plan.steps) >= MAX_PLAN_STEPS:
            break
    return plan


async def run_rewoo(engine: Completer, box: ToolBox, question: str, *, sampling: Sampling | None = None,
                    approve: Approve | None = None, examples: Sequence[str] | None = None,
                    on_step: Callable[[Step], Any] | None = None) -> Trace:
    sampling = sampling or DEFAULT_SAMPLING
    trace = Trace(question)
    prompt = planner_prompt(box, question, examples)
    plan = parse_plan(await generate(engine, prompt, sampling, trace.usage, ("\nQuestion:", "\n\n\n")), box)
    trace.transcript = prompt + plan.text
    if approve is not None and not await _maybe_await(approve(plan)):
        trace.stopped = "rejected"
        return trace
    evidence: dict[str, Observation] = {}
    for ps in plan.steps:
        obs = await _execute(ps, box, evidence)
        evidence[ps.var] = obs
        step = Step(thought=ps.reason, call=obs.call if obs.call.name else None, observation=obs, text=ps.line)
        trace.steps.append(step)
        if on_step is not None:
            await _maybe_await(on_step(step))
    work = "\n".join(f"Plan: {ps.reason}\n{ps.var} = {ps.line}\nEvidence: {observation_text(evidence[ps.var])}"
                     for ps in plan.steps) or "(no plan: answer from what you know)"
    solver = SOLVER.format(question=question.strip(), work=work)
    answer = await generate(engine, solver, sampling, trace.usage, ("\nQuestion:", "\n\n"))
    trace.answer = answer.strip() or None
    trace.transcript += "\n\n" + solver + answer
    return trace


async def _execute(ps: PlanStep, box: ToolBox, evidence: dict[str, Observation]) -> Observation:
    if ps.call is None:
        return Observation(Call(""), f"Error: {ps.error}", ok=False)
    refs = sorted(set(_REF.findall(json.dumps(ps.call.arguments))))
    missing = [r for r in refs if r not in evidence]
    if missing:
        return Observation(ps.call, f"Error: {', '.join(missing)} is not known before {ps.var}", ok=False)
    failed = [r for r in refs if not evidence[r].ok]
    if failed:  # pasting an error message into the next call would only make a stranger error
        return Observation(ps.call, f"Error: skipped because {', '.join(failed)} failed", ok=False)
    args = {k: _substitute(v, evidence) for k, v in ps.call.arguments.items()}
    return await box.call(ps.call.name, args)


def _substitute(value: Any, evidence: dict[str, Observation]) -> Any:
    if isinstance(value, str):
        return _REF.sub(lambda m: evidence[m.group(0)].text.strip(), value)
    if isinstance(value, list):
        return [_substitute(v, evidence) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, evidence) for k, v in value.items()}
    return value


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
