"""KeyedLock (shared/locks.py): one holder per key, keys independent, no leftovers.

Ordering is driven by events, not sleeps, so the tests do not depend on speed;
each wait is bounded so a broken lock fails instead of hanging.
"""

from __future__ import annotations

import asyncio

import pytest

from shared.locks import KeyedLock

TIMEOUT_S = 2.0


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(10):
        await asyncio.sleep(0)


async def hold_until(
    lock: KeyedLock, key: str, name: str, log: list[str], release: asyncio.Event
) -> None:
    async with lock.hold(key):
        log.append(f"{name} in")
        await release.wait()
        log.append(f"{name} out")


async def test_same_key_serialises() -> None:
    lock, log = KeyedLock(), list[str]()
    first_go, second_go = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(hold_until(lock, "T1", "first", log, first_go))
    await settle()
    second = asyncio.create_task(hold_until(lock, "T1", "second", log, second_go))
    await settle()
    assert log == ["first in"], "the second holder entered while the first held the key"

    second_go.set()  # the second is ready to leave at once, but must wait its turn
    await settle()
    assert log == ["first in"]

    first_go.set()
    await asyncio.wait_for(asyncio.gather(first, second), TIMEOUT_S)
    assert log == ["first in", "first out", "second in", "second out"]


async def test_waiters_enter_in_arrival_order() -> None:
    lock, log = KeyedLock(), list[str]()
    go = asyncio.Event()
    tasks = []
    for name in ("a", "b", "c", "d"):
        tasks.append(asyncio.create_task(hold_until(lock, "T1", name, log, go)))
        await settle()
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT_S)
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out", "d in", "d out"]


async def test_different_keys_run_concurrently() -> None:
    lock = KeyedLock()
    a_inside, b_inside = asyncio.Event(), asyncio.Event()

    async def holder(key: str, mine: asyncio.Event, other: asyncio.Event) -> None:
        async with lock.hold(key):
            mine.set()
            # Needs the other key's holder inside at the same time: deadlocks if serialised.
            await other.wait()

    await asyncio.wait_for(
        asyncio.gather(holder("T1", a_inside, b_inside), holder("T2", b_inside, a_inside)),
        TIMEOUT_S,
    )


async def test_map_is_empty_after_use() -> None:
    lock, log = KeyedLock(), list[str]()
    go = asyncio.Event()
    tasks = [
        asyncio.create_task(hold_until(lock, key, f"{key}{i}", log, go))
        for key in ("T1", "T2", "T3")
        for i in range(3)
    ]
    await settle()
    assert set(lock._locks) == {"T1", "T2", "T3"}
    assert lock._users == {"T1": 3, "T2": 3, "T3": 3}
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT_S)
    assert len(log) == 18
    assert lock._locks == {}
    assert lock._users == {}


async def test_map_is_empty_after_an_error_inside() -> None:
    lock = KeyedLock()
    with pytest.raises(RuntimeError, match="boom"):
        async with lock.hold("T1"):
            raise RuntimeError("boom")
    assert lock._locks == {}
    assert lock._users == {}
    async with lock.hold("T1"):  # and the key is usable again
        assert "T1" in lock._locks


async def test_cancelled_waiter_leaves_no_trace_and_does_not_block_others() -> None:
    lock, log = KeyedLock(), list[str]()
    first_go, never = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(hold_until(lock, "T1", "first", log, first_go))
    await settle()
    waiter = asyncio.create_task(hold_until(lock, "T1", "waiter", log, never))
    await settle()
    assert lock._users == {"T1": 2}

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert lock._users == {"T1": 1}

    first_go.set()
    await asyncio.wait_for(first, TIMEOUT_S)
    assert log == ["first in", "first out"]
    assert lock._locks == {} and lock._users == {}
    await asyncio.wait_for(_enter_and_leave(lock, "T1"), TIMEOUT_S)


async def _enter_and_leave(lock: KeyedLock, key: str) -> None:
    async with lock.hold(key):
        pass


async def test_holder_cancelled_inside_releases_the_key() -> None:
    lock, log = KeyedLock(), list[str]()
    never, go = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold_until(lock, "T1", "holder", log, never))
    await settle()
    next_one = asyncio.create_task(hold_until(lock, "T1", "next", log, go))
    await settle()
    holder.cancel()
    go.set()
    await asyncio.wait_for(next_one, TIMEOUT_S)
    assert log == ["holder in", "next in", "next out"]
    assert lock._locks == {} and lock._users == {}


async def test_hold_all_takes_every_key_and_overlapping_sets_do_not_deadlock() -> None:
    lock, log = KeyedLock(), list[str]()
    go = asyncio.Event()
    single = asyncio.create_task(hold_until(lock, "T2", "single", log, go))
    await settle()

    async def batch(keys: list[str], name: str) -> None:
        async with lock.hold_all(keys):
            log.append(f"{name} in")

    # Given in opposite orders: taken in one order, so neither holds a key the
    # other waits for while waiting itself.
    first = asyncio.create_task(batch(["T3", "T2", "T1"], "first"))
    second = asyncio.create_task(batch(["T1", "T3", "T2"], "second"))
    await settle()
    assert log == ["single in"], "a batch entered while one of its keys was held"
    go.set()
    await asyncio.wait_for(asyncio.gather(single, first, second), TIMEOUT_S)
    assert log == ["single in", "single out", "first in", "second in"]
    async with lock.hold("T1"):  # every key released
        pass
