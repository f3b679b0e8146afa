"""The whole pipeline on this machine: intake → router → notifier and stats, as
four processes on a RabbitMQ node and a store of the bench's own (started
empty, stopped after), with persistent messages and publisher confirms.

1. Saturation: LOAD_CONNECTIONS keep-alive connections post sample-like tickets
   back to back for SATURATION_S. End-to-end rate = tickets accepted ÷ (time
   from the first post until the last of them was dispatched, seen on an
   observer queue bound to ticket.dispatched, and counted in the stats
   summary).
2. Latency: posts at half that rate for LATENCY_S (open loop); each ticket's
   latency runs from its 202 to the arrival of its ticket.dispatched on the
   observer queue. p50 and p99.
3. Before both, the broker alone (tests.bench.broker_echo) on the same node,
   for the ratio, and the store alone (tests.bench.store_echo).

The services run with their production poll intervals (the test cluster's
shorter ones would have the notifier scan its timers and deliveries ten times
as often as in production, a cost in the store that grows with the data and
not with the load); their logs stay in test-output/bench-pipeline/. Each
service process counts its store commands (tests/bench/store_ops.py, a
bench-only listener): the saturation phase's, per ticket, overall and per
service, are printed with its lines, and so are the CPU milliseconds each
process (services, store, broker, the bench's own) spent per ticket
(tests/bench/cpu.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from shared.settings import NotifierSettings
from tests.bench.bench_notifier import directory_at
from tests.bench.broker_echo import echo_rate
from tests.bench.cpu import CpuMeter
from tests.bench.loadgen import Load, closed_loop, open_loop
from tests.bench.notices import NoticeCounter
from tests.bench.store_echo import insert_rate
from tests.bench.store_ops import listener_env, per_ticket_lines, snapshot
from tests.e2e.cluster import SERVICES, Cluster
from tests.observer import Observer
from tests.servers import OwnServers, own_servers
from tests.support import ROOT, unique_namespace

SATURATION_S = float(os.environ.get("HOTLINE_BENCH_SATURATION_S", "30"))
LATENCY_S = float(os.environ.get("HOTLINE_BENCH_LATENCY_S", "30"))
LOAD_CONNECTIONS = int(os.environ.get("HOTLINE_BENCH_CONNECTIONS", "64"))
ECHO_S = 10.0
DRAIN_TIMEOUT_S = 600.0


async def wait_until(check: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> float:
    """The monotonic time at which check() first held (to within poll_s)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not done within {timeout_s}s")
        await asyncio.sleep(poll_s)
    return time.monotonic()


class Pipeline:
    def __init__(
        self,
        cluster: Cluster,
        observer: Observer,
        notices: NoticeCounter,
        ops_dir: Path,
        servers: dict[str, int] | None = None,
    ) -> None:
        self.cluster = cluster
        self.servers = servers or {}
        self.ops_dir = ops_dir
        self.observer = observer
        self.notices = notices
        self.http = httpx.AsyncClient(timeout=10.0)

    async def stats_received(self) -> int:
        response = await self.http.get(
            f"{self.cluster.url('stats')}/v1/stats/summary",
            headers=await self.cluster.staff_headers(),
        )
        return int(response.json()["counts"]["received"])

    def dispatched(self, tickets: dict[str, float]) -> bool:
        seen = self.observer.first["dispatched"]
        unroutable = self.observer.first["unroutable"]
        return all(t in seen or t in unroutable for t in tickets)

    async def drained(self, load: Load, counted_before: int) -> float:
        """When every ticket of the load was dispatched and counted by stats."""
        last_dispatch = await wait_until(lambda: self.dispatched(load.accepted), DRAIN_TIMEOUT_S)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while await self.stats_received() < counted_before + len(load.accepted):
            if time.monotonic() > deadline:
                raise RuntimeError("stats did not count every ticket")
            await asyncio.sleep(0.1)
        return max(last_dispatch, time.monotonic())

    async def notified(self, load: Load) -> float:
        """When every dispatched ticket of the load had its dispatch notice."""
        dispatched = self.observer.first["dispatched"]

        def all_notified() -> bool:
            return all(t in self.notices.dispatch_notices for t in load.accepted if t in dispatched)

        await wait_until(all_notified, DRAIN_TIMEOUT_S, poll_s=0.2)
        times = [self.notices.dispatch_notices[t] for t in load.accepted if t in dispatched]
        return max(times, default=time.monotonic())

    def cpu_meter(self) -> CpuMeter:
        """A meter started now over the services' and servers' processes."""
        pids = {name: proc.pid for name, proc in self.cluster.procs.items()}
        meter = CpuMeter({**pids, **self.servers})
        meter.start()
        return meter

    def latencies_ms(self, load: Load, since: dict[str, float]) -> list[float]:
        """From a time per ticket (its 202, or its POST leaving) to its dispatch."""
        seen = self.observer.first["dispatched"]
        return sorted((seen[t] - at) * 1000 for t, at in since.items() if t in seen)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0


