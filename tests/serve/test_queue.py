"""FairQueue: FIFO within a key, keys take turns, a full line is refused, cancelled waiters leave."""
from __future__ import annotations

import asyncio

import pytest

from simulacra.serve.queue import FairQueue, QueueFull


async def _served_order(queue: FairQueue, requests: list[tuple[str, str]]) -> list[str]:
    """Hold the only slot, queue ``requests`` (key, label), then release and record who runs."""
    order: list[str] = []
    holder = await queue.acquire("holder")

    async def one(key: str, label: str):
        slot = await queue.acquire(key)
        order.append(label)
        await asyncio.sleep(0)
        slot.release()

    tasks = []
    for key, label in requests:
        tasks.append(asyncio.create_task(one(key, label)))
        await asyncio.sleep(0)  # let it join the line in this order
    holder.release()
    await asyncio.gather(*tasks)
    return order


async def test_one_key_is_first_come_first_served():
    order = await _served_order(FairQueue(1, 10), [("a", f"a{i}") for i in range(5)])
    assert order == ["a0", "a1", "a2", "a3", "a4"]


async def test_keys_take_turns():
    # a sends four before b and c send one each: b and c do not wait behind all of a's
    requests = [("a", "a0"), ("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b0"), ("c", "c0"), ("b", "b1")]
    order = await _served_order(FairQueue(1, 10), requests)
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


async def test_a_full_line_is_refused_per_key():
    queue = FairQueue(1, 2)
    holder = await queue.acquire("a")
    waiting = [asyncio.create_task(queue.acquire("a")) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull) as refused:
        await queue.acquire("a")
    assert refused.value.status == 429
    other = asyncio.create_task(queue.acquire("b"))  # another key still gets in line
    await asyncio.sleep(0)
    assert queue.waiting("a") == 2 and queue.waiting("b") == 1
    holder.release()
    for next_done in asyncio.as_completed([*waiting, other]):
        (await next_done).release()
    assert queue.running == 0 and queue.waiting() == 0


async def test_slots_run_at_once_and_release_is_idempotent():
    queue = FairQueue(3, 0)
    slots = [await queue.acquire("a") for _ in range(3)]
    assert queue.running == 3
    with pytest.raises(QueueFull):  # depth 0: nobody may wait
        await queue.acquire("a")
    slots[0].release()
    slots[0].release()
    assert queue.running == 2


async def test_a_cancelled_waiter_leaves_the_line():
    queue = FairQueue(1, 5)
    holder = await queue.acquire("a")
    gone = asyncio.create_task(queue.acquire("b"))
    stays = asyncio.create_task(queue.acquire("c"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert queue.waiting("b") == 0
    holder.release()
    (await stays).release()
    assert queue.running == 0 and queue.waiting() == 0


async def test_a_turn_granted_to_a_cancelled_waiter_passes_on():
    queue = FairQueue(1, 5)
    holder = await queue.acquire("a")
    first = asyncio.create_task(queue.acquire("b"))
    second = asyncio.create_task(queue.acquire("c"))
    await asyncio.sleep(0)
    holder.release()  # grants b's turn...
    first.cancel()  # ...which b gives up before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    (await asyncio.wait_for(second, 1)).release()
    assert queue.running == 0
