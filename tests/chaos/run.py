"""One chaos run, at a given size, on servers of its own (tests.servers).

The four services run as processes against a RabbitMQ node and a store that
only this run uses; a webhook receiver plays every department; a durable
observer queue bound to ticket.# sees every published event. A feeder posts
tickets at a steady rate while the faults (tests.chaos.faults) happen one
after another; then the checks (tests.chaos.checks).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from shared.messaging.topology import Topology
from shared.settings import CommonSettings
from tests.chaos.checks import Checker, Report, broker_report, queues_drained
from tests.chaos.faults import CLOCK_JUMP_S, Faults, expected_dead_letters
from tests.chaos.feeder import Feed, run_feed
from tests.e2e.cluster import SERVICES, Cluster, Receiver, directory_pointing_at
from tests.observer import Observer
from tests.servers import OwnServers, own_servers
from tests.support import unique_namespace

RETRY_DELAYS = [0.5, 1.0]


@dataclass(frozen=True)
class Size:
    rate: float  # tickets posted per second
    duration_s: float  # of the load; the faults are spread over it
    settle_s: float = 300.0  # at most, for everything to be handled after the load


SMALL = Size(rate=4.0, duration_s=55.0)  # inside make test
FULL = Size(rate=6.0, duration_s=120.0, settle_s=600.0)  # make chaos


@dataclass
class Outcome:
    report: Report
    feed: Feed
    faults: list[str]
    duplicates: int

    def bench_lines(self) -> list[str]:
        r = self.report
        return [
            f"BENCH chaos.tickets {r.tickets} tickets",
            f"BENCH chaos.lost {len(r.lost)} tickets",
            f"BENCH chaos.duplicated {len(r.duplicated)} tickets",
            f"BENCH chaos.timers_fired {r.timers_fired} timers",
            f"BENCH chaos.timers_unfired {len(r.timers_unfired)} timers",
            f"BENCH chaos.dead_letters {sum(map(len, r.dead_letters.values()))} messages",
            f"BENCH chaos.duplicates_injected {self.duplicates} messages",
            f"BENCH chaos.client_retries {self.feed.retries} requests",
            f"BENCH chaos.never_accepted {len(self.feed.given_up)} requests",
        ]

    def violations(self) -> list[str]:
        found = self.report.violations()
        if self.feed.unexpected:
            found.append(f"intake answered neither 202 nor 503: {self.feed.unexpected[:5]}")
        return found


async def chaos(size: Size, servers: OwnServers, folder: Path) -> Outcome:
    namespace = unique_namespace()
    settings = CommonSettings(amqp_namespace=namespace, retry_delays=RETRY_DELAYS)
    topology = Topology.from_settings(settings)
    receiver = Receiver()
    await receiver.start()
    cluster = _cluster(namespace, servers, receiver, folder)
    observer = Observer(servers.broker.url, topology.exchange, durable=True)
    try:
        for service in SERVICES:
            await cluster.start(service)
        await observer.start()
        feed = Feed()
        faults = Faults(servers, cluster, observer, topology.exchange)
        await asyncio.gather(
            run_feed(cluster.url("intake"), size.rate, size.duration_s, feed),
            faults.run(size.duration_s),
        )
        report = await _check(cluster, receiver, observer, feed, servers, topology, size)
        return Outcome(report, feed, faults.done, faults.duplicates)
    finally:
        with contextlib.suppress(Exception):
            await observer.stop()
        await cluster.stop_all()
        await receiver.stop()


def _cluster(namespace: str, servers: OwnServers, receiver: Receiver, folder: Path) -> Cluster:
    env = {
        **servers.env(),
        "HOTLINE_RETRY_DELAYS": str(RETRY_DELAYS),
        # A notifier killed mid-firing leaves its claim; it expires after this.
        "HOTLINE_CLAIM_LEASE_S": "5",
        # The feed is one client: intake's per-client rate limit is not under test.
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "100000000",
        "HOTLINE_RATE_LIMIT_BURST": "1000000",
    }
    cluster = Cluster(
        namespace,
        directory_pointing_at(receiver, folder / "departments.json"),
        folder,
        clock_offset_file=folder / "clock-offset",
        extra_env=env,
    )
    cluster.set_clock_offset(0)
    return cluster


async def _check(
    cluster: Cluster,
    receiver: Receiver,
    observer: Observer,
    feed: Feed,
    servers: OwnServers,
    topology: Topology,
    size: Size,
) -> Report:
    tickets = sorted(set(feed.accepted.values()))
    checker = Checker(cluster, receiver, observer, CLOCK_JUMP_S)
    try:
        await checker.quiet(tickets, size.settle_s)
        await queues_drained(servers.broker.url, topology, 60.0)
        await asyncio.sleep(2.0)  # a late duplicate would arrive now
        report = await checker.tickets_report(tickets)
    finally:
        await checker.close()
    await broker_report(servers.broker.url, topology, expected_dead_letters(topology), report)
    return report


def run(size: Size, folder: Path) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    with own_servers() as servers:
        return asyncio.run(chaos(size, servers, folder))
