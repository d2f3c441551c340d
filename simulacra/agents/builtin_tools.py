"""Tools every em can have: dice, arithmetic, the time, reading files, a scratchpad.

``builtin_tools(root=..., scratchpad=..., rng=..., now=...)`` binds them to what they need when
the toolbox is built: a folder read_file may read under, a scratchpad object with
``remember(key, text) / note(text) / forget(key)``, a random generator and a clock, so tests
and rehearsals can fix them.
"""
from __future__ import annotations

import ast
import math
import operator
import random
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from simulacra.agents.tools import Tool, tool
from simulacra.errors import ToolError

MAX_DICE, MAX_SIDES = 100, 1000
MAX_EXPRESSION = 300  # characters
MAX_POWER_BITS = 4096  # an integer power may not grow past this many bits
MAX_READ = 20_000  # characters of a file shown at once


def builtin_tools(*, root: str | Path | None = None, scratchpad: Any = None,
                  rng: random.Random | None = None, now: Callable[[], datetime] | None = None) -> list[Tool]:
    """The built-in tools; read_file only with a root, memory tools only with a scratchpad."""
    rng = rng or random.Random()
    now = now or datetime.now

    @tool
    def roll_dice(spec: str) -> int:
        """Roll dice and return the total.

        Args:
            spec: dice notation: NdS plus or minus terms, e.g. 2d6+1, d20, 3d8-2, 1d6+1d4
        """
        return roll(spec, rng).total

    @tool
    def calculator(expression: str) -> int | float:
        """Work out an arithmetic expression.

        Args:
            expression: numbers with + - * / // % ** and brackets, e.g. (7 + 5) * 3; also sqrt, round, abs, min, max
        """
        return calculate(expression)

    @tool
    def clock() -> str:
        """The current date and time."""
        return now().strftime("%A %d %B %Y, %H:%M")

    tools = [roll_dice, calculator, clock]
    if root is not None:
        tools.append(_read_file_tool(Path(root)))
    if scratchpad is not None:
        tools.extend(_scratchpad_tools(scratchpad))
    return tools


# --- dice -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DiceRoll:
    total: int
    rolls: tuple[int, ...]
    modifier: int


_TERM = re.compile(r"([+-])?\s*(?:(\d*)[dD](\d+)|(\d+))")


def roll(spec: str, rng: random.Random) -> DiceRoll:
    text = spec.strip()
    if not text:
        raise ToolError("empty dice spec; write it like 2d6+1")
    rolls: list[int] = []
    modifier, total, pos = 0, 0, 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or (pos > 0 and not m.group(1)):
            raise ToolError(f"cannot read dice spec {spec!r} at {text[pos:]!r}; write it like 2d6+1 or d20")
        sign = -1 if m.group(1) == "-" else 1
        if m.group(3):
            count, sides = int(m.group(2) or 1), int(m.group(3))
            if not (1 <= count <= MAX_DICE and 2 <= sides <= MAX_SIDES):
                raise ToolError(f"dice {count}d{sides} out of range: 1-{MAX_DICE} dice of 2-{MAX_SIDES} sides")
            new = [rng.randint(1, sides) for _ in range(count)]
            rolls += new
            total += sign * sum(new)
        else:
            modifier += sign * int(m.group(4))
            total += sign * int(m.group(4))
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    if not rolls:
        raise ToolError(f"no dice in {spec!r}; write it like 2d6+1")
    return DiceRoll(total, tuple(rolls), modifier)


# --- calculator -------------------------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "floor": math.floor,
    "ceil": math.ceil, "log": math.log, "log10": math.log10, "exp": math.exp, "sin": math.sin,
    "cos": math.cos, "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def calculate(expression: str) -> int | float:
    """Evaluate arithmetic safely: a whitelist walk over the syntax tree, never ``eval``."""
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if len(text) > MAX_EXPRESSION:
        raise ToolError(f"expression too long ({len(text)} characters, at most {MAX_EXPRESSION})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot read {expression!r} as arithmetic; write it like (7 + 5) * 3") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as e:  # e.g. sqrt(-1), log(0)
        raise ToolError(f"math error: {e}") from None
    if isinstance(value, complex):  # e.g. (-8) ** 0.5
        raise ToolError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > 2 * MAX_POWER_BITS:
        raise ToolError("the result is too large to show")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return round(value, 10) if isinstance(value, float) else value


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords):
        return _FUNCTIONS[node.func.id](*[_eval(a) for a in node.args])
    raise ToolError(f"not allowed in a calculation: {_describe(node)}; use numbers, + - * / // % ** "
                    f"and {', '.join(_FUNCTIONS)}")


def _check_power(base: float, exponent: float) -> None:
    if abs(exponent) > 10_000:
        raise ToolError(f"exponent {exponent} is too large (at most 10000)")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if abs(base) > 1 and exponent * abs(base).bit_length() > MAX_POWER_BITS:
            raise ToolError(f"{base} ** {exponent} is too large to work out")


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name '{node.id}'"
    if isinstance(node, ast.Attribute):
        return f"attribute access '.{node.attr}'"
    if isinstance(node, ast.Call):
        return f"calling '{node.func.id}'" if isinstance(node.func, ast.Name) else _describe(node.func)
    if isinstance(node, ast.Constant):
        return f"the value {node.value!r}"
    return type(node).__name__


# --- files and scratchpad ---------------------------------------------------------------------

def _read_file_tool(root: Path) -> Tool:
    base = root.resolve()

    @tool
    def read_file(path: str) -> str:
        """Read a text file.

        Args:
            path: the file's path inside the shared folder, e.g. notes/todo.txt
        """
        relative = Path(path)
        if relative.is_absolute() or ".." in relative.parts:
            raise ToolError(f"'{path}' leaves the shared folder; give a path inside it without '..'")
        target = (base / relative).resolve()
        if not target.is_relative_to(base):  # a symlink pointing outside
            raise ToolError(f"'{path}' leaves the shared folder")
        if not target.is_file():
            raise ToolError(f"no file '{path}' in the shared folder")
        try:
            text = target.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"'{path}' is not a UTF-8 text file") from None
        if len(text) > MAX_READ:
            return text[:MAX_READ] + f"\n[cut: the file has {len(text)} characters]"
        return text

    return read_file


def _scratchpad_tools(pad: Any) -> list[Tool]:
    @tool(side_effects=True)
    def remember(key: str, text: str) -> str:
        """Keep a fact under a short key; remembering the same key again replaces it.

        Args:
            key: a short name for the fact, e.g. player_name
            text: the fact
        """
        pad.remember(key, text)
        return f"remembered {key}"

    @tool(side_effects=True)
    def note(text: str) -> str:
        """Write a note on the scratchpad.

        Args:
            text: the note
        """
        pad.note(text)
        return "noted"

    @tool(side_effects=True)
    def forget(key: str) -> str:
        """Forget the fact kept under a key.

        Args:
            key: the key given to remember
        """
        if pad.forget(key) is False:
            raise ToolError(f"nothing is kept under '{key}'")
        return f"forgot {key}"

    return [remember, note, forget]
