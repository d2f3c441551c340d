"""Fair queueing in front of one engine.

An engine decodes ``slots`` requests at once (llama.cpp's parallel slots; 1 for most engines).
The rest wait: first come first served within one API key, and keys take turns, so a client
that sends fifty requests delays another client's one request by at most one turn, not fifty.
A key may have at most ``depth`` requests waiting per engine; one more is refused with 429
at once rather than queued without bound.
"""
from __future__ import annotations

import asyncio
from collections import deque

from simulacra.errors import SimulacraError


class QueueFull(SimulacraError):
    """Too many requests from one key are already waiting; the client should retry later."""

    status = 429


class Slot:
    """A turn on the engine; ``release`` it when the request is done (more than once is fine)."""

    def __init__(self, queue: "FairQueue"):
        self._queue: FairQueue | None = queue

    def release(self) -> None:
        if self._queue is not None:
            queue, self._queue = self._queue, None
            queue._release()


class FairQueue:
    def __init__(self, slots: int = 1, depth: int = 16):
        if slots < 1 or depth < 0:
            raise ValueError("slots must be at least 1 and depth at least 0")
        self.slots, self.depth = slots, depth
        self.running = 0
        self._lines: dict[str, deque[asyncio.Future]] = {}  # per key, FIFO
        self._turns: deque[str] = deque()  # keys with someone waiting, in serving order

    def waiting(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._lines.get(key, ()))
        return sum(len(line) for line in self._lines.values())

    async def acquire(self, key: str = "") -> Slot:
        """Wait for a turn; raise QueueFull if ``key`` already has ``depth`` requests waiting."""
        if self.running < self.slots and not self._turns:
            self.running += 1
            return Slot(self)
        line = self._lines.get(key)
        if len((line or ())) >= self.depth:
            raise QueueFull(f"too many requests waiting for this model ({self.depth} per API key); "
                            "retry after one of yours finishes")
        if line is None:
            line = self._lines[key] = deque()
            self._turns.append(key)
        turn = asyncio.get_running_loop().create_future()
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # granted as the client gave up: pass it on
                self._release()
            else:
                self._forget(key, turn)
            raise
        return Slot(self)

    def _release(self) -> None:
        self.running -= 1
        while self.running < self.slots and self._turns:
            key = self._turns.popleft()
            line = self._lines[key]
            turn = line.popleft()
            if line:
                self._turns.append(key)  # back of the round
            else:
                del self._lines[key]
            if not turn.done():
                self.running += 1
                turn.set_result(None)

    def _forget(self, key: str, turn: asyncio.Future) -> None:
        line = self._lines.get(key)
        if line is None or turn not in line:
            return
        line.remove(turn)
        if not line:
            del self._lines[key]
            self._turns.remove(key)
