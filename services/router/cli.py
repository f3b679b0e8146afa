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
from services.router.knowledge import EngineFactory
from services.router.rules import SHIPPED_RULES, RulesError, RuleSet, load_rules
from services.router.verdict import Candidate, Decision
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR, RouterSettings
from shared.workcalendar import WorkCalendar, load_overrides

__all__ = ["check", "diff", "draft_from_json", "explain"]

SAMPLES = DATA_DIR / "sample_requests.jsonl"


def context() -> tuple[RouterSettings, Directory, WorkCalendar]:
    settings = RouterSettings()
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(settings.calendar_overrides_file))
    return settings, directory, calendar


def _rules_path(file: str | None, settings: RouterSettings) -> Path:
    return Path(file) if file else (settings.rules_file or SHIPPED_RULES)


def check(file: str | None) -> int:
    """Exit 0 when the rules file, the lists and the model are usable; else
    every problem as FILE:LINE: ... on stderr."""
    settings, directory, calendar = context()
    path = _rules_path(file, settings)
    ruleset, problems = check_file(path, directory)
    factory = EngineFactory.of(settings, directory, calendar)
    lists, list_problems = factory.load_lists()
    suggesters, model_problems = factory.load_suggesters(lists)
    seed, seed_problems = factory.load_seed(lists)
    problems += list_problems + model_problems + seed_problems
    if ruleset is None or problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"error: {path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    sizes = "" if lists is None else f", {len(lists.names)} department types in the lists"
    models = "" if seed is None else f", seed model of {seed.model.examples} requests"
    models += "".join(f", suggester {s.name}" for s in suggesters)
    print(f"ok: {len(ruleset.rules)} rules{sizes}{models}")
    return 0


def explain(file: str | None) -> int:
    settings, directory, calendar = context()
    path = _rules_path(file, settings)
    try:
        engine = EngineFactory.of(settings, directory, calendar)(load_rules(path))
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
    _, directory, calendar = context()
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
    factory = EngineFactory.of(RouterSettings(), directory, calendar)
    try:
        before, after = (factory(ruleset) for ruleset in rulesets)
    except RulesError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
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
        "decided_by": decision.decided_by,
        "probability": decision.probability,
        "why": decision.reason,
        "scores": [
            {"type": s.type, "score": s.score, "terms": list(s.terms), "excluded": list(s.excluded)}
            for s in decision.scores[:3]
        ],
        "candidates": [candidate_json(c) for c in decision.candidates],
    }


def candidate_json(candidate: Candidate) -> dict[str, Any]:
    return {
        "department": candidate.department,
        "score": round(candidate.score, 4),
        "source": candidate.source,
        "type": candidate.type,
    }
