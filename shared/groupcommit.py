"""Group commit: the single-document writes of concurrent requests go to the
store together, one bulk write per collection every few milliseconds.

The dev store spends about a millisecond of CPU on each command whatever it
carries, and MongoDB's round trips add up alike, so twenty requests whose
writes share one `insert` command cost the store about what one did.

Inserts share commands, and so do updates (`Update`, by `_id`): a run of up
to MAX_PER_COMMAND of them goes as one `update` command. Except a conditional
one (a compare-and-set that may find its condition gone): the dev store stops
an update command at its first failing statement and reports it under index 0
whatever its place, so such a statement goes in a command of its own. Should
a shared command fail anyway, its statements are sent again one by one (they
set a document to a value whatever it held, so sending one twice is harmless)
and each request gets its own statement's answer.

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

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

from shared.errors import UnavailableError
from shared.mongo import Document

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# Statements per command. The dev store answers update commands of many
# statements since tools/ferretdb/patches/update-closes-each-query.patch
# (tests/integration/test_dev_store.py); 50 keeps one command's work short.
MAX_PER_COMMAND = 50


@dataclass(frozen=True)
class Update:
    """One update statement of one document: `change` is an update document
    (`$set`, ...) or a whole replacement. `conditional`: the filter names more
    than the `_id` (a version read before); with `upsert=True` a statement
    whose condition no longer holds fails as a duplicate key of its `_id` (the
    store tries to insert it), which reaches its request alone."""

    filter: Document
    change: Document
    upsert: bool = False
    conditional: bool = False

    def statement(self) -> Document:
        return {"q": self.filter, "u": self.change, "upsert": self.upsert, "multi": False}


Write = InsertOne[Document] | Update
Pending = list[tuple[Write, asyncio.Future[None]]]


def in_commands(ops: list[Any]) -> list[list[Any]]:
    """`ops` cut into runs of at most MAX_PER_COMMAND, in order."""
    return [ops[i : i + MAX_PER_COMMAND] for i in range(0, len(ops), MAX_PER_COMMAND)]


@dataclass
class _Group:
    writes: dict[str, Pending] = field(default_factory=dict)

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

    async def _flush_one(self, name: str, ops: Pending) -> None:
        inserts = [(op, f) for op, f in ops if isinstance(op, InsertOne)]
        shared = [(op, f) for op, f in ops if isinstance(op, Update) and not op.conditional]
        alone = [[(op, f)] for op, f in ops if isinstance(op, Update) and op.conditional]
        await asyncio.gather(
            *(self._flush_inserts(name, run) for run in in_commands(inserts)),
            *(self._flush_updates(name, run) for run in [*in_commands(shared), *alone]),
        )

    async def _flush_inserts(self, name: str, ops: Pending) -> None:
        failed: dict[int, Exception] = {}
        try:
            inserts = [op for op, _ in ops if isinstance(op, InsertOne)]
            await self.database[name].bulk_write(inserts, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                failed[int(error["index"])] = _write_error(error)
        except Exception as exc:
            failed = dict.fromkeys(range(len(ops)), _failure(name, len(ops), exc))
        _settle(ops, failed)

    async def _flush_updates(self, name: str, ops: Pending) -> None:
        statements = [op.statement() for op, _ in ops if isinstance(op, Update)]
        try:
            reply = await self.database.command("update", name, updates=statements)
        except Exception as exc:
            _settle(ops, dict.fromkeys(range(len(ops)), _failure(name, len(ops), exc)))
            return
        errors = reply.get("writeErrors") or []
        if not errors:
            _settle(ops, {})
        elif len(ops) == 1:
            _settle(ops, {0: _write_error(errors[0])})
        else:  # which statement failed is not known (see above): each alone
            await asyncio.gather(*(self._flush_updates(name, [op]) for op in ops))


def _failure(name: str, count: int, exc: Exception) -> Exception:
    if isinstance(exc, PyMongoError | OSError):
        logger.warning("group write of %d to %s failed: %r", count, name, exc)
        return UnavailableError(f"the store did not take the write to {name}: {exc!r}")
    return exc  # never leave a request waiting for an answer


def _settle(ops: Pending, failed: dict[int, Exception]) -> None:
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