async def saturation(pipeline: Pipeline, port: int) -> tuple[float, list[str]]:
    """The end-to-end rate at saturation, and its lines."""
    counted = await pipeline.stats_received()
    ops_before = await snapshot(pipeline.ops_dir)
    cpu = pipeline.cpu_meter()
    load = await closed_loop(port, LOAD_CONNECTIONS, SATURATION_S, "sat")
    done = await pipeline.drained(load, counted)
    n = len(load.accepted)
    # CPU from the first post until the last ticket was counted: what each
    # process spent on the phase's tickets (and its polls meanwhile).
    cpu_lines = cpu.lines(n, done - load.started)
    e2e = n / (done - load.started)
    # The notifier is not on the path the target names, but a rate it cannot
    # keep up with is not sustained: its backlog would grow without end. The
    # next phase starts once it has caught up, so that phases do not overlap.
    notified = n / (await pipeline.notified(load) - load.started)
    # Every store command of the phase, polls and gauges included, per ticket.
    ops, detail = per_ticket_lines(ops_before, await snapshot(pipeline.ops_dir), n)
    (pipeline.ops_dir / "per_ticket.txt").write_text("\n".join(detail) + "\n", encoding="utf-8")
    return e2e, [
        f"BENCH pipeline.tickets {n} tickets",
        f"BENCH pipeline.intake_accepted_per_s {n / (load.ended - load.started):.1f} tickets/s",
        f"BENCH pipeline.e2e_tickets_per_s {e2e:.1f} tickets/s",
        f"BENCH pipeline.notified_per_s {notified:.1f} tickets/s",
        f"BENCH pipeline.refused {sum(load.refused.values())} requests",
        f"BENCH pipeline.connection_errors {load.errors} requests",
        *ops,
        *cpu_lines,
    ]


async def latency(pipeline: Pipeline, port: int, rate: float) -> list[str]:
    """202 → ticket.dispatched at a steady rate, and its lines."""
    counted = await pipeline.stats_received()
    load = await open_loop(port, rate, LATENCY_S, "half")
    await pipeline.drained(load, counted)
    await pipeline.notified(load)
    latencies = pipeline.latencies_ms(load, load.accepted)
    # The router can dispatch before the 202 reaches the client (intake answers
    # after the confirm and one more write): those latencies are negative. From
    # the POST leaving, the figure is what a citizen's request takes.
    whole = pipeline.latencies_ms(load, load.posted)
    return [
        f"BENCH pipeline.half_rate {rate:.1f} tickets/s",
        f"BENCH pipeline.latency_p50 {percentile(latencies, 50):.1f} ms",
        f"BENCH pipeline.latency_p99 {percentile(latencies, 99):.1f} ms",
        f"BENCH pipeline.post_to_dispatched_p50 {percentile(whole, 50):.1f} ms",
        f"BENCH pipeline.post_to_dispatched_p99 {percentile(whole, 99):.1f} ms",
    ]


async def measure(pipeline: Pipeline, servers: OwnServers) -> list[str]:
    # The servers alone first, while the services idle on an empty store.
    echo = await echo_rate(servers.broker.url, ECHO_S)
    inserts = await insert_rate(servers.store.url)
    port = pipeline.cluster.ports["intake"]
    warm = await closed_loop(port, 8, 3.0, "warm")
    await pipeline.drained(warm, 0)
    await pipeline.notified(warm)
    e2e, lines = await saturation(pipeline, port)
    lines += await latency(pipeline, port, e2e / 2)
    return [
        *lines,
        f"BENCH broker.echo_msgs_per_s {echo:.0f} msgs/s",
        f"BENCH pipeline.e2e_to_echo_ratio {e2e / echo:.3f} ratio",
        f"BENCH store.inserts_per_s {inserts:.0f} docs/s",
    ]


def production_polls() -> dict[str, str]:
    """The notifier's scan and retry intervals as shipped, over the test
    cluster's short ones (tests.e2e.cluster)."""
    fields = NotifierSettings.model_fields
    names = ("delivery_poll_s", "timer_poll_s", "delivery_backoff_base_s", "delivery_backoff_cap_s")
    return {f"HOTLINE_{name.upper()}": str(fields[name].default) for name in names}


async def bench(servers: OwnServers, folder: Path) -> list[str]:
    notices = NoticeCounter()
    await notices.start()
    directory_at(notices.port, folder)
    namespace = unique_namespace()
    # The load generator is one client: intake's per-client rate limit (a
    # protection against one abusive caller) would refuse nearly all of it.
    env = {
        **servers.env(),
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "100000000",
        "HOTLINE_RATE_LIMIT_BURST": "1000000",
        **production_polls(),
        **listener_env(folder / "store-ops"),
    }
    cluster = Cluster(namespace, folder / "departments.json", folder, extra_env=env)
    observer = Observer(
        servers.broker.url, f"{namespace}.tickets", ("ticket.dispatched", "ticket.unroutable")
    )
    pipeline = Pipeline(cluster, observer, notices, folder / "store-ops", servers.pids())
    try:
        for service in SERVICES:
            await cluster.start(service)
        await observer.start()
        return await measure(pipeline, servers)
    finally:
        with contextlib.suppress(Exception):
            await observer.stop()
        await pipeline.http.aclose()
        await cluster.stop_all()
        await notices.stop()


def run() -> list[str]:
    folder = ROOT / "test-output" / "bench-pipeline"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with own_servers() as servers:
        return asyncio.run(bench(servers, folder))
