"""API keys of departments and hotline staff (services/router/keys.py and
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

from services.router.keys import KeyRepository
from services.router.workflow.state import Principal
from shared.domain import ActorKind
from shared.events import utcnow
from shared.mongo import Document, create_client, service_database
from shared.settings import CommonSettings
from tests.support import ROOT

pytestmark = pytest.mark.integration

WATER = Principal(kind=ActorKind.DEPARTMENT, id="guanxian.water")
STAFF = Principal(kind=ActorKind.STAFF, id="zhang.san")


@dataclass
class Store:
    db: AsyncDatabase[Document]
    keys: KeyRepository

    async def raw_documents(self) -> list[Document]:
        return await self.db["api_keys"].find({}).to_list()


@pytest.fixture
async def store(settings: CommonSettings) -> AsyncIterator[Store]:
    client = create_client(settings)
    try:
        db = service_database(client, settings, "router")
        keys = KeyRepository(db)
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
    key_id, key = await store.keys.issue(WATER, utcnow())
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
    other_id, other = await store.keys.issue(WATER, utcnow())
    assert (other_id, other) != (key_id, key)


async def test_verify_knows_the_right_key_only(store: Store) -> None:
    _, water = await store.keys.issue(WATER, utcnow())
    _, staff = await store.keys.issue(STAFF, utcnow())
    assert await store.keys.verify(water) == WATER
    assert await store.keys.verify(staff) == STAFF
    for wrong in (water[:-1], water + "x", water.upper(), "hk_", "", "x" * 300, "hk_" + "a" * 300):
        assert await store.keys.verify(wrong) is None


async def test_a_revoked_key_is_refused(store: Store) -> None:
    key_id, key = await store.keys.issue(WATER, utcnow())
    _, kept = await store.keys.issue(WATER, utcnow())
    assert await store.keys.revoke(key_id, utcnow())
    assert await store.keys.verify(key) is None
    assert await store.keys.verify(kept) == WATER  # only that key
    assert not await store.keys.revoke(key_id, utcnow())  # once
    assert not await store.keys.revoke("no-such-key", utcnow())


async def test_the_list_shows_owners_never_key_material(store: Store) -> None:
    issued = [await store.keys.issue(p, utcnow()) for p in (WATER, STAFF)]
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
    assert await store.keys.verify(key[1]) == WATER
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
