"""Replaying tickets through two rules files: which tickets a change would send
elsewhere, before it goes live (`hotline rules diff`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.router.engine import RuleEngine
from services.router.verdict import Decision
from shared.directory import Directory
from shared.domain import TicketDraft

# Samples answered at intake (当场办结) carry this instead of a department.
ON_SPOT = "on_spot"


def draft_from_json(raw: dict[str, Any], directory: Directory) -> TicketDraft:
    """A ticket as intake would make it: a sample-request line is valid input."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object (one ticket)")
    district = directory.district(str(raw.get("district", "")))
    if district is None:
        raise ValueError(f"unknown district {raw.get('district')!r}")
    fields = {k: v for k, v in raw.items() if k in TicketDraft.model_fields}
    fields["district"] = district.id
    if "id" in raw and "external_id" not in raw:
        fields["external_id"] = str(raw["id"])
    return TicketDraft.model_validate(fields)


@dataclass(frozen=True)
class Ticket:
    id: str
    draft: TicketDraft
    expected: str | None  # the department a dispatcher chose, when the line says


@dataclass(frozen=True)
class Replayed:
    ticket: Ticket
    old: Decision
    new: Decision


def read_tickets(path: Path, directory: Directory) -> tuple[list[Ticket], list[str]]:
    """The tickets of a JSON-lines file, and a note for each line that is not one."""
    tickets, skipped = [], []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            draft = draft_from_json(raw, directory)
        except ValueError as exc:  # also pydantic's ValidationError
            skipped.append(f"{path}:{number}: skipped: {exc}")
            continue
        name = raw.get("id") or raw.get("external_id") or f"line {number}"
        expected = raw.get("expected_department")
        usable = isinstance(expected, str) and expected != ON_SPOT
        tickets.append(Ticket(str(name), draft, expected if usable else None))
    return tickets, skipped


def replay(
    old: RuleEngine, new: RuleEngine, tickets: Sequence[Ticket], at: datetime
) -> list[Replayed]:
    return [Replayed(t, old.decide(t.draft, at), new.decide(t.draft, at)) for t in tickets]


def report(replayed: Sequence[Replayed], at: datetime) -> list[str]:
    """One line per ticket that would go elsewhere, then the summary."""
    lines = [
        f"{r.ticket.id}: {_target(r.old)} -> {_target(r.new)}"
        for r in replayed
        if r.old.department != r.new.department
    ]
    summary = f"{len(replayed)} tickets, {len(lines)} changed"
    rule_only = sum(
        r.old.department == r.new.department and r.old.rule != r.new.rule for r in replayed
    )
    if rule_only:
        summary += f" ({rule_only} more keep their department by another rule)"
    known = [r for r in replayed if r.ticket.expected is not None]
    if known:
        old_hits = sum(r.old.department == r.ticket.expected for r in known)
        new_hits = sum(r.new.department == r.ticket.expected for r in known)
        total = len(known)
        summary += f"; expected department: old {old_hits}/{total}, new {new_hits}/{total}"
    return [*lines, f"{summary}; decided at {at.isoformat(timespec='seconds')}"]


def _target(decision: Decision) -> str:
    if decision.department is None:
        return "manual dispatch"
    return f"{decision.department}/{decision.rule}"
