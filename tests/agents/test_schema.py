"""Schemas from hints and docstrings, and argument checking against them."""
from typing import Literal, Optional

import pytest

from simulacra.agents.schema import check, function_schema, parse_docstring, type_schema
from simulacra.agents.tools import tool
from simulacra.errors import ToolError


def test_schema_from_hints_defaults_and_google_docstring():
    def move(direction: Literal["north", "south"], steps: int = 1, speed: float = 1.5, run: bool = False,
             items: list[str] | None = None, note: Optional[str] = None):
        """Move the character.

        Longer explanation that is still part of the description.

        Args:
            direction: where to go
            steps (int): how many steps,
                counted in paces
            speed: how fast

        Returns:
            where the character ended up
        """

    t = tool(move)
    params = t.schema["function"]["parameters"]
    assert t.schema["type"] == "function" and t.schema["function"]["name"] == "move"
    assert t.description == "Move the character. Longer explanation that is still part of the description."
    assert params["required"] == ["direction"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["direction"] == {"type": "string", "enum": ["north", "south"], "description": "where to go"}
    assert props["steps"] == {"type": "integer", "description": "how many steps, counted in paces", "default": 1}
    assert props["speed"]["type"] == "number" and props["run"] == {"type": "boolean", "default": False}
    assert props["items"] == {"type": ["array", "null"], "items": {"type": "string"}, "default": None}
    assert props["note"]["type"] == ["string", "null"]


def test_numpy_docstring():
    summary, args = parse_docstring("""Roll dice.

    Parameters
    ----------
    spec : str
        dice notation
        like 2d6
    times : int, optional
        how often

    Returns
    -------
    int
    """)
    assert summary == "Roll dice."
    assert args == {"spec": "dice notation like 2d6", "times": "how often"}


def test_unsupported_hints_are_rejected_when_the_tool_is_made():
    with pytest.raises(ToolError, match="no JSON schema"):
        type_schema(complex)
    with pytest.raises(ToolError, match=r"\*rest"):
        function_schema(lambda *rest: None)


def test_tool_options_and_call_through():
    @tool(name="shout", side_effects=True, timeout=2)
    def loud(text: str) -> str:
        """Say it loudly."""
        return text.upper()

    assert (loud.name, loud.side_effects, loud.timeout) == ("shout", True, 2)
    assert loud("hi") == "HI"
    assert loud.signature() == 'shout {"text": string}'




@pytest.fixture
def schema():
    def f(n: int, x: float, flag: bool, tags: list[int], mode: Literal["a", "b"] = "a"):
        """F."""
    return function_schema(f)[1]


def test_check_accepts_exact_types_without_notes(schema):
    args, notes = check(schema, {"n": 3, "x": 2, "flag": True, "tags": [1, 2]})
    assert args == {"n": 3, "x": 2, "flag": True, "tags": [1, 2]} and notes == []


def test_check_coerces_only_unambiguous_values_and_says_so(schema):
    args, notes = check(schema, {"n": "3", "x": "2.5", "flag": "true", "tags": "[1, 2]"})
    assert args == {"n": 3, "x": 2.5, "flag": True, "tags": [1, 2]}
    assert len(notes) == 4 and "read \"3\" as 3" in notes[0]
    args, notes = check(schema, {"n": 4.0, "x": 1, "flag": False, "tags": []})
    assert args["n"] == 4 and isinstance(args["n"], int) and len(notes) == 1


@pytest.mark.parametrize("args, message", [
    ({"n": "three", "x": 1, "flag": True, "tags": []}, "argument 'n' must be an integer, got \"three\""),
    ({"n": 3.5, "x": 1, "flag": True, "tags": []}, "argument 'n' must be an integer"),
    ({"n": True, "x": 1, "flag": True, "tags": []}, "argument 'n' must be an integer, got true"),
    ({"n": 1, "x": 1, "flag": "yes", "tags": []}, "argument 'flag' must be true or false"),
    ({"n": 1, "x": 1, "flag": True, "tags": ["a"]}, r"argument 'tags\[0\]' must be an integer"),
    ({"n": 1, "x": 1, "flag": True, "tags": [], "mode": "c"}, "must be one of \"a\", \"b\""),
    ({"n": 1, "x": 1, "flag": True, "tags": [], "nn": 1}, "unknown argument 'nn'"),
    ({"x": 1, "flag": True, "tags": []}, "missing required argument 'n'"),
])
def test_check_rejects_wrong_arguments_with_a_precise_message(schema, args, message):
    with pytest.raises(ToolError, match=message):
        check(schema, args)


def test_check_rejects_non_objects_and_passes_unknown_schema_parts_through():
    with pytest.raises(ToolError, match="must be a JSON object"):
        check({"type": "object"}, [1, 2])
    loose = {"type": "object", "properties": {"q": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
             "additionalProperties": True}
    assert check(loose, {"q": [1], "extra": 2}) == ({"q": [1], "extra": 2}, [])
