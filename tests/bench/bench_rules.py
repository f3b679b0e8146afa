"""Rule matching speed: the engine (one Aho-Corasick pass, candidate rules only)
against a naive loop that checks every rule's keywords one by one, over the
same generated rule set and the sample texts."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import yaml

from services.demo import sample_requests
from services.router.cli import draft_from_json
from services.router.engine import RuleEngine
from services.router.rules import RuleSet, parse_rules
from services.router.text import normalize
from shared.directory import Directory, load_directory
from shared.domain import TicketDraft
from shared.events import utcnow
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar

RULES = 2000
SECONDS = 2.0


def generated_rules(directory: Directory, count: int, seed: int = 7) -> RuleSet:
    """count rules of random two-character keywords drawn from the sample texts,
    each for a random district's sub-centre, then the shipped rules' catch-all."""
    rng = random.Random(seed)
    texts = "".join(normalize(s["text"]) for s in sample_requests())
    districts = [d for d in directory.districts.values() if d.kind != "development zone"]
    rules = []
    for i in range(count):
        words = []
        for _ in range(3):
            start = rng.randrange(len(texts) - 3)
            words.append(texts[start : start + rng.choice((2, 3))])
        district = rng.choice(districts)
        rules.append(
            {
                "id": f"r{i}",
                "when": {"districts": [district.id], "keywords": {"any": words}},
                "then": {"department": district.id},
            }
        )
    doc = {
        "time_limits": {
            "general": {"working_days": 5},
            "urgent": {"hours": 2},
            "consultation": {"working_days": 1},
        },
        "response_limits": {"default": {"working_hours": 2}, "urgent": {"hours": 0.5}},
        "rules": rules,
    }
    return parse_rules(yaml.safe_dump(doc, allow_unicode=True))


def naive_first_match(ruleset: RuleSet, draft: TicketDraft) -> str | None:
    text = normalize(draft.text)
    for rule in ruleset.rules:
        if rule.when.districts and draft.district not in rule.when.districts:
            continue
        if any(normalize(k) in text for k in rule.when.keywords.any):
            return rule.id
    return None


def _rate(func: object, drafts: list[TicketDraft]) -> float:
    call = func  # a callable taking one draft
    n = 0
    started = time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        for draft in drafts:
            call(draft)  # type: ignore[operator]
        n += len(drafts)
    return n / (time.perf_counter() - started)


def run() -> Iterator[str]:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    ruleset = generated_rules(directory, RULES)
    engine = RuleEngine(ruleset, directory, WorkCalendar())
    drafts = [draft_from_json(s, directory) for s in sample_requests()]
    now = utcnow()
    for draft in drafts:  # both must agree before their speed means anything
        assert (engine.decide(draft, now).rule) == naive_first_match(ruleset, draft)
    fast = _rate(lambda d: engine.decide(d, now), drafts)
    slow = _rate(lambda d: naive_first_match(ruleset, d), drafts)
    yield f"BENCH router.decisions_per_s {fast:.0f} 1/s"
    yield f"BENCH router.naive_decisions_per_s {slow:.0f} 1/s"
    yield f"BENCH router.speedup_vs_naive {fast / slow:.1f} x"
