"""Native tool calls through a chat engine (the fake engine turns JSON replies into tool calls)."""
import json
import random

import pytest

from simulacra.agents.builtin_tools import builtin_tools, roll
from simulacra.agents.native import run_native
from simulacra.agents.tools import Call, ToolBox
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.errors import EngineError

from .scripts import QUESTION, native_model


def dice_box(seed: int) -> ToolBox:
    return ToolBox(builtin_tools(rng=random.Random(seed)), allow=["roll_dice", "calculator"])


async def test_native_loop_runs_calls_and_returns_the_text_answer():
    backend = FakeBackend(native_model)
    trace = await run_native(Engine(backend), dice_box(9), QUESTION, system="Use tools.")
    rolled = roll("2d6", random.Random(9)).total
    assert trace.calls == [Call("roll_dice", {"spec": "2d6"}), Call("calculator", {"expression": f"{rolled} * 3"})]
    assert trace.answer == f"The answer is {rolled * 3}." and trace.stopped == "answer"
    last_prompt = backend.prompts[-1]
    assert last_prompt.startswith("system: Use tools.\nuser: " + QUESTION)
    assert f"tool: {rolled}\n" in last_prompt and last_prompt.endswith(f"tool: {rolled * 3}")
    assert trace.usage.model_calls == 3


async def test_native_loop_guard_and_forced_answer():
    def stubborn(prompt):
        if prompt.endswith("give your final answer."):
            return "I rolled a lot."
        return json.dumps({"tool": "roll_dice", "arguments": {"spec": "1d6"}})

    trace = await run_native(Engine(FakeBackend(stubborn)), dice_box(0), "Roll.", repeat_limit=2)
    assert trace.stopped == "loop" and trace.answer == "I rolled a lot."
    assert [o.ok for o in trace.observations] == [True, False, False]


async def test_native_bad_arguments_reach_the_model_as_tool_turns():
    replies = iter([json.dumps({"tool": "calculator", "arguments": {"expr": "1+1"}}), "ok"])
    backend = FakeBackend(lambda p: next(replies))
    trace = await run_native(Engine(backend), dice_box(0), "Add.")
    assert "tool: Error: unknown argument 'expr' (did you mean 'expression'?)" in backend.prompts[1]
    assert trace.answer == "ok"


async def test_engines_without_tool_calls_are_refused():
    with pytest.raises(EngineError, match="use run_react"):
        await run_native(Engine(FakeBackend(can_chat=False)), dice_box(0), "hi")
