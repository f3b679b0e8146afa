"""`hotline rules check|explain|diff`: judge a rules file before it goes live."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.router.backtest import draft_from_json, read_tickets, replay, report
from services.router.checks import check_file
from services.router.engine import Decision, RuleEngine
from services.router.rules import SHIPPED_RULES, RulesError, RuleSet, load_rules
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR, RouterSettings
from shared.workcalendar import WorkCalendar, load_overrides

__all__ = ["check", "diff", "draft_from_json", "explain"]

SAMPLES = DATA_DIR / "sample_requests.jsonl"


def _context() -> tuple[RouterSettings, Directory, WorkCalendar]:
    settings = RouterSettings()
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(settings.calendar_overrides_file))
    return settings, directory, calendar


def _rules_path(file: str | None, settings: RouterSettings) -> Path:
    return Path(file) if file else (settings.rules_file or SHIPPED_RULES)


def check(file: str | None) -> int:
    """Exit 0 for a usable file; else every problem as FILE:LINE: ... on stderr."""
    settings, directory, _ = _context()
    path = _rules_path(file, settings)
    ruleset, problems = check_file(path, directory)
    if ruleset is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"error: {path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(ruleset.rules)} rules")
    return 0


def explain(file: str | None) -> int:
    settings, directory, calendar = _context()
    path = _rules_path(file, settings)
    try:
        engine = RuleEngine(load_rules(path), directory, calendar)
        draft = draft_from_json(json.loads(sys.stdin.read()), directory)
    except (RulesError, OSError, ValueError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    decision = engine.decide(draft, datetime.now(UTC), explain=True)
    print(json.dumps(_decision_json(decision), ensure_ascii=False, indent=2))
    return 0


def diff(old: str, new: str, tickets: str | None) -> int:
    """Replay tickets through both files at one time; list those that would go
    elsewhere. Exit 1 only when a file cannot be used."""
    _, directory, calendar = _context()
    rulesets, problems = _checked(directory, Path(old), Path(new))
    path = Path(tickets) if tickets else SAMPLES
    try:
        found, skipped = read_tickets(path, directory)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read the tickets: {exc}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    for note in skipped:
        print(note, file=sys.stderr)
    at = datetime.now(calendar.tz)
    before, after = (RuleEngine(ruleset, directory, calendar) for ruleset in rulesets)
    print("\n".join(report(replay(before, after, found, at), at)))
    return 0


def _checked(directory: Directory, *paths: Path) -> tuple[list[RuleSet], list[str]]:
    rulesets: list[RuleSet] = []
    problems: list[str] = []
    for path in paths:
        ruleset, found = check_file(path, directory)
        problems += found
        rulesets += [ruleset] if ruleset is not None else []
    return rulesets, problems


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
