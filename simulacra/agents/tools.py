"""Tools a model may call, and the box that calls them safely.

    @tool
    def roll_dice(spec: str) -> int:
        '''Roll dice.

        Args:
            spec: dice notation such as 2d6+1
        '''

    box = ToolBox([roll_dice, calculator], allow=["roll_dice"])
    observation = await box.call("roll_dice", '{"spec": "2d6"}')

``ToolBox.call`` never raises: a wrong name, bad JSON, wrong argument types, a refused
confirmation, a timeout or a crash inside the tool all come back as an ``Observation`` whose text
tells the model what went wrong and how to call the tool correctly. Agent loops show it to the
model and carry on.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

from simulacra.agents.schema import check, function_schema, nearest
from simulacra.errors import SimulacraError, ToolError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
MAX_OUTPUT = 2000  # characters of tool output shown to the model


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments object
    fn: Callable[..., Any]
    side_effects: bool = False  # it changes something (files, memory): confirm before running
    timeout: float = DEFAULT_TIMEOUT

    @property
    def schema(self) -> dict:
        """The OpenAI function-calling form, as chat engines take it in ``tools=``."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def signature(self) -> str:
        """A one-line usage hint: ``roll_dice {"spec": string}``."""
        props = self.parameters.get("properties") or {}
        required = set(self.parameters.get("required") or ())
        parts = []
        for key, prop in props.items():
            kind = prop.get("type", "value")
            kind = "|".join(kind) if isinstance(kind, list) else kind
            if "enum" in prop:
                kind = "|".join(json.dumps(v) for v in prop["enum"])
            parts.append(f'"{key}": {kind}' + ("" if key in required else " (optional)"))
        return f"{self.name} {{{', '.join(parts)}}}"

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def tool(fn: Callable | None = None, *, name: str | None = None, description: str | None = None,
         side_effects: bool = False, timeout: float = DEFAULT_TIMEOUT):
    """Make a Tool from a function (sync or async); its schema comes from hints and docstring."""
    def build(f: Callable) -> Tool:
        summary, parameters = function_schema(f)
        return Tool(name or f.__name__, description or summary, parameters, f, side_effects, timeout)

    return build(fn) if fn is not None else build


@dataclass(frozen=True)
class Call:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """Identity for loop detection: same name, same arguments."""
        return f"{self.name} {json.dumps(self.arguments, sort_keys=True, default=str)}"

    def __str__(self) -> str:
        return f"{self.name} {json.dumps(dict(self.arguments), ensure_ascii=False, default=str)}"


@dataclass(frozen=True)
class Observation:
    """What came back from a call. ``text`` is what the model is shown."""

    call: Call
    text: str
    ok: bool = True
    notes: tuple[str, ...] = ()
    value: Any = None  # the tool's own return value when it ran

    def __str__(self) -> str:
        return self.text


Confirm = Callable[[Call], "Awaitable[bool] | bool"]  # asked before a side-effect tool runs


