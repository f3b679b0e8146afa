"""The one key store of every service (shared/keys.py, shared/access.py and
`hotline keys ...`) against the real store.

A key is shown once and stored only as its SHA-256; the tests read the
api_keys collection itself to check that the key appears nowhere. The CLI runs
as a subprocess, pointed at the test's own databases by HOTLINE_MONGO_DB_PREFIX.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.access import Access
from shared.events import utcnow
from shared.keys import KeyKind, KeyOwner, KeyStore, keys_database
from shared.mongo import Document, create_client
from shared.settings import CommonSettings
from tests.support import ROOT

pytestmark = pytest.mark.integration

WATER = (KeyKind.DEPARTMENT, "guanxian.water")
STAFF = (KeyKind.STAFF, "zhang.san")


def owner(key_id: str, kind: KeyKind, who: str) -> KeyOwner:
    return KeyOwner(kind=kind, id=who, key_id=key_id)


@dataclass
class Store:
    db: AsyncDatabase[Document]
    keys: KeyStore

    async def raw_documents(self) -> list[Document]:
        return await self.db["api_keys"].find({}).to_list()


@pytest.fixture
async def store(settings: CommonSettings) -> AsyncIterator[Store]:
    client = create_client(settings)
    try:
        db = keys_database(client, settings)
        assert db.name == f"{settings.mongo_db_prefix}_keys"
        keys = KeyStore(db)
        await keys.ensure_indexes()
        yield Store(db, keys)
    finally:
        await client.close()


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def hotline(settings: CommonSettings, *args: str) -> Ran:
    """`hotline ARGS` as a process of its own, on the test's databases."""
    env = {
        **os.environ,
        "HOTLINE_MONGO_URL": settings.mongo_url,
        "HOTLINE_MONGO_DB_PREFIX": settings.mongo_db_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def contains(document: object, text: str) -> bool:
    """Whether the text appears anywhere in the document, keys and values."""
    if isinstance(document, dict):
        return any(contains(k, text) or contains(v, text) for k, v in document.items())
    if isinstance(document, list | tuple):
        return any(contains(v, text) for v in document)
    return text in str(document)


async def test_a_key_is_shown_once_and_stored_only_as_its_hash(store: Store) -> None:
    key_id, key = await store.keys.issue(*WATER, utcnow())
    assert key.startswith("hk_")
    assert len(key) > 40
    digest = hashlib.sha256(key.encode()).hexdigest()
    [doc] = await store.raw_documents()
    assert doc["_id"] == digest
    assert doc["key_id"] == key_id
    assert (doc["kind"], doc["principal"], doc["revoked_at"]) == (
        "department",
        "guanxian.water",
        None,
    )
    assert not contains(doc, key)
    assert not contains(doc, key.removeprefix("hk_"))
    # Two keys for one principal are two different keys.
    other_id, other = await store.keys.issue(*WATER, utcnow())
    assert (other_id, other) != (key_id, key)


async def test_verify_knows_the_right_key_only(store: Store) -> None:
    water_id, water = await store.keys.issue(*WATER, utcnow())
    staff_id, staff = await store.keys.issue(*STAFF, utcnow())
    assert await store.keys.verify(water) == owner(water_id, *WATER)
    assert await store.keys.verify(staff) == owner(staff_id, *STAFF)
    for wrong in (water[:-1], water + "x", water.upper(), "hk_", "", "x" * 300, "hk_" + "a" * 300):
        assert await store.keys.verify(wrong) is None


async def test_a_revoked_key_is_refused(store: Store) -> None:
    key_id, key = await store.keys.issue(*WATER, utcnow())
    kept_id, kept = await store.keys.issue(*WATER, utcnow())
    assert await store.keys.revoke(key_id, utcnow())
    assert await store.keys.verify(key) is None
    assert await store.keys.verify(kept) == owner(kept_id, *WATER)  # only that key
    assert not await store.keys.revoke(key_id, utcnow())  # once
    assert not await store.keys.revoke("no-such-key", utcnow())


async def test_the_list_shows_owners_never_key_material(store: Store) -> None:
    issued = [await store.keys.issue(*p, utcnow()) for p in (WATER, STAFF)]
    await store.keys.revoke(issued[1][0], utcnow())
    listed = await store.keys.list()
    assert [(d["key_id"], d["kind"], d["principal"]) for d in listed] == [
        (issued[0][0], "department", "guanxian.water"),
        (issued[1][0], "staff", "zhang.san"),
    ]
    assert listed[0]["revoked_at"] is None
    assert listed[1]["revoked_at"] is not None
    for doc, (_, key) in zip(listed, issued, strict=True):
        assert "_id" not in doc
        assert not contains(doc, key)
        assert not contains(doc, hashlib.sha256(key.encode()).hexdigest())


async def test_the_keys_cli_issues_lists_and_revokes(
    settings: CommonSettings, store: Store
) -> None:
    issued = await hotline(settings, "keys", "issue", "--department", "guanxian.water")
    assert issued.code == 0, issued.err
    key_id = re.search(r"key id: (\S+)", issued.out)
    key = re.search(r"key:\s+(hk_\S+)", issued.out)
    assert key_id is not None and key is not None, issued.out
    assert await store.keys.verify(key[1]) == owner(key_id[1], *WATER)
    staff = await hotline(settings, "keys", "issue", "--staff", "zhang.san")
    assert staff.code == 0, staff.err

    listed = await hotline(settings, "keys", "list")
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert len(lines) == 2
    assert key_id[1] in lines[0]
    assert "guanxian.water" in lines[0] and "active" in lines[0]
    assert "zhang.san" in lines[1]
    assert "hk_" not in listed.out

    revoked = await hotline(settings, "keys", "revoke", key_id[1])
    assert revoked.code == 0, revoked.err
    assert await store.keys.verify(key[1]) is None
    listed = await hotline(settings, "keys", "list")
    assert "revoked" in listed.out.splitlines()[0]
    again = await hotline(settings, "keys", "revoke", key_id[1])
    assert again.code == 1
    assert key_id[1] in again.err


async def test_the_keys_cli_refuses_an_unknown_department(
    settings: CommonSettings, store: Store
) -> None:
    ran = await hotline(settings, "keys", "issue", "--department", "guanxian.nowhere")
    assert ran.code == 1
    assert "guanxian.nowhere" in ran.err
    assert "hk_" not in ran.out
    assert await store.raw_documents() == []


async def test_the_keys_cli_issues_every_kind_into_the_one_store(
    settings: CommonSettings, store: Store
) -> None:
    for flag, who, kind in (
        ("--agent", "seat-017", KeyKind.AGENT),
        ("--channel", "open311", KeyKind.CHANNEL),
        ("--staff", "li.si", KeyKind.STAFF),
    ):
        issued = await hotline(settings, "keys", "issue", flag, who)
        assert issued.code == 0, issued.err
        key = re.search(r"key:\s+(hk_\S+)", issued.out)
        assert key is not None, issued.out
        verified = await store.keys.verify(key[1])
        assert verified is not None and (verified.kind, verified.id) == (kind, who)
    for flag, bad, message in (
        ("--channel", "pigeon", "no intake channel 'pigeon'"),
        ("--agent", " ", "give a agent id"),
    ):
        refused = await hotline(settings, "keys", "issue", flag, bad)
        assert refused.code == 1 and message in refused.err, refused.err
    assert len(await store.raw_documents()) == 3


class Ticking:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_revoked_key_stops_working_within_the_cache_time(store: Store) -> None:
    clock = Ticking()
    access = Access(store.keys, None, cache_s=2.0, clock=clock)
    key_id, key = await store.keys.issue(*WATER, utcnow())
    assert await access.verify(key) == owner(key_id, *WATER)
    assert await store.keys.revoke(key_id, utcnow())
    clock.now += 1.9
    assert await access.verify(key) is not None  # still trusted from the cache
    clock.now += 0.2
    assert await access.verify(key) is None  # 2 s after it was verified: gone
    clock.now += 10
    assert await access.verify(key) is None


async def test_a_failed_key_is_not_cached(store: Store) -> None:
    access = Access(store.keys, None, cache_s=2.0, clock=Ticking())
    assert await access.verify("hk_" + "b" * 43) is None
    key_id, key = await store.keys.issue(*STAFF, utcnow())
    assert await access.verify(key) == owner(key_id, *STAFF)
