"""What an agent loop did: its steps, its answer, why it stopped, and the tokens it spent.

All loops (ReAct, ReWOO, native tool calls) return the same ``Trace`` so they can be compared
(bench/agents.py) and shown the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from simulacra.agents.tools import Call, Observation


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, usage: Mapping[str, int] | None) -> None:
        """Count one chunk's usage (engines put it on each sample's last chunk)."""
        if usage:
            self.prompt_tokens += int(usage.get("prompt_tokens", 0))
            self.completion_tokens += int(usage.get("completion_tokens", 0))
            self.model_calls += 1


@dataclass
class Step:
    thought: str = ""
    call: Call | None = None
    observation: Observation | None = None
    text: str = ""  # what the model wrote for this step, as written


@dataclass
class Trace:
    question: str
    steps: list[Step] = field(default_factory=list)
    answer: str | None = None
    # "answer", "max_steps", "loop" (the same call kept repeating), "rejected" (plan not approved)
    stopped: str = "answer"
    usage: Usage = field(default_factory=Usage)
    transcript: str = ""  # the text-protocol prompt as it ended, for reading and debugging

    @property
    def calls(self) -> list[Call]:
        return [s.call for s in self.steps if s.call is not None]

    @property
    def observations(self) -> list[Observation]:
        return [s.observation for s in self.steps if s.observation is not None]


class LoopGuard:
    """Counts identical calls (same name and arguments) across a run.

    The ``limit``-th identical call is not run: the model is told to try something else. One more
    after that ends the run.
    """

    def __init__(self, limit: int = 2):
        self.limit = max(1, limit)
        self.seen: dict[str, int] = {}

    def see(self, call: Call) -> str:
        """"run", "warn" or "stop" for this call."""
        n = self.seen[call.key()] = self.seen.get(call.key(), 0) + 1
        if n < self.limit:
            return "run"
        return "warn" if n == self.limit else "stop"

    def warning(self, call: Call) -> str:
        return (f"You already called {call} {self.limit - 1} time(s) with the same arguments. "
                "Calling it again will not help: try a different tool or arguments, or give the Final Answer.")