class ToolBox:
    def __init__(self, tools: Iterable[Tool | Callable] = (), allow: Iterable[str] | None = None,
                 confirm: Confirm | None = None, max_output: int = MAX_OUTPUT):
        self.tools: dict[str, Tool] = {}
        self.allow = None if allow is None else set(allow)
        self.confirm = confirm
        self.max_output = max_output
        self.add(*tools)

    def add(self, *tools: Tool | Callable) -> None:
        for t in tools:
            t = t if isinstance(t, Tool) else tool(t)
            if t.name in self.tools:
                raise ToolError(f"two tools are named '{t.name}'; rename one with @tool(name=...)")
            self.tools[t.name] = t

    def allowed(self, name: str) -> bool:
        return name in self.tools and (self.allow is None or name in self.allow)

    @property
    def available(self) -> list[Tool]:
        """The tools a model may call, in the order they were added."""
        return [t for t in self.tools.values() if self.allowed(t.name)]

    def schemas(self) -> list[dict]:
        return [t.schema for t in self.available]

    def __contains__(self, name: str) -> bool:
        return self.allowed(name)

    def __len__(self) -> int:
        return len(self.available)

    async def call(self, name: str, arguments: str | Mapping[str, Any] | None = None) -> Observation:
        """Validate, confirm and run one call. Never raises: failures become error observations."""
        call = Call(name, arguments if isinstance(arguments, Mapping) else {})
        try:
            t = self._lookup(name)
            args, notes = check(t.parameters, _decode(arguments))
        except ToolError as e:  # called wrongly: show the right form
            return Observation(call, self._error_text(name, str(e)), ok=False)
        call = Call(name, args)
        try:
            if t.side_effects and self.confirm is not None and not await _maybe_await(self.confirm(call)):
                raise ToolError(f"the person declined to run {name}: do something else or ask them")
            value = await self._run(t, args)
        except ToolError as e:  # the tool's own message says what to change
            return Observation(call, f"Error: {e}", ok=False)
        except SimulacraError as e:  # e.g. bad input the tool's own layer rejected: already readable
            return Observation(call, f"Error: {name}: {e}", ok=False)
        except Exception as e:  # a bug inside the tool must not end the agent's turn
            log.warning("tool %s raised", name, exc_info=True)
            return Observation(call, f"Error: {name} failed: {type(e).__name__}: {e}", ok=False)
        text = _render(value)
        if len(text) > self.max_output:
            text = text[: self.max_output] + f"\n[cut: {len(text) - self.max_output} more characters]"
        if notes:
            text += "\n(note: " + "; ".join(notes) + ")"
        return Observation(call, text, ok=True, notes=tuple(notes), value=value)

    def _lookup(self, name: str) -> Tool:
        if name in self.tools and not self.allowed(name):
            raise ToolError(f"tool '{name}' is not allowed here")
        if name not in self.tools:
            near = nearest(name, [t.name for t in self.available])
            raise ToolError(f"there is no tool '{name}'" + (f" (did you mean '{near}'?)" if near else ""))
        return self.tools[name]

    def _error_text(self, name: str, message: str) -> str:
        text = f"Error: {message.rstrip('. ')}"
        if self.allowed(name):
            return f"{text}. Usage: {self.tools[name].signature()}"
        names = ", ".join(t.name for t in self.available) or "none"
        return f"{text}. Tools you can use: {names}"

    async def _run(self, t: Tool, args: dict) -> Any:
        try:
            if inspect.iscoroutinefunction(t.fn):
                return await asyncio.wait_for(t.fn(**args), t.timeout)
            return await asyncio.wait_for(_in_thread(t.fn, args), t.timeout)
        except asyncio.TimeoutError:
            raise ToolError(f"{t.name} took longer than {t.timeout:g}s and was abandoned; "
                            "try simpler arguments") from None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _decode(arguments: str | Mapping[str, Any] | None) -> Any:
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    text = arguments.strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError as e:
        raise ToolError(f"arguments are not valid JSON ({e.msg} at character {e.pos}): {text[:80]}") from None


def _in_thread(fn: Callable, args: dict) -> asyncio.Future:
    """Run a sync tool on a daemon thread: a hung tool is abandoned, not waited for at exit."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(method: str, value: Any) -> None:
        if not future.done():
            getattr(future, method)(value)

    def work() -> None:
        try:
            result, method = fn(**args), "set_result"
        except BaseException as e:  # handed to the awaiting task, which turns it into an observation
            result, method = e, "set_exception"
        try:
            loop.call_soon_threadsafe(settle, method, result)
        except RuntimeError:  # the loop closed while the tool ran: nobody is waiting any more
            pass

    threading.Thread(target=work, daemon=True, name=f"tool-{getattr(fn, '__name__', 'fn')}").start()
    return future


def _render(value: Any) -> str:
    if value is None:
        return "done"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
