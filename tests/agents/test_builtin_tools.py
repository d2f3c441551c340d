"""Built-in tools: a calculator that cannot be escaped, fair dice, a fenced read_file, memory."""
import random
from datetime import datetime

import pytest
from hypothesis import given, settings, strategies as st

from simulacra.agents.builtin_tools import MAX_DICE, builtin_tools, calculate, roll
from simulacra.agents.tools import ToolBox
from simulacra.errors import ToolError


# --- calculator -------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, value", [
    ("(7 + 5) * 3", 36), ("-2 ** 2", -4), ("7 // 2 + 7 % 2", 4), ("10 / 4", 2.5), ("10 / 2", 5),
    ("2 ^ 10", 1024), ("sqrt(16) + abs(-3)", 7), ("max(1, 5, 2) - min(4, 3)", 2), ("round(2.567, 2)", 2.57),
    ("0.1 + 0.2", 0.3), ("3 × 4 ÷ 2", 6),
])
def test_calculator_values(expression, value):
    result = calculate(expression)
    assert result == value and type(result) is type(value)


numbers = st.integers(-50, 50).map(str) | st.floats(0.5, 50, allow_nan=False).map(lambda f: f"{f:.2f}")


@st.composite
def expressions(draw, depth=0):
    if depth > 2 or draw(st.booleans()):
        return draw(numbers)
    op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%"]))
    return f"({draw(expressions(depth + 1))} {op} {draw(expressions(depth + 1))})"


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_calculator_agrees_with_python_arithmetic(expression):
    try:
        expected = eval(expression, {"__builtins__": {}})  # the reference: only digits and operators here
    except ZeroDivisionError:
        with pytest.raises(ToolError, match="division by zero"):
            calculate(expression)
        return
    assert calculate(expression) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("expression, message", [
    ("__import__('os').system('true')", "attribute access '.system'"),
    ("__import__('os')", "calling '__import__'"),
    ("(1).__class__", "attribute access '.__class__'"),
    ("math.pi", "attribute access"),
    ("open('x')", "calling 'open'"),
    ("os", "the name 'os'"),
    ("'a' * 10", "the value 'a'"),
    ("[1, 2][0]", "Subscript"),
    ("(lambda: 1)()", "Lambda"),
    ("9 ** 9 ** 9", "too large"),
    ("2 ** 100000", "too large"),
    ("10.0 ** 400", "too large"),
    ("1 / 0", "division by zero"),
    ("sqrt(-1)", "math error"),
    ("(-8) ** 0.5", "not a real number"),
    ("1 +", "cannot read"),
    ("1" + " + 1" * 200, "too long"),
    ("True + 1", "the value True"),
])
def test_calculator_rejects_unsafe_or_impossible_input(expression, message):
    with pytest.raises(ToolError, match=message.replace("(", r"\(").replace("*", r"\*")):
        calculate(expression)


# --- dice -------------------------------------------------------------------------------------

def test_dice_totals_stay_in_range_and_reach_both_ends():
    totals = {roll("3d6+2", random.Random(seed)).total for seed in range(2000)}
    assert min(totals) == 5 and max(totals) == 20 and totals <= set(range(5, 21))


def test_dice_are_reproducible_with_a_seed_and_parse_terms():
    a, b = roll("2d8 - 1d4 + 3", random.Random(7)), roll("2d8 - 1d4 + 3", random.Random(7))
    assert a == b and len(a.rolls) == 3 and a.modifier == 3
    assert a.total == a.rolls[0] + a.rolls[1] - a.rolls[2] + 3
    assert roll("d20", random.Random(1)).rolls[0] in range(1, 21)


@pytest.mark.parametrize("spec, message", [
    ("", "empty"), ("2x6", "cannot read"), ("2d6 3", "cannot read"), ("5", "no dice"),
    (f"{MAX_DICE + 1}d6", "out of range"), ("1d1", "out of range"),
])
def test_bad_dice_specs(spec, message):
    with pytest.raises(ToolError, match=message):
        roll(spec, random.Random(0))


