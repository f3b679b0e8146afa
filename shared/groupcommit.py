"""Group commit: the single-document writes of concurrent requests go to the
store together, one bulk write per collection every few milliseconds.

The dev store spends about a millisecond of CPU on each command whatever it
carries, and MongoDB's round trips add up alike, so twenty requests whose
writes share one `insert` command cost the store about what one did.

Inserts share commands; updates go one per command, concurrently (the dev
store does not answer update commands of many statements: see
MAX_PER_COMMAND), so they gain only the shared wait, not fewer commands.

A request hands its write over and awaits it: it resumes only once the store
acknowledged that very write, so nothing it answers afterwards (a 202) comes
before its data is stored. Each write is reported alone: a duplicate key of
one request's insert raises DuplicateKeyError in that request and no other. A
group whose bulk write cannot reach the store fails every request in it with
UnavailableError (a 503 at the HTTP edge), and none of them goes on to its next
write. Writes of one request that depend on each other (a record, then the key
that points at it) are awaited one after the other, so they never share a
group and their order is the order the request gave them. Two writes of one
document must not be handed over concurrently (their order in a group is not
defined); the callers hold a lock per document for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

from shared.errors import UnavailableError
from shared.mongo import Document

logger = logging.getLogger(__name__)

Write = InsertOne[Document] | UpdateOne | UpdateMany | ReplaceOne[Document]
DUPLICATE_KEY = 11000
# Statements per insert command. Updates go one per command: the dev store
# (FerretDB 1.24 with our write queue) never answered an update command of 100
# statements, nor concurrent update commands of 50 (a hang that held the
# database's writes), while inserts of 1,000 documents are routine.
MAX_PER_COMMAND = 50


def in_commands(ops: list[Any]) -> list[list[Any]]:
    """`ops` cut into runs of at most MAX_PER_COMMAND, in order."""
    return [ops[i : i + MAX_PER_COMMAND] for i in range(0, len(ops), MAX_PER_COMMAND)]


@dataclass
class _Group:
    writes: dict[str, list[tuple[Write, asyncio.Future[None]]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(ops) for ops in self.writes.values())


class GroupWriter:
    """One per process and database. `window_s`: how long a group waits for
    company after its first write (a flush in progress makes the next group
    wait anyway); `max_writes`: a group that big goes at once."""

    def __init__(
        self, db: AsyncDatabase[Document], window_s: float = 0.002, max_writes: int = 500
    ) -> None:
        self.database = db  # where the groups go
        self._window_s = window_s
        self._max = max_writes
        self._group = _Group()
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.groups_written = 0  # for tests and benches: how many groups went out

    async def write(self, collection: str, op: Write) -> None:
        """Hand one write over; returns once the store acknowledged it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._group.writes.setdefault(collection, []).append((op, future))
        if len(self._group) >= self._max:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_while_pending())
        await future

    async def _flush_while_pending(self) -> None:
        while len(self._group):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._window_s)
            group, self._group = self._group, _Group()
            self._full.clear()
            await self._flush(group)

    async def _flush(self, group: _Group) -> None:
        await asyncio.gather(*(self._flush_one(name, ops) for name, ops in group.writes.items()))
        self.groups_written += 1

    async def _flush_one(self, name: str, ops: list[tuple[Write, asyncio.Future[None]]]) -> None:
        inserts = [(op, f) for op, f in ops if isinstance(op, InsertOne)]
        others = [[(op, f)] for op, f in ops if not isinstance(op, InsertOne)]
        runs = [*in_commands(inserts), *others]
        await asyncio.gather(*(self._flush_run(name, run) for run in runs))

    async def _flush_run(self, name: str, ops: list[tuple[Write, asyncio.Future[None]]]) -> None:
        failed: dict[int, Exception] = {}
        try:
            await self.database[name].bulk_write([op for op, _ in ops], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                failed[int(error["index"])] = _write_error(error)
        except (PyMongoError, OSError) as exc:
            logger.warning("group write of %d to %s failed: %r", len(ops), name, exc)
            unavailable = UnavailableError(f"the store did not take the write to {name}: {exc!r}")
            failed = dict.fromkeys(range(len(ops)), unavailable)
        except Exception as exc:  # never leave a request waiting for an answer
            failed = dict.fromkeys(range(len(ops)), exc)
        for index, (_, future) in enumerate(ops):
            if future.done():  # its request was cancelled (client gone)
                continue
            if index in failed:
                future.set_exception(failed[index])
            else:
                future.set_result(None)


def _write_error(error: dict[str, Any]) -> Exception:
    message, code = str(error.get("errmsg", "")), int(error.get("code", 0))
    if code == DUPLICATE_KEY:
        return DuplicateKeyError(message, code, error)
    return WriteError(message, code, error)
