"""The text protocol: the strict call form, the tolerant parser, and splitting a model's step."""
import pytest

from simulacra.agents.builtin_tools import builtin_tools
from simulacra.agents.textproto import ActionParseError, parse_call, render_tools, split_step
from simulacra.agents.tools import Call, ToolBox, tool


@tool
def move(direction: str, steps: int = 1) -> str:
    """Walk somewhere.

    Args:
        direction: north, south, east or west
    """
    return f"moved {steps} {direction}"


@tool
def give(item: str, to: str) -> str:
    """Hand an item to someone."""
    return "given"


BOX = ToolBox([*builtin_tools(), move, give])


@pytest.mark.parametrize("line, expected", [
    ('roll_dice {"spec": "2d6"}', Call("roll_dice", {"spec": "2d6"})),          # the strict form
    ('Action: roll_dice {"spec": "2d6"}', Call("roll_dice", {"spec": "2d6"})),  # label left on
    ("roll_dice {'spec': '2d6'}", Call("roll_dice", {"spec": "2d6"})),          # single quotes
    ('roll_dice {spec: "2d6"}', Call("roll_dice", {"spec": "2d6"})),            # bare key
    ('roll_dice {"spec": "2d6"} and then I add it up', Call("roll_dice", {"spec": "2d6"})),  # junk after
    ('roll_dice {"spec": "2d6"', Call("roll_dice", {"spec": "2d6"})),           # brace never closed
    ('roll_dice {"spec": "2d6', Call("roll_dice", {"spec": "2d6"})),            # nor the string
    ("roll_dice 2d6", Call("roll_dice", {"spec": "2d6"})),                      # one argument, bare
    ('roll_dice "2d6"', Call("roll_dice", {"spec": "2d6"})),
    ("roll_dice(2d6)", Call("roll_dice", {"spec": "2d6"})),                     # function style
    ('roll_dice("2d6")', Call("roll_dice", {"spec": "2d6"})),
    ("roll_dice[2d6]", Call("roll_dice", {"spec": "2d6"})),                     # ReWOO style
    ('roll_dice({"spec": "2d6"})', Call("roll_dice", {"spec": "2d6"})),
    ("roll_dice: 2d6", Call("roll_dice", {"spec": "2d6"})),
    ("`roll_dice` spec=2d6", Call("roll_dice", {"spec": "2d6"})),               # key=value
    ("calculator (7 + 5) * 3", Call("calculator", {"expression": "(7 + 5) * 3"})),  # not brackets
    ("calculator(7 * 3)", Call("calculator", {"expression": "7 * 3"})),
    ("move direction=north, steps=3", Call("move", {"direction": "north", "steps": 3})),
    ("move(direction='north', steps=2)", Call("move", {"direction": "north", "steps": 2})),
    ("move north", Call("move", {"direction": "north"})),  # one required argument
    ('move {"direction": "north", "steps": 2, "fast": true}',
     Call("move", {"direction": "north", "steps": 2, "fast": True})),  # the toolbox rejects "fast"
    ('give {"item": "a \\"red\\" apple", "to": "Mara"}', Call("give", {"item": 'a "red" apple', "to": "Mara"})),
    ("clock", Call("clock", {})),
    ("clock {}", Call("clock", {})),
    ("teleport {\"to\": \"moon\"}", Call("teleport", {})),  # unknown: the toolbox explains
])
def test_parse_call_reads_what_small_models_write(line, expected):
    assert parse_call(line, BOX) == expected


@pytest.mark.parametrize("line, message", [
    ("", "no tool name after 'Action:'"),
    ('{"spec": "2d6"}', "no tool name"),
    ("give apple Mara", "cannot read the arguments 'apple Mara' for give; write it as Action: give {"),
    ('give {"item": apple, "to": }', "the arguments are not a JSON object"),
    ("give {1, 2}", "not a JSON object"),
    ("give item apple", "cannot read"),
])
def test_parse_errors_say_what_was_wrong_and_show_the_form(line, message):
    with pytest.raises(ActionParseError, match=message.replace("{", r"\{").replace("(", r"\(")):
        parse_call(line, BOX)


def test_render_tools_lists_allowed_tools_in_the_strict_form():
    text = render_tools(ToolBox([*builtin_tools(), move], allow=["roll_dice", "move"]))
    lines = text.splitlines()
    assert len(lines) == 2 and "calculator" not in text
    assert lines[0].startswith('- roll_dice {"spec": string}: Roll dice and return the total. (spec: dice notation')
    assert lines[1].startswith('- move {"direction": string, "steps": integer (optional)}: Walk somewhere.')


def test_split_step_action_wins_and_drops_what_follows():
    s = split_step(' I roll first.\nAction: roll_dice {"spec": "2d6"}\nThought: it was 12\nFinal Answer: 12')
    assert (s.thought, s.action, s.final) == ("I roll first.", 'roll_dice {"spec": "2d6"}', None)
    assert s.kept == ' I roll first.\nAction: roll_dice {"spec": "2d6"}'


def test_split_step_final_answer_and_nothing():
    s = split_step(" I know it.\nFinal Answer: 36\n\nQuestion: more")
    assert (s.thought, s.action, s.final) == ("I know it.", None, "36")
    s = split_step(" just musing")
    assert (s.thought, s.action, s.final) == ("just musing", None, None)
    s = split_step(" I know it. Final Answer: 7")  # on the same line
    assert s.final == "7"


def test_split_step_reads_the_langchain_two_line_form():
    s = split_step(' go\nAction: roll_dice\nAction Input: {"spec": "d20"}\nmore')
    assert parse_call(s.action, BOX) == Call("roll_dice", {"spec": "d20"})
    assert s.kept.endswith('Action Input: {"spec": "d20"}')
