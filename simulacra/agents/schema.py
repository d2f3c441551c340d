"""JSON schemas for tools: built from a function's type hints and docstring, and checked.

``function_schema(fn)`` gives the OpenAI function format's ``parameters`` object. ``check(schema,
args)`` validates model-written arguments against it *before* a tool runs. Models (small ones
especially) write "3" for 3, so a value is coerced only where one reading is possible, and every
coercion is reported back as a note so the model can learn the right form.

Only the JSON-schema subset tools need is understood (type, enum, items, properties, required,
additionalProperties); anything else (anyOf, $ref...) is passed through unchecked, so schemas
from MCP servers still work.
"""
from __future__ import annotations

import inspect
import json
import re
import types
import typing
from difflib import get_close_matches
from typing import Any, Callable, Literal

from simulacra.errors import ToolError

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


# --- building ---------------------------------------------------------------------------------

def function_schema(fn: Callable) -> tuple[str, dict]:
    """(description, parameters schema) for ``fn`` from its signature, hints and docstring."""
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
    hints = typing.get_type_hints(fn)
    properties: dict[str, dict] = {}
    required: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolError(f"tool {fn.__name__}: *{name} cannot be described to a model; name each argument")
        prop = type_schema(hints.get(name, Any), where=f"{fn.__name__}({name})")
        if name in arg_docs:
            prop["description"] = arg_docs[name]
        if param.default is param.empty:
            required.append(name)
        elif _jsonable(param.default):
            prop["default"] = param.default
        properties[name] = prop
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return summary, schema


def type_schema(hint: Any, where: str = "") -> dict:
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        kinds = {_SIMPLE.get(type(a)) for a in args}
        return {"type": kinds.pop(), "enum": list(args)} if len(kinds) == 1 else {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or hint in (typing.List,):
        item = args[0] if args else Any
        return {"type": "array", "items": type_schema(item, where)} if item is not Any else {"type": "array"}
    if origin is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = type_schema(rest[0], where) if len(rest) == 1 else {"anyOf": [type_schema(a, where) for a in rest]}
        if len(rest) < len(args):  # Optional: null is also fine
            if "enum" in inner:
                inner["enum"] = [*inner["enum"], None]
            if isinstance(inner.get("type"), str):
                inner["type"] = [inner["type"], "null"]
        return inner
    raise ToolError(f"tool {where}: no JSON schema for type {hint!r}; use str, int, float, bool, "
                    "list[...], dict, Literal[...] or Optional[...]")


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Returns?|Raises|Yields?|"
                      r"Examples?|Notes?|See Also|Warnings?)\s*:?\s*$", re.IGNORECASE)
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args"}


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(summary, {argument: description}) from a Google- or numpy-style docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section, current, indent = None, None, 0
    for i, line in enumerate(lines):
        header = _SECTION.match(line.strip())
        numpy_rule = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if header and (line.strip().endswith(":") or numpy_rule) and not line.startswith(" "):
            section, current = header.group(1).lower(), None
            continue
        if set(line.strip()) == {"-"} and section:
            continue
        if section is None:
            summary.append(line.strip())
        elif section in _ARG_SECTIONS and line.strip():
            depth = len(line) - len(line.lstrip())
            entry = re.match(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$", line)
            if entry and (current is None or depth <= indent):
                current, indent = entry.group(1), depth
                # numpy puts the type after the colon and the text on the next lines
                args[current] = "" if depth == 0 and not entry.group(2) and _looks_like_type(entry.group(3)) \
                    else entry.group(3).strip()
            elif current:
                args[current] = (args[current] + " " + line.strip()).strip()
    text = " ".join(" ".join(summary).split())
    return text, {k: v for k, v in args.items() if v}


def _looks_like_type(text: str) -> bool:
    return bool(re.fullmatch(r"[\w\[\], |.]*(, optional)?", text.strip()))


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


# --- checking ---------------------------------------------------------------------------------

def check(schema: dict, args: Any) -> tuple[dict, list[str]]:
    """Validate ``args`` against an object schema: (checked args, coercion notes) or ToolError."""
    if not isinstance(args, dict):
        raise ToolError(f"arguments must be a JSON object like {{\"name\": value}}, got {_kind(args)}")
    props: dict = schema.get("properties") or {}
    closed = bool(props) and schema.get("additionalProperties") is not True
    errors, notes, out = [], [], {}
    for key, value in args.items():
        if key not in props:
            if closed or not props and schema.get("additionalProperties") is False:
                near = nearest(key, list(props))
                errors.append(f"unknown argument '{key}'" + (f" (did you mean '{near}'?)" if near else ""))
            else:
                out[key] = value
            continue
        try:
            out[key], note = _check_value(props[key], value, key)
        except ValueError as e:
            errors.append(str(e))
            continue
        if note:
            notes.append(note)
    for key in schema.get("required") or ():
        if key not in args:
            errors.append(f"missing required argument '{key}'")
    if errors:
        raise ToolError("; ".join(errors))
    return out, notes


def nearest(word: str, options: list[str]) -> str | None:
    """The option a misspelt or shortened ``word`` most likely meant ("expr" → "expression")."""
    prefixed = [o for o in options if o.startswith(word) or word.startswith(o)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = get_close_matches(word, options, n=1)
    return close[0] if close else None


def _check_value(schema: dict, value: Any, name: str) -> tuple[Any, str | None]:
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if not kinds:
        return _check_enum(schema, value, name), None
    if value is None and "null" in kinds:
        return None, None
    for kind in kinds:  # exact match first: never coerce what already fits
        if _fits(kind, value):
            return _check_enum(schema, _check_items(schema, value, name), name), None
    for kind in kinds:
        coerced = _coerce(kind, value)
        if coerced is not _NO:
            note = f"argument '{name}': read {json.dumps(value)} as {json.dumps(coerced)} ({_NAMES[kind]})"
            return _check_enum(schema, _check_items(schema, coerced, name), name), note
    want = " or ".join(_NAMES.get(k, k) for k in kinds)
    raise ValueError(f"argument '{name}' must be {want}, got {_show(value)} ({_kind(value)})")


def _check_enum(schema: dict, value: Any, name: str) -> Any:
    options = schema.get("enum")
    if options is not None and value not in options:
        raise ValueError(f"argument '{name}' must be one of {', '.join(json.dumps(o) for o in options)}, "
                         f"got {_show(value)}")
    return value


def _check_items(schema: dict, value: Any, name: str) -> Any:
    items = schema.get("items")
    if not isinstance(value, list) or not items:
        return value
    return [_check_value(items, v, f"{name}[{i}]")[0] for i, v in enumerate(value)]


_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
          "array": "a list", "object": "an object", "null": "null"}
_NO = object()


def _fits(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "boolean": bool, "array": list, "object": dict,
                              "null": type(None)}.get(kind, object))


def _coerce(kind: str, value: Any) -> Any:
    """The one sensible reading of ``value`` as ``kind``, or _NO when there is none."""
    if isinstance(value, str):
        text = value.strip()
        if kind == "integer" and re.fullmatch(r"[-+]?\d+", text):
            return int(text)
        if kind == "number" and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
            number = float(text)
            return int(number) if re.fullmatch(r"[-+]?\d+", text) else number
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("array", "object") and text[:1] in "[{":
            try:
                parsed = json.loads(text)
            except ValueError:
                return _NO
            return parsed if _fits(kind, parsed) else _NO
    elif isinstance(value, float) and kind == "integer" and value.is_integer():
        return int(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and kind == "string":
        return str(value)
    return _NO


def _kind(value: Any) -> str:
    for kind in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _fits(kind, value):
            return _NAMES[kind]
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
