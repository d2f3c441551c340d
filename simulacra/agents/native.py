"""Native tool calls for chat engines that declare ``capabilities.can_tools``.

The toolbox's schemas go to ``engine.chat(messages, sampling, tools=...)``; tool calls come back
on ``Chunk.tool_calls``. Each call runs through the toolbox (validation, allowlist, confirmation,
timeout) and its observation goes back as a ``{"role": "tool"}`` turn, until the model answers
in text. Bounded like ReAct: ``max_steps`` model calls and the same loop guard.
"""
from __future__ import annotations

import inspect
import json
from typing import Any, Callable, Sequence

from simulacra.agents.tools import Call, Observation, ToolBox
from simulacra.agents.trace import LoopGuard, Step, Trace, Usage
from simulacra.errors import EngineError
from simulacra.types import ChatTurn, Completer, Sampling, ToolCall

DEFAULT_SAMPLING = Sampling(temperature=0.0, max_tokens=300)


async def run_native(engine: Completer, box: ToolBox, question: str | Sequence[ChatTurn], *,
                     system: str | None = None, sampling: Sampling | None = None, max_steps: int = 6,
                     repeat_limit: int = 3, on_step: Callable[[Step], Any] | None = None) -> Trace:
    if not engine.capabilities.can_tools:
        raise EngineError(f"{getattr(engine, 'name', 'this engine')} has no native tool calls; "
                          "use run_react (the text protocol) instead")
    sampling = sampling or DEFAULT_SAMPLING
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    if isinstance(question, str):
        messages.append({"role": "user", "content": question})
    else:
        messages.extend(dict(m) for m in question)
    trace = Trace(question if isinstance(question, str) else str(messages[-1].get("content") or ""))
    trace.stopped = "max_steps"
    guard = LoopGuard(repeat_limit)
    for _ in range(max_steps):
        text, calls = await _chat(engine, messages, sampling, box.schemas(), trace.usage)
        if not calls:
            trace.answer, trace.stopped = text.strip(), "answer"
            trace.steps.append(Step(text=text))
            break
        messages.append({"role": "assistant", "content": text or None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls]})
        for c in calls:
            call = Call(c.name, _loose_arguments(c.arguments))
            verdict = guard.see(call)
            if verdict == "stop":
                trace.stopped = "loop"
                obs = Observation(call, "Stopped: this call keeps repeating.", ok=False)
            elif verdict == "warn":
                obs = Observation(call, guard.warning(call), ok=False)
            else:
                obs = await box.call(c.name, c.arguments)
            messages.append({"role": "tool", "tool_call_id": c.id, "name": c.name, "content": obs.text})
            step = Step(thought=text.strip(), call=obs.call, observation=obs, text=f"{c.name} {c.arguments}")
            trace.steps.append(step)
            if on_step is not None and inspect.isawaitable(result := on_step(step)):
                await result
        if trace.stopped == "loop":
            break
    if trace.answer is None:  # out of steps or looping: ask for an answer with no tools offered
        messages.append({"role": "user", "content": "Stop using tools now and give your final answer."})
        text, _ = await _chat(engine, messages, sampling, None, trace.usage)
        trace.answer = text.strip() or None
    trace.transcript = "\n".join(f"{m['role']}: {m.get('content') or json.dumps(m.get('tool_calls'))}"
                                 for m in messages)
    return trace


async def _chat(engine: Completer, messages: list[dict], sampling: Sampling, tools: list[dict] | None,
                usage: Usage) -> tuple[str, list[ToolCall]]:
    parts: list[str] = []
    calls: list[ToolCall] = []
    async for chunk in engine.chat(messages, sampling, tools=tools or None):
        if chunk.index != 0:
            continue
        parts.append(chunk.text)
        calls.extend(chunk.tool_calls)
        usage.add(chunk.usage)
    # ids tie each tool turn to its call; make them up where the engine gave none
    calls = [c if c.id else ToolCall(c.name, c.arguments, id=f"call_{usage.model_calls}_{i}")
             for i, c in enumerate(calls)]
    return "".join(parts), calls


def _loose_arguments(arguments: str) -> dict:
    """Arguments for loop detection only: the toolbox does the real, strict decoding."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}
