"""The dev store's own ceiling on this machine: single-document inserts (the
commonest write of the pipeline) from many concurrent clients into one
collection, on the store the pipeline bench uses."""

from __future__ import annotations

import asyncio
import time
import uuid

from pymongo import AsyncMongoClient

from shared.mongo import Document

BODY = "工单" * 300  # about the size of a stored ticket event


async def insert_rate(mongo_url: str, duration_s: float = 5.0, clients: int = 32) -> float:
    """Documents inserted per second, each insert_one awaited (acknowledged)."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, maxPoolSize=clients)
    database = f"bench_store_{uuid.uuid4().hex[:8]}"
    collection = client[database]["echo"]
    try:
        await collection.insert_one({"_id": "warm"})
        done = 0
        stop_at = time.monotonic() + duration_s

        async def writer(w: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < stop_at:
                await collection.insert_one({"_id": f"{w}-{n}", "body": BODY})
                n += 1
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(writer(w) for w in range(clients)))
        return done / (time.monotonic() - started)
    finally:
        await client.drop_database(database)
        await client.close()
