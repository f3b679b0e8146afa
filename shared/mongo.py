"""MongoDB access on PyMongo's async API, shared by every service.

The same code runs on MongoDB 7 in production and FerretDB v1 locally, so it
stays inside FerretDB's limits (docs/DOMAIN.md §6): no transactions, no change streams,
single-document atomic updates only, one create_index call per index.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import CommonSettings

Document = dict[str, Any]
DUPLICATE_KEY = 11000


def create_client(settings: CommonSettings, timeout_ms: int = 5000) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        uuidRepresentation="standard",
    )


def service_database(
    client: AsyncMongoClient[Document], settings: CommonSettings, service: str
) -> AsyncDatabase[Document]:
    """Each service owns a database of its own: it is the only writer there."""
    return client[f"{settings.mongo_db_prefix}_{service}"]


async def ping(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True


async def insert_new(collection: AsyncCollection[Document], docs: list[Document]) -> set[int]:
    """Insert docs in one unordered write; the positions of those whose _id was
    there already (a redelivery's): the others are inserted all the same."""
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {int(e["index"]) for e in errors}
    return set()
