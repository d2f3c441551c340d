"""ToolBox: every failure is an observation the model can read; nothing crashes the loop."""
import asyncio
import threading

import pytest

from simulacra.agents.tools import Call, ToolBox, tool
from simulacra.errors import ToolError


@tool
def add(a: int, b: int = 0) -> int:
    """Add two numbers.

    Args:
        a: the first
        b: the second
    """
    return a + b


@tool
def crash(text: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot handle {text}")


@tool
def complain() -> str:
    """Fails the way a tool should."""
    raise ToolError("the moon is not up; try tonight")


written: list[str] = []


@tool(side_effects=True)
def write(text: str) -> str:
    """Write something down."""
    written.append(text)
    return "written"


@pytest.fixture
def box():
    written.clear()
    return ToolBox([add, crash, complain, write])


async def test_a_good_call_runs_and_returns_text(box):
    obs = await box.call("add", '{"a": 2, "b": 3}')
    assert obs.ok and obs.text == "5" and obs.value == 5 and obs.call == Call("add", {"a": 2, "b": 3})


async def test_coercion_is_reported_to_the_model(box):
    obs = await box.call("add", {"a": "2", "b": 3})
    assert obs.ok and obs.value == 5
    assert obs.text.startswith("5\n(note: argument 'a': read \"2\" as 2")


@pytest.mark.parametrize("name, arguments, expected", [
    ("add", '{"a": 2,', "arguments are not valid JSON"),
    ("add", '[1, 2]', "arguments must be a JSON object"),
    ("add", '{"a": "two"}', "argument 'a' must be an integer, got \"two\""),
    ("add", '{"b": 1}', "missing required argument 'a'"),
    ("add", '{"a": 1, "c": 2}', "unknown argument 'c'"),
    ("ad", '{"a": 1}', "there is no tool 'ad' (did you mean 'add'?)"),
])
async def test_bad_calls_become_error_observations(box, name, arguments, expected):
    obs = await box.call(name, arguments)
    assert not obs.ok and obs.text.startswith("Error: ") and expected in obs.text
    assert ("Usage: add {" in obs.text) == (name == "add")  # shows the right form when it can


async def test_validation_happens_before_the_tool_runs(box):
    obs = await box.call("write", {"text": "hi", "mood": "angry"})
    assert not obs.ok and written == []


async def test_a_raising_tool_is_an_observation_not_a_crash(box):
    obs = await box.call("crash", {"text": "this"})
    assert not obs.ok and obs.text == "Error: crash failed: ValueError: cannot handle this"
    obs = await box.call("complain", {})
    assert not obs.ok and obs.text.startswith("Error: the moon is not up; try tonight")


async def test_allowlist_refuses_other_tools():
    box = ToolBox([add, write], allow=["add"])
    obs = await box.call("write", {"text": "x"})
    assert not obs.ok and "not allowed" in obs.text and "Tools you can use: add" in obs.text
    assert [t.name for t in box.available] == ["add"] and [s["function"]["name"] for s in box.schemas()] == ["add"]
    assert "write" not in box and "add" in box


async def test_side_effect_tools_ask_for_confirmation():
    asked: list[Call] = []

    async def confirm(call):
        asked.append(call)
        return call.arguments["text"] != "secret"

    written.clear()
    box = ToolBox([add, write], confirm=confirm)
    assert (await box.call("write", {"text": "fine"})).ok
    refused = await box.call("write", {"text": "secret"})
    assert not refused.ok and "declined" in refused.text
    assert (await box.call("add", {"a": 1})).ok  # no side effects: not asked
    assert written == ["fine"] and [c.arguments["text"] for c in asked] == ["fine", "secret"]


async def test_sync_tool_timeout_is_an_observation():
    release = threading.Event()

    @tool(timeout=0.05)
    def hang() -> str:
        """Waits."""
        release.wait(5)
        return "late"

    try:
        obs = await ToolBox([hang]).call("hang", {})
    finally:
        release.set()
    assert not obs.ok and "took longer than 0.05s" in obs.text


async def test_async_tool_timeout_and_result():
    @tool(timeout=0.05)
    async def nap(seconds: float) -> str:
        """Sleeps."""
        await asyncio.sleep(seconds)
        return "awake"

    box = ToolBox([nap])
    assert (await box.call("nap", {"seconds": 0})).text == "awake"
    obs = await box.call("nap", {"seconds": 5})
    assert not obs.ok and "took longer" in obs.text


async def test_sync_tools_run_off_the_event_loop():
    loop_thread = threading.get_ident()

    @tool
    def where() -> bool:
        """Which thread."""
        return threading.get_ident() != loop_thread

    assert (await ToolBox([where]).call("where")).value is True


async def test_long_output_is_cut():
    @tool
    def big() -> str:
        """Lots."""
        return "x" * 5000

    obs = await ToolBox([big], max_output=100).call("big")
    assert obs.text.startswith("x" * 100 + "\n[cut: 4900 more")


def test_duplicate_names_are_refused():
    with pytest.raises(ToolError, match="two tools are named 'add'"):
        ToolBox([add, add])
