"""`hotline rules check|explain`: judge a rules file before it goes live."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.router.checks import check_ruleset
from services.router.engine import Decision, RuleEngine
from services.router.rules import RulesError, load_rules
from shared.directory import Directory, load_directory
from shared.domain import TicketDraft
from shared.events import utcnow
from shared.settings import RouterSettings
from shared.workcalendar import WorkCalendar, load_overrides


def _context() -> tuple[RouterSettings, Directory, WorkCalendar]:
    settings = RouterSettings()
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(settings.calendar_overrides_file))
    return settings, directory, calendar


def check(file: str | None) -> int:
    settings, directory, _ = _context()
    path = Path(file) if file else settings.rules_file
    try:
        ruleset = load_rules(path)
    except (RulesError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    problems = check_ruleset(ruleset, directory)
    for problem in problems:
        print(f"error: {path or 'shipped rules'}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {len(ruleset.rules)} rules")
    return 0


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


def explain(file: str | None) -> int:
    settings, directory, calendar = _context()
    path = Path(file) if file else settings.rules_file
    try:
        engine = RuleEngine(load_rules(path), directory, calendar)
        draft = draft_from_json(json.loads(sys.stdin.read()), directory)
    except (RulesError, OSError, ValueError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    decision = engine.decide(draft, utcnow(), explain=True)
    print(json.dumps(_decision_json(decision), ensure_ascii=False, indent=2))
    return 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "department": decision.department,
        "co_departments": list(decision.co_departments),
        "rule": decision.rule,
        "time_limit": decision.time_limit,
        "response_limit": decision.response_limit,
        "priority": str(decision.priority),
        "deadline": _iso(decision.deadline),
        "response_deadline": _iso(decision.response_deadline),
        "also_matched": list(decision.also_matched),
    }
