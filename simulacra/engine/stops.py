"""Streaming-safe stop sequences.

A stop may arrive split across chunks ("</" then "s>"), so text that could still be the start of
a stop is held back until the next chunk decides it. The result is independent of how the text
was chunked: output ends where the first stop sequence to *complete* begins (ties: the longest).
"""
from __future__ import annotations

from typing import Iterable


class StopMatcher:
    def __init__(self, stops: Iterable[str]):
        self.stops = sorted({s for s in stops if s}, key=len, reverse=True)
        self.buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Take new text; return the part that is now safe to emit."""
        if self.stopped:
            return ""
        self.buffer += text
        cut = self._first_completed_stop()
        if cut is not None:
            out, self.buffer, self.stopped = self.buffer[:cut], "", True
            return out
        hold = self._held_suffix()
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(self.buffer) - hold :]
        return out

    def flush(self) -> str:
        """The stream ended without a stop: release whatever was held back."""
        out, self.buffer = self.buffer, ""
        return out

    def _first_completed_stop(self) -> int | None:
        best: tuple[int, int] | None = None  # (end, start)
        for stop in self.stops:
            start = self.buffer.find(stop)
            if start >= 0 and (best is None or (start + len(stop), start) < best):
                best = (start + len(stop), start)
        return None if best is None else best[1]

    def _held_suffix(self) -> int:
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.buffer)), hold, -1):
                if self.buffer.endswith(stop[:k]):
                    hold = k
                    break
        return hold
