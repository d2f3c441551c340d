"""The text protocol: tool calls for models without native tool calling (base models, SmolLM2).

The tools are listed in the prompt and the model writes one call per line:

    Thought: I need to roll the dice first.
    Action: roll_dice {"spec": "2d6"}
    Observation: 9

``Action: NAME {JSON object}`` is the strict form every prompt shows (one line, arguments as a
JSON object). Generation stops on "Observation:" so the engine suspends right after the call
line; the loop runs the tool, appends ``Observation: RESULT`` and lets the model carry on (seed
000: "you suspend inference, carry out the requested action, and append the result").

Small models drift from the strict form, so ``parse_call`` also reads what they tend to write:
single-quoted or unquoted keys, a missing closing brace, trailing words after the object,
``name(...)`` and ``name[...]`` brackets, ``key=value`` pairs, and a bare value for a tool with
one argument (``roll_dice 2d6``). What it cannot read raises ``ActionParseError`` saying exactly
what was wrong and showing the strict form, which the loop shows the model as the observation.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any, Sequence

from simulacra.agents.tools import Call, Observation, ToolBox
from simulacra.agents.trace import Usage
from simulacra.errors import ToolError
from simulacra.types import Completer, Sampling

ACTION = "Action:"
OBSERVATION = "Observation:"
FINAL = "Final Answer:"
# Stop before the model invents its own observation; the bare form also catches "...Observation:"
STOPS = ("\nObservation", OBSERVATION)


class ActionParseError(ToolError):
    """A call line the parser could not read; the message is shown to the model."""


def render_tools(box: ToolBox) -> str:
    """The tool list for a prompt: one line each, the strict call form then what it does."""
    lines = []
    for t in box.available:
        args = [f"{k}: {p['description']}" for k, p in (t.parameters.get("properties") or {}).items()
                if p.get("description")]
        lines.append(" ".join([f"- {t.signature()}:", t.description, *(f"({a})" for a in args)]).rstrip(": "))
    return "\n".join(lines)


def observation_text(obs: Observation | str) -> str:
    """One observation as it goes into the prompt: kept to one line so the format stays clean."""
    text = str(obs).strip()
    return " ".join(text.split()) if text.count("\n") < 6 else text.replace("\n", "\n  ")


# --- generation -------------------------------------------------------------------------------

async def generate(engine: Completer, prompt: str, sampling: Sampling, usage: Usage,
                   stops: tuple[str, ...] = STOPS) -> str:
    """One continuation of ``prompt`` that ends before the model writes an observation."""
    wanted = dataclasses.replace(sampling, n=1, stop=tuple(dict.fromkeys((*sampling.stop, *stops))))
    parts: list[str] = []
    async for chunk in engine.complete(prompt, wanted):
        if chunk.index == 0:
            parts.append(chunk.text)
            usage.add(chunk.usage)
    return "".join(parts)


@dataclasses.dataclass(frozen=True)
class StepText:
    thought: str
    action: str | None  # the call line after "Action:", if the model wrote one
    final: str | None  # the text after "Final Answer:", if the model wrote one
    kept: str  # the part of the continuation that stays in the prompt


def split_step(text: str) -> StepText:
    """Read one continuation; whichever of an action and a final answer comes first wins.

    Text after the action line is dropped: the model wrote it without seeing the observation.
    """
    action_at = _find_label(text, ACTION)
    final_at = _find_label(text, FINAL)
    if final_at is not None and (action_at is None or final_at < action_at):
        answer = text[final_at + len(FINAL):].strip().split("\n\n")[0].strip()
        return StepText(_thought(text[:final_at]), None, answer, text.rstrip())
    if action_at is None:
        return StepText(_thought(text), None, None, text.rstrip())
    start = action_at + len(ACTION)
    line, newline, after = text[start:].partition("\n")
    end = start + len(line)
    more = re.match(r"[ \t]*Action Input:(.*)", after, flags=re.IGNORECASE)  # the LangChain habit
    if more:
        line, end = line + " " + more.group(1), end + len(newline) + more.end()
    return StepText(_thought(text[:action_at]), line.strip(), None, text[:end].rstrip())


def _find_label(text: str, label: str) -> int | None:
    m = re.search(rf"(?<!\w){re.escape(label)}", text, flags=re.IGNORECASE)
    return None if m is None else m.start()


def _thought(text: str) -> str:
    return re.sub(r"^\s*Thought:\s*", "", text.strip(), flags=re.IGNORECASE).strip()


# --- parsing ----------------------------------------------------------------------------------

_NAME = re.compile(r"\s*[`'\"]?([A-Za-z_][\w.-]*)[`'\"]?\s*")


def parse_call(line: str, box: ToolBox) -> Call:
    """Read ``NAME ARGS`` (the text after "Action:") into a Call, tolerating small-model drift."""
    text = line.strip()
    if text.lower().startswith(ACTION.lower()):
        text = text[len(ACTION):].strip()
    m = _NAME.match(text)
    if not m or not text:
        raise ActionParseError(f"no tool name after '{ACTION}'; write {ACTION} TOOL {{\"argument\": value}}")
    name, rest = m.group(1), text[m.end():].strip()
    tool = box.tools.get(name)
    if tool is None or not box.allowed(name):
        return Call(name, {})  # the toolbox explains unknown and refused tools
    rest = _unwrap(rest)
    usage = f"write it as {ACTION} {tool.signature()}"
    params = list((tool.parameters.get("properties") or {}).keys())
    if not rest:
        return Call(name, {})
    if rest.startswith("{"):
        return Call(name, _read_object(rest, usage))
    if re.match(r"^[A-Za-z_]\w*\s*=", rest):
        return Call(name, _read_pairs(rest, usage))
    if len(params) == 1 or len(tool.parameters.get("required") or ()) == 1:
        key = params[0] if len(params) == 1 else tool.parameters["required"][0]
        return Call(name, {key: _read_scalar(rest)})
    raise ActionParseError(f"cannot read the arguments {rest[:60]!r} for {name}; {usage}")


def _unwrap(text: str) -> str:
    """Drop (...) or [...] around the arguments, and a leading ':' or '='."""
    text = text.lstrip(":= ").strip()
    for left, right in ("()", "[]"):
        if text.startswith(left):
            depth = 0
            for i, ch in enumerate(text):
                depth += (ch == left) - (ch == right)
                if depth == 0:
                    # "(7 + 5) * 3" is a bare expression, not brackets around the arguments
                    return text if re.match(r"\s*[-+*/%^]", text[i + 1:]) else text[1:i].strip()
            return text[1:].strip()  # never closed: take what is there
    return text


def _read_object(text: str, usage: str) -> dict:
    body = _balanced(text)
    for candidate in (body, _pythonish(body)):
        try:
            value = json.loads(candidate)
        except ValueError:
            try:
                value = ast.literal_eval(candidate)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
    try:
        json.loads(body)
    except ValueError as e:
        raise ActionParseError(f"the arguments are not a JSON object ({e.msg} at character {e.pos} of "
                               f"{body[:60]!r}); {usage}") from None
    raise ActionParseError(f"the arguments must be a JSON object; {usage}")


def _balanced(text: str) -> str:
    """The first {...} object, ignoring junk after it and closing it if the model did not."""
    depth, quote, escaped = 0, None, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[: i + 1]
    return text + (quote or "") + "}" * depth


def _pythonish(text: str) -> str:
    """JSON-ish to a Python literal: bare keys quoted, true/false/null spelled the Python way."""
    text = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', text)
    return re.sub(r"\b(true|false|null)\b", lambda m: {"true": "True", "false": "False", "null": "None"}[m.group(1)],
                  text)


def _read_pairs(text: str, usage: str) -> dict:
    out: dict[str, Any] = {}
    for part in _split_commas(text):
        key, sep, value = part.partition("=")
        if not sep or not re.fullmatch(r"\s*[A-Za-z_]\w*\s*", key):
            raise ActionParseError(f"cannot read {part.strip()[:40]!r} as key=value; {usage}")
        out[key.strip()] = _read_scalar(value)
    return out


def _split_commas(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _read_scalar(text: str) -> Any:
    """A bare value: quoted strings lose their quotes; JSON numbers/lists stay typed; else text."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1]
    if text[:1] in "[{" or re.fullmatch(r"-?\d+(\.\d+)?|true|false|null", text):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def tool_prompt(instructions: str, box: ToolBox, question: str, examples: Sequence[str] | None,
                catalogue: Sequence[tuple[frozenset[str], str]], cue: str) -> str:
    """Instructions with the tool list, few-shot examples, then the question and a cue to begin.

    With ``examples`` None, the catalogue's examples whose tools the box offers are used.
    """
    if examples is None:
        offered = {t.name for t in box.available}
        examples = [text for needs, text in catalogue if needs <= offered]
    parts = [instructions.format(tools=render_tools(box))]
    if examples:
        parts.append("Examples:\n\n" + "\n\n".join(e.strip() for e in examples))
    parts.append(f"Question: {question.strip()}\n{cue}")
    return "\n\n".join(parts)
