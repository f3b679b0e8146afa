"""The dev store answers the bulk writes the services send (tools/ferretdb).

FerretDB v1.24 kept each update statement's query open until the whole command
was done; every open query holds a pooled connection, so an update command of
100 statements ran the pool dry and never answered, and the database it wrote
to stopped answering anyone (patches/update-closes-each-query.patch). The batch
consumers, the stats roll-ups and intake's group commit all send such
commands."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient, UpdateOne

from shared.settings import CommonSettings

STATEMENTS = 250


async def test_an_update_command_of_many_statements_is_answered(
    settings: CommonSettings,
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongo_url, socketTimeoutMS=60_000
    )
    try:
        # Named like a service's database so that the namespace's purge drops it.
        docs = client[f"{settings.mongo_db_prefix}_router"]["bulk_probe"]
        await docs.insert_many([{"_id": n, "v": 0} for n in range(STATEMENTS)])
        updates = [UpdateOne({"_id": n}, {"$set": {"v": n + 1}}) for n in range(STATEMENTS)]
        result = await asyncio.wait_for(docs.bulk_write(updates, ordered=False), 60)
        assert result.modified_count == STATEMENTS
        # The database still answers afterwards.
        assert await asyncio.wait_for(docs.count_documents({"v": {"$gt": 0}}), 10) == STATEMENTS
    finally:
        await client.close()
