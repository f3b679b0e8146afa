"""Publishing ticket events: persistent messages, broker confirms, bounded wait."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractExchange

from shared.errors import UnavailableError
from shared.events import Envelope, dump_event
from shared.metrics import PUBLISHED

logger = logging.getLogger(__name__)


class Publisher:
    """Returns from publish() only once the broker confirmed the message.

    ``mandatory`` makes the broker return a message no queue takes; that is
    treated as a failure, so a 202 never hides an event that went nowhere.
    """

    def __init__(self, exchange: AbstractExchange, service: str, timeout_s: float = 5.0) -> None:
        self._exchange = exchange
        self._service = service
        self._timeout = timeout_s

    async def publish(self, event: Envelope) -> None:
        message = aio_pika.Message(
            body=dump_event(event),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event.event_id),
            type=event.event_type,
            timestamp=event.occurred_at,
            headers={"schema_version": event.schema_version},
        )
        try:
            await asyncio.wait_for(
                self._exchange.publish(message, routing_key=event.routing_key, mandatory=True),
                timeout=self._timeout,
            )
        except Exception as exc:
            # Nack, return (no queue bound), lost connection or no answer in time:
            # in every case the caller must not tell anyone the event is on its way.
            PUBLISHED.labels(self._service, event.event_type, "failed").inc()
            logger.warning("publish of %s failed: %r", event.routing_key, exc)
            raise UnavailableError(f"broker did not confirm {event.routing_key}: {exc!r}") from exc
        PUBLISHED.labels(self._service, event.event_type, "confirmed").inc()
