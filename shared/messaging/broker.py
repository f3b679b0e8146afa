"""One robust AMQP connection per process: reconnects after a broker restart and
re-declares the topology and consumers on the new channel."""

from __future__ import annotations

import logging

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection

from shared.messaging.topology import Topology, declare_topology

logger = logging.getLogger(__name__)


class Broker:
    def __init__(self, url: str, topology: Topology, prefetch: int) -> None:
        self.url = url
        self.topology = topology
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url, reconnect_interval=1.0)
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        self._exchange = await declare_topology(channel, self.topology)
        self._channel = channel
        logger.info("connected to broker, topology %s declared", self.topology.namespace)

    @property
    def channel(self) -> AbstractRobustChannel:
        if self._channel is None:
            raise RuntimeError("Broker.connect() was not called")
        return self._channel

    @property
    def exchange(self) -> AbstractExchange:
        if self._exchange is None:
            raise RuntimeError("Broker.connect() was not called")
        return self._exchange

    def is_connected(self) -> bool:
        conn = self._connection
        if conn is None or conn.is_closed:
            return False
        return bool(conn.connected.is_set())

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
