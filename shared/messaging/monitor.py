"""Keeps the queue-depth gauge current, so dead letters are visible in /metrics."""

from __future__ import annotations

import asyncio
import logging

from shared.messaging.broker import Broker
from shared.metrics import QUEUE_DEPTH

logger = logging.getLogger(__name__)


async def queue_depths(broker: Broker, queue: str) -> dict[str, int]:
    """Ready messages in a queue and in its dead-letter queue."""
    names = (queue, broker.topology.dlq_name(queue))
    depths: dict[str, int] = {}
    # Asked on the raw channel: the robust channel answers a passive declare of a
    # queue it knows from its cache, with the count as it was at start.
    channel = await broker.channel.get_underlay_channel()
    for name in names:
        declared = await channel.queue_declare(name, passive=True)
        depths[name] = int(declared.message_count or 0)
    return depths


async def monitor_queues(
    broker: Broker, service: str, queues: list[str], interval_s: float = 10.0
) -> None:
    while True:
        for queue in queues:
            try:
                for name, depth in (await queue_depths(broker, queue)).items():
                    QUEUE_DEPTH.labels(service, name).set(depth)
            except Exception as exc:  # the broker may be restarting; try next round
                logger.debug("queue depth of %s unavailable: %r", queue, exc)
        await asyncio.sleep(interval_s)
