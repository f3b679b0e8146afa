"""`hotline demo`: feed the reference city's sample requests through intake and
show where each ticket went and what stats counted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx

from services.demo_inbox import Inbox
from shared.events import utcnow
from shared.keys import KeyKind, KeyStore, keys_database
from shared.mongo import create_client
from shared.settings import DATA_DIR, CommonSettings

DASHBOARD = "http://127.0.0.1:8004/"
ON_SPOT_ANSWER = "已当场答复：12345热线7×24小时有人接听，夜间也可以拨打。"
DEMO_STAFF = "demo.staff"
FINAL = {"dispatched", "resolved_on_spot", "unroutable"}


def sample_requests() -> list[dict[str, Any]]:
    lines = (DATA_DIR / "sample_requests.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def submission_of(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample line as the web channel posts it; 'on_spot' samples are answered
    by the agent at intake."""
    body = dict(sample)
    if body.get("expected_department") == "on_spot":
        body["on_spot_answer"] = ON_SPOT_ANSWER
    return body


def issue_demo_key(kind: KeyKind, owner: str) -> str:
    """A key of the local key store for the demo (as `hotline keys issue` makes one)."""

    async def issue() -> str:
        settings = CommonSettings()
        client = create_client(settings)
        try:
            store = KeyStore(keys_database(client, settings))
            await store.ensure_indexes()
            return (await store.issue(kind, owner, utcnow()))[1]
        finally:
            await client.close()

    return asyncio.run(issue())


def run(intake_url: str, stats_url: str, timeout_s: float) -> int:
    staff_key = issue_demo_key(KeyKind.STAFF, DEMO_STAFF)
    print(f"a hotline staff key for the demo ({DEMO_STAFF}; dashboard and APIs):\n  {staff_key}\n")
    try:
        inbox = Inbox()
    except OSError as exc:  # port taken: the demo works without showing notices
        print(f"(no department inbox on 127.0.0.1:9900: {exc})")
        return _run(intake_url, stats_url, timeout_s, None, staff_key)
    with inbox:
        return _run(intake_url, stats_url, timeout_s, inbox, staff_key)


def _run(
    intake_url: str, stats_url: str, timeout_s: float, inbox: Inbox | None, staff_key: str
) -> int:
    samples = sample_requests()
    run_id = uuid.uuid4().hex[:8]  # each demo run files new tickets
    with httpx.Client(timeout=10.0, headers={"X-API-Key": staff_key}) as client:
        received_before = _counts(client, stats_url)["received"]
        posted: list[tuple[dict[str, Any], str]] = []
        for sample in samples:
            response = client.post(
                f"{intake_url}/v1/tickets",
                json=submission_of(sample),
                headers={"Idempotency-Key": f"demo-{run_id}-{sample['id']}"},
            )
            if response.status_code != 202:
                print(f"{sample['id']}: intake answered {response.status_code} {response.text}")
                return 1
            posted.append((sample, response.json()["ticket_id"]))
        print(f"posted {len(posted)} requests to intake\n")
        views = _wait_for_views(client, stats_url, [t for _, t in posted], timeout_s)
        if inbox is not None:
            _wait_for_notices(inbox, views, timeout_s)
        _print_table(posted, views, inbox)
        deadline = time.monotonic() + timeout_s
        while _counts(client, stats_url)["received"] < received_before + len(posted):
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
        summary = client.get(f"{stats_url}/v1/stats/summary").json()
    _print_summary(summary)
    return 0 if len(views) == len(posted) else 1


def _counts(client: httpx.Client, stats_url: str) -> dict[str, int]:
    counts: dict[str, int] = client.get(f"{stats_url}/v1/stats/summary").json()["counts"]
    return counts


def _print_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    print(f"\nstats for {summary['from']} (all of today, city time):")
    print("  " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    for name, r in summary["rates"].items():
        if r["denominator"]:
            print(f"  {name} rate {r['value']:.1%} ({r['numerator']}/{r['denominator']})")
    print(f"  dashboard: {DASHBOARD}")


def _wait_for_views(
    client: httpx.Client, stats_url: str, ticket_ids: list[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(views) < len(ticket_ids) and time.monotonic() < deadline:
        for ticket_id in ticket_ids:
            if ticket_id in views:
                continue
            response = client.get(f"{stats_url}/v1/tickets/{ticket_id}")
            if response.status_code == 200 and response.json()["status"] in FINAL:
                views[ticket_id] = response.json()
        time.sleep(0.2)
    return views


def _wait_for_notices(inbox: Inbox, views: dict[str, Any], timeout_s: float) -> None:
    dispatched = [t for t, v in views.items() if v.get("department")]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(inbox.departments_of(t) for t in dispatched):
        time.sleep(0.2)


def _print_table(
    posted: list[tuple[dict[str, Any], str]], views: dict[str, Any], inbox: Inbox | None
) -> None:
    print(f"{'sample':7} {'ticket':17} {'status':17} {'department':23} {'expected':23} notified")
    for sample, ticket_id in posted:
        view = views.get(ticket_id, {})
        notified = ",".join(inbox.departments_of(ticket_id)) if inbox else "?"
        print(
            f"{sample['id']:7} {ticket_id:17} {view.get('status', 'MISSING'):17} "
            f"{view.get('department') or '-':23} {sample.get('expected_department', ''):23} "
            f"{notified or '-'}"
        )
