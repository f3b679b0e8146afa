"""Hotspots: many callers about one problem at one place.

A place is a district and a geo cell (about 500 m) or, without coordinates, a
town. Each place has one small document of text clusters; a ticket joins the
cluster whose text it resembles (rapidfuzz) or starts one. A cluster that
reaches the minimum number of distinct callers is copied to the hotspots
collection staff read, keyed by the cluster id, so listing never scans tickets.

A place's document is kept in memory after this process wrote it, so a
ticket at a place seen lately costs no read: each write is conditional on the
version it was made from, and a write another replica got in before fails as a
duplicate key (shared.groupcommit.Update), after which the place is read again
and the ticket joined to what is there. Both writes (the place and the hotspot
it makes) go with other requests' writes, under the place's lock, so one
document never has two writes in one group.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from rapidfuzz import fuzz

from services.intake.textparse import fold
from shared.domain import TicketDraft
from shared.groupcommit import GroupWriter, Update
from shared.locks import KeyedLock
from shared.logmask import mask_phones
from shared.mongo import Document

CELL_DEGREES = 0.005
MAX_CLUSTERS_PER_PLACE = 200
MAX_TICKETS_PER_CLUSTER = 500
MAX_PLACES_HELD = 2000  # places whose last written document is kept in memory
CAS_TRIES = 5


@dataclass(frozen=True)
class HotspotPolicy:
    similarity: float
    min_callers: int
    window: timedelta


def place_of(draft: TicketDraft) -> str | None:
    if draft.location is not None:
        lat = round(draft.location.lat / CELL_DEGREES) * CELL_DEGREES
        lon = round(draft.location.lon / CELL_DEGREES) * CELL_DEGREES
        return f"{draft.district}|cell:{lat:.3f},{lon:.3f}"
    if draft.town:
        return f"{draft.district}|town:{draft.town}"
    return None  # no place finer than a district: too coarse to say "the same place"


class Hotspots:
    def __init__(
        self, db: AsyncDatabase[Document], policy: HotspotPolicy, writer: GroupWriter | None = None
    ) -> None:
        self._places = db["hotspot_places"]
        self._hotspots = db["hotspots"]
        self._policy = policy
        self._locks = KeyedLock()
        self._writer = writer or GroupWriter(db)
        self._held: dict[str, Document] = {}  # place -> the document last written here

    async def ensure_indexes(self) -> None:
        await self._hotspots.create_index([("last_at", -1)])

    async def add(self, draft: TicketDraft, ticket_id: str, caller: str, now: datetime) -> None:
        place = place_of(draft)
        if place is None:
            return
        async with self._locks.hold(place):
            for _ in range(CAS_TRIES):
                cluster = await self._try_add(place, draft, ticket_id, caller, now)
                if cluster is not None:
                    break
            else:
                raise RuntimeError(f"hotspot place {place} kept changing under us")
            if len(cluster["callers"]) >= self._policy.min_callers:
                await self._publish(place, draft, cluster)

    async def _try_add(
        self, place: str, draft: TicketDraft, ticket_id: str, caller: str, now: datetime
    ) -> Document | None:
        """The cluster the ticket joined, or None if another writer got in first."""
        held = self._held.pop(place, None)
        doc = held if held is not None else await self._places.find_one({"_id": place})
        version = (doc or {}).get("version")
        clusters = [dict(c) for c in (doc or {}).get("clusters", []) if self._live(c, now)]
        cluster = self._join(clusters, draft, ticket_id, caller, now)
        new: Document = {"_id": place, "clusters": clusters[-MAX_CLUSTERS_PER_PLACE:]}
        new["version"] = int(version or 0) + 1
        try:
            write = Update({"_id": place, "version": version}, new, upsert=True, conditional=True)
            await self._writer.write(self._places.name, write)
        except DuplicateKeyError:
            return None  # not held any more: read again
        if len(self._held) >= MAX_PLACES_HELD:
            self._held.pop(next(iter(self._held)))
        self._held[place] = new
        return cluster

    def _live(self, cluster: Document, now: datetime) -> bool:
        return bool(cluster["last_at"] >= now - self._policy.window)

    def _join(
        self,
        clusters: list[Document],
        draft: TicketDraft,
        ticket_id: str,
        caller: str,
        now: datetime,
    ) -> Document:
        folded = fold(draft.text)
        scored = [(fuzz.ratio(folded, c["text"]), c) for c in clusters]
        best = max(scored, key=lambda pair: pair[0], default=None)
        if best is None or best[0] < self._policy.similarity:
            cluster: Document = {
                "id": uuid.uuid4().hex,
                "text": folded,
                "sample": mask_phones(draft.text[:200]),
                "category": draft.category.value,
                "first_at": now,
                "tickets": [],
                "callers": [],
            }
            clusters.append(cluster)
        else:
            cluster = best[1]
        cluster["last_at"] = now
        cluster["tickets"] = [*cluster["tickets"], ticket_id][-MAX_TICKETS_PER_CLUSTER:]
        if caller not in cluster["callers"]:
            cluster["callers"] = [*cluster["callers"], caller]
        return cluster

    async def _publish(self, place: str, draft: TicketDraft, cluster: Document) -> None:
        district, where = place.split("|", 1)
        hotspot: Document = {
            "_id": cluster["id"],
            "district": district,
            "place": where,
            "town": draft.town,
            "category": cluster["category"],
            "sample": cluster["sample"],
            "tickets": cluster["tickets"],
            "callers": len(cluster["callers"]),
            "first_at": cluster["first_at"],
            "last_at": cluster["last_at"],
        }
        write = Update({"_id": cluster["id"]}, hotspot, upsert=True)
        await self._writer.write(self._hotspots.name, write)

    async def list(self, now: datetime, district: str | None = None) -> list[dict[str, Any]]:
        query: Document = {"last_at": {"$gte": now - self._policy.window}}
        if district:
            query["district"] = district
        docs = await self._hotspots.find(query).to_list(length=500)
        docs.sort(key=lambda d: (-int(d["callers"]), d["first_at"]))
        return [{"id": d.pop("_id"), **d} for d in docs]
