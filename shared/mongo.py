"""MongoDB access on PyMongo's async API, shared by every service.

The same code runs on MongoDB 7 in production and FerretDB v1 locally, so it
stays inside FerretDB's limits (docs/DOMAIN.md §6): no transactions, no change streams,
single-document atomic updates only, one create_index call per index.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import CommonSettings

Document = dict[str, Any]


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
