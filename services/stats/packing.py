"""The inbox's records packed in one binary field (services.stats.repository).

The dev store converts every field of a document on each insert, read and
delete, and the inbox is written, read and deleted once for every event: a
compressed BSON document in one binary field is one field to convert.
"""

from __future__ import annotations

import zlib

import bson

from shared.mongo import Document

PACKED = "packed"


def pack(records: list[Document]) -> bytes:
    """What the aggregator needs of archive records (the id and the event), as
    one compressed BSON document."""
    kept = [{"_id": r["_id"], "event": r["event"]} for r in records]
    return zlib.compress(bson.encode({"records": kept}), 1)


def unpacked(doc: Document) -> Document:
    """An inbox document with its records (one written before they were packed
    holds them as they are)."""
    if PACKED not in doc:
        return doc
    return {"_id": doc["_id"], **bson.decode(zlib.decompress(doc[PACKED]))}