async def test_dice_and_clock_tools_use_the_injected_rng_and_clock():
    box = ToolBox(builtin_tools(rng=random.Random(3), now=lambda: datetime(2024, 5, 1, 14, 3)))
    expected = roll("2d6+1", random.Random(3)).total
    assert (await box.call("roll_dice", {"spec": "2d6+1"})).value == expected
    assert (await box.call("clock")).text == "Wednesday 01 May 2024, 14:03"
    assert "read_file" not in box and "remember" not in box  # only with a root / a scratchpad


# --- read_file --------------------------------------------------------------------------------

@pytest.fixture
def shared(tmp_path):
    root = tmp_path / "shared"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "todo.txt").write_text("feed the cat")
    (tmp_path / "secret.txt").write_text("password")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "inside").symlink_to(root / "notes" / "todo.txt")
    (root / "latin1.txt").write_bytes(b"caf\xe9")
    return root


@pytest.mark.parametrize("path, ok, expected", [
    ("notes/todo.txt", True, "feed the cat"),
    ("inside", True, "feed the cat"),
    ("../secret.txt", False, "leaves the shared folder"),
    ("notes/../../secret.txt", False, "leaves the shared folder"),
    ("escape", False, "leaves the shared folder"),
    ("missing.txt", False, "no file"),
    ("notes", False, "no file"),
    ("latin1.txt", False, "not a UTF-8"),
])
async def test_read_file_stays_inside_its_root(shared, path, ok, expected):
    obs = await ToolBox(builtin_tools(root=shared)).call("read_file", {"path": path})
    assert obs.ok is ok and expected in obs.text and "password" not in obs.text


async def test_read_file_refuses_absolute_paths(shared):
    obs = await ToolBox(builtin_tools(root=shared)).call("read_file", {"path": str(shared.parent / "secret.txt")})
    assert not obs.ok and "password" not in obs.text


# --- scratchpad -------------------------------------------------------------------------------

class Pad:
    """The duck type simulacra.memory.scratchpad.Scratchpad offers."""

    def __init__(self):
        self.facts, self.notes = {}, []

    def remember(self, key, text):
        self.facts[key] = text

    def note(self, text):
        self.notes.append(text)

    def forget(self, key):
        return self.facts.pop(key, None) is not None


async def test_memory_tools_write_to_the_scratchpad_after_confirmation():
    pad, asked = Pad(), []

    async def confirm(call):
        asked.append(call.name)
        return True

    box = ToolBox(builtin_tools(scratchpad=pad), confirm=confirm)
    assert (await box.call("remember", {"key": "name", "text": "Mara"})).ok
    assert (await box.call("note", {"text": "likes tea"})).ok
    assert (await box.call("forget", {"key": "name"})).ok
    missing = await box.call("forget", {"key": "name"})
    assert not missing.ok and "nothing is kept under 'name'" in missing.text
    assert pad.facts == {} and pad.notes == ["likes tea"]
    assert asked == ["remember", "note", "forget", "forget"]


async def test_memory_tools_with_the_real_scratchpad(tmp_path):
    scratchpad = pytest.importorskip("simulacra.memory.scratchpad")
    pad = scratchpad.Scratchpad(tmp_path / "pad")
    box = ToolBox(builtin_tools(scratchpad=pad))
    assert (await box.call("remember", {"key": "name", "text": "Mara"})).ok
    assert (await box.call("note", {"text": "likes tea"})).ok
    rendered = pad.render()
    assert "Mara" in rendered and "likes tea" in rendered
    assert (await box.call("forget", {"key": "name"})).ok
    assert "Mara" not in pad.render()
    assert "nothing is kept" in (await box.call("forget", {"key": "name"})).text
    empty = await box.call("note", {"text": "  "})  # the scratchpad's own InputError, shown plainly
    assert not empty.ok and empty.text.startswith("Error: note: ")
