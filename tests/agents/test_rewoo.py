"""ReWOO: plan, approve, run with evidence substituted, solve."""
import random

from simulacra.agents.builtin_tools import builtin_tools, roll
from simulacra.agents.rewoo import parse_plan, run_rewoo
from simulacra.agents.tools import Call, ToolBox
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend

from .scripts import QUESTION, rewoo_model


def dice_box(seed: int) -> ToolBox:
    return ToolBox(builtin_tools(rng=random.Random(seed)), allow=["roll_dice", "calculator"])


async def test_rewoo_two_tool_task_with_approval():
    backend, seen = FakeBackend(rewoo_model), []

    async def approve(plan):
        seen.append(str(plan))
        return True

    trace = await run_rewoo(Engine(backend), dice_box(5), QUESTION, approve=approve)
    rolled = roll("2d6", random.Random(5)).total
    assert seen == ["Plan: Roll the dice.\n#E1 = roll_dice[2d6]\nPlan: Triple the roll.\n#E2 = calculator[#E1 * 3]"]
    assert trace.calls == [Call("roll_dice", {"spec": "2d6"}), Call("calculator", {"expression": f"{rolled} * 3"})]
    assert trace.answer == str(rolled * 3) and trace.stopped == "answer"
    assert trace.usage.model_calls == 2 == len(backend.prompts)
    assert trace.usage.prompt_tokens == sum(backend.count_tokens(p) for p in backend.prompts)
    assert f"#E1 = roll_dice[2d6]\nEvidence: {rolled}\n" in backend.prompts[1]


async def test_a_rejected_plan_runs_nothing():
    backend = FakeBackend(rewoo_model)
    trace = await run_rewoo(Engine(backend), dice_box(0), QUESTION, approve=lambda plan: False)
    assert trace.stopped == "rejected" and trace.answer is None and trace.steps == []
    assert len(backend.prompts) == 1  # the planner only: no solver, no tools


def test_parse_plan_keeps_unreadable_steps_with_their_error():
    box = dice_box(0)
    plan = parse_plan(" Roll.\n#E1 = roll_dice[2d6]\nPlan: Sum.\n#E2 = calculator {\"expression\": }\n"
                      "#E3: calculator[#E1 + 1]\nsome chatter", box)
    assert [s.var for s in plan.steps] == ["#E1", "#E2", "#E3"]
    assert plan.steps[0].reason == "Roll." and plan.steps[0].call == Call("roll_dice", {"spec": "2d6"})
    assert plan.steps[1].call is None and "not a JSON object" in plan.steps[1].error
    assert plan.steps[2].call == Call("calculator", {"expression": "#E1 + 1"})


async def test_bad_references_and_bad_steps_become_evidence_errors():
    plan = (" Add.\n#E1 = calculator[#E2 + 1]\nPlan: Broken.\n#E2 = calculator {\"expression\": }\n"
            "Plan: Use the broken one.\n#E3 = calculator[#E2 * 2]")

    def model(prompt):
        return plan if prompt.endswith("Plan:") else " unsure"

    trace = await run_rewoo(Engine(FakeBackend(model)), dice_box(0), "Q?")
    texts = [o.text for o in trace.observations]
    assert texts[0] == "Error: #E2 is not known before #E1"
    assert texts[1].startswith("Error: the arguments are not a JSON object")
    assert texts[2] == "Error: skipped because #E2 failed"
    assert trace.answer == "unsure"
