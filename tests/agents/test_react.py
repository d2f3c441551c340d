"""ReAct over the text protocol with a scripted engine."""
import random

import pytest

from simulacra.agents.builtin_tools import builtin_tools, roll
from simulacra.agents.react import react_prompt, run_react
from simulacra.agents.tools import Call, ToolBox, tool
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend

from .scripts import QUESTION, react_model


def dice_box(seed: int) -> ToolBox:
    return ToolBox(builtin_tools(rng=random.Random(seed)), allow=["roll_dice", "calculator"])


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_react_two_tool_task_feeds_each_observation_back(seed):
    backend = FakeBackend(react_model)
    steps = []
    trace = await run_react(Engine(backend), dice_box(seed), QUESTION, on_step=steps.append)
    rolled = roll("2d6", random.Random(seed)).total
    assert trace.calls == [Call("roll_dice", {"spec": "2d6"}), Call("calculator", {"expression": f"{rolled} * 3"})]
    assert [o.text for o in trace.observations] == [str(rolled), str(rolled * 3)]
    assert trace.answer == str(rolled * 3) and trace.stopped == "answer"
    assert len(steps) == 3 and steps[-1].observation is None
    # the model's invented observation was cut off by the stop sequence; the real one went in
    assert "1000" not in trace.transcript and f"Observation: {rolled}\nThought: The roll is {rolled}." in trace.transcript
    # usage: three model calls; prompt tokens are what the engine was sent, counted its way
    assert trace.usage.model_calls == 3 == len(backend.prompts)
    assert trace.usage.prompt_tokens == sum(backend.count_tokens(p) for p in backend.prompts)
    assert 0 < trace.usage.completion_tokens < 80


def test_prompt_lists_tools_and_only_fitting_examples():
    prompt = react_prompt(dice_box(0), QUESTION)
    assert '- roll_dice {"spec": string}' in prompt and "clock" not in prompt
    assert "Roll 1d20, then add 4" in prompt and prompt.endswith(f"Question: {QUESTION}\nThought:")
    calc_only = react_prompt(ToolBox(builtin_tools(), allow=["calculator"]), "2+2?")
    assert "eggs" in calc_only and "1d20" not in calc_only


async def test_repeated_call_gets_a_warning_then_stops_the_run():
    runs = []

    @tool
    def look(at: str) -> str:
        """Look at something."""
        runs.append(at)
        return "nothing new"

    def stubborn(prompt: str) -> str:
        if prompt.endswith("Final Answer:"):
            return " I give up"
        return ' Look again.\nAction: look {"at": "door"}'

    trace = await run_react(Engine(FakeBackend(stubborn)), ToolBox([look]), "What is behind the door?",
                            repeat_limit=3)
    assert runs == ["door", "door"]  # third identical call is not run
    assert "You already called look" in trace.observations[2].text
    assert trace.stopped == "loop" and len(trace.steps) == 4 and trace.answer == "I give up"


async def test_parse_errors_and_missing_actions_are_observations_and_steps_are_bounded():
    replies = iter([' Hmm.\nAction: calculator {"expression": }', " I am thinking.", " 42"])
    trace = await run_react(Engine(FakeBackend(lambda p: next(replies))), dice_box(0), "What is 6*7?",
                            max_steps=2)
    first, second = trace.observations
    assert not first.ok and first.text.startswith("Error: the arguments are not a JSON object")
    assert not second.ok and second.text.startswith("No action.")
    assert trace.stopped == "max_steps" and trace.answer == "42" and trace.usage.model_calls == 3
    assert trace.transcript.endswith("Thought: I must answer now.\nFinal Answer: 42")


async def test_unknown_tool_is_explained_to_the_model():
    replies = iter([' Fly.\nAction: fly {"to": "moon"}', " Fine.\nFinal Answer: no"])
    trace = await run_react(Engine(FakeBackend(lambda p: next(replies))), dice_box(0), "Go to the moon.")
    assert "Observation: Error: there is no tool 'fly'. Tools you can use: roll_dice, calculator" in trace.transcript
    assert trace.answer == "no"
