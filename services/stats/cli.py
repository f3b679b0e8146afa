"""`hotline stats rebuild`: recompute views and counters from the event archive,
so a changed definition applies to the whole history."""

from __future__ import annotations

import asyncio
import uuid
from zoneinfo import ZoneInfo

from services.stats.aggregator import Aggregator
from services.stats.repository import Counters, EventArchive, Meta, TicketViews
from shared.clock import Clock
from shared.mongo import create_client, service_database
from shared.settings import StatsSettings


def rebuild() -> int:
    return asyncio.run(_rebuild())


async def _rebuild() -> int:
    settings = StatsSettings()
    client = create_client(settings)
    try:
        db = service_database(client, settings, "stats")
        aggregator = Aggregator(
            EventArchive(db),
            TicketViews(db),
            Counters(db),
            Meta(db),
            ZoneInfo(settings.timezone),
            Clock(settings.clock_offset_file),
            f"rebuild-{uuid.uuid4()}",
        )
        events = await aggregator.rebuild()
        print(f"rebuilt views and counters from {events} archived events")
        return 0
    finally:
        await client.close()
