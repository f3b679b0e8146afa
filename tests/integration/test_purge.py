"""A test's namespace leaves nothing durable behind on the shared broker.

The e2e cluster gives its services retry delays of their own; a purge that
deleted only the retry queues of the test's settings left eight durable queues
per run, and after a few hundred runs the broker took minutes to recover them
at boot, longer than `make test` waits for it.
"""

from __future__ import annotations

import aio_pika
import pytest
from aiormq.exceptions import ChannelNotFoundEntity

from shared.messaging.topology import QUEUES, Topology, declare_topology
from tests.support import make_settings, purge_namespace, unique_namespace

pytestmark = pytest.mark.usefixtures("servers")


async def test_purge_removes_the_queues_of_services_run_with_other_retry_delays() -> None:
    namespace = unique_namespace()
    # What a cluster's services declare: the e2e cluster's delays, not the test's.
    services = make_settings(namespace).model_copy(update={"retry_delays": [0.5, 1.0]})
    topology = Topology.from_settings(services)
    connection = await aio_pika.connect(services.amqp_url)
    async with connection:
        await declare_topology(await connection.channel(), topology)
        await purge_namespace(make_settings(namespace))
        names = []
        for spec in QUEUES:
            main = topology.queue_name(spec)
            names += [main, topology.dlq_name(main)]
            names += [topology.retry_queue_name(main, d) for d in topology.retry_delays]
        left = []
        for name in names:
            channel = await connection.channel()
            try:
                await channel.declare_queue(name, passive=True)
                left.append(name)
            except ChannelNotFoundEntity:
                pass
        assert left == []
