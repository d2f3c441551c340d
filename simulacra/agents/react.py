"""ReAct (Yao et al. 2022): Thought → Action → Observation, repeated, until a Final Answer.

Runs over the text protocol (textproto.py), so any completion engine can drive it, base models
included. Each step the model continues the prompt until it has written an action line; the tool
runs and its observation is appended before the model goes on. The loop is bounded: at most
``max_steps`` model calls, and a call repeated ``repeat_limit`` times with the same arguments is
answered with a warning instead, then ends the run. A run that stops without an answer asks the
model once for its final answer, so there is always something to show.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from simulacra.agents.textproto import (ACTION, tool_prompt, FINAL, ActionParseError, generate, observation_text,
                                        parse_call, split_step)
from simulacra.agents.tools import Call, Observation, ToolBox
from simulacra.agents.trace import LoopGuard, Step, Trace
from simulacra.types import Completer, Sampling

DEFAULT_SAMPLING = Sampling(temperature=0.0, max_tokens=200)

INSTRUCTIONS = """Answer the question. You can use these tools:
{tools}

Use exactly this format:
Thought: what to do next
Action: tool_name {{"argument": value}}
Observation: the result of the action
(Thought, Action and Observation repeat as needed)
Thought: I know the answer
Final Answer: the answer"""

# (tools the example needs, the example). An example only goes into a prompt whose toolbox has
# those tools. Each shows a later call using the number an earlier observation gave, and says
# that number in its thought: SmolLM2-135M copies the pattern (greedy, it then gets
# "Roll 2d6, then multiply the result by 3" right), where a terser example made it skip step two.
EXAMPLES: list[tuple[frozenset[str], str]] = [
    (frozenset({"calculator"}), """Question: A box holds 12 eggs. How many eggs are in 7 boxes if 5 break?
Thought: First I multiply 7 boxes by 12 eggs.
Action: calculator {"expression": "7 * 12"}
Observation: 84
Thought: The result is 84. Now I take away 5 from 84.
Action: calculator {"expression": "84 - 5"}
Observation: 79
Thought: I know the answer.
Final Answer: 79"""),
    (frozenset({"roll_dice", "calculator"}), """Question: Roll 1d20, then add 4 to the result.
Thought: First I roll 1d20.
Action: roll_dice {"spec": "1d20"}
Observation: 13
Thought: The result is 13. Now I add 4 to 13.
Action: calculator {"expression": "13 + 4"}
Observation: 17
Thought: I know the answer.
Final Answer: 17"""),
]

OnStep = Callable[[Step], Any]


def react_prompt(box: ToolBox, question: str, examples: Sequence[str] | None = None,
                 instructions: str = INSTRUCTIONS) -> str:
    return tool_prompt(instructions, box, question, examples, EXAMPLES, "Thought:")


async def run_react(engine: Completer, box: ToolBox, question: str, *, sampling: Sampling | None = None,
                    max_steps: int = 6, repeat_limit: int = 3, examples: Sequence[str] | None = None,
                    instructions: str = INSTRUCTIONS, on_step: OnStep | None = None) -> Trace:
    sampling = sampling or DEFAULT_SAMPLING
    stops = ("\nObservation", "Observation:", "\nQuestion:")
    prompt = react_prompt(box, question, examples, instructions)
    trace, guard = Trace(question), LoopGuard(repeat_limit)
    trace.stopped = "max_steps"
    for _ in range(max_steps):
        text = await generate(engine, prompt, sampling, trace.usage, stops)
        parsed = split_step(text)
        step = Step(thought=parsed.thought, text=text)
        trace.steps.append(step)
        prompt += parsed.kept
        if parsed.final is not None:
            trace.answer, trace.stopped = parsed.final, "answer"
            await _emit(on_step, step)
            break
        if parsed.action is None:
            note = f"No action. Write one line '{ACTION} tool_name {{...}}' or '{FINAL} ...'."
            step.observation = Observation(Call(""), note, ok=False)
        else:
            try:
                step.call = parse_call(parsed.action, box)
            except ActionParseError as e:
                step.observation = Observation(Call(""), f"Error: {e}", ok=False)
            else:
                verdict = guard.see(step.call)
                if verdict == "stop":
                    trace.stopped = "loop"
                    await _emit(on_step, step)
                    prompt += "\nObservation: Stop calling tools now."
                    break
                step.observation = (Observation(step.call, guard.warning(step.call), ok=False)
                                    if verdict == "warn" else await box.call(step.call.name, step.call.arguments))
        prompt += f"\nObservation: {observation_text(step.observation)}\nThought:"
        await _emit(on_step, step)
    if trace.answer is None:
        prompt += ("" if prompt.endswith("Thought:") else "\nThought:") + f" I must answer now.\n{FINAL}"
        text = await generate(engine, prompt, sampling, trace.usage, ("\n",))
        trace.answer = text.strip() or None
        prompt += text
    trace.transcript = prompt
    return trace


async def _emit(on_step: OnStep | None, step: Step) -> None:
    if on_step is not None:
        result = on_step(step)
        if inspect.isawaitable(result):
            await result
