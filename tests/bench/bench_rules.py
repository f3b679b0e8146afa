"""Dispatch decision speed.

router.decisions_per_s: the shipped rules with the responsibility lists loaded
(rules, then the lists scored from the same automaton pass), over the sample
requests and the held-out evaluation requests, most of which the lists decide,
as the router decides them (its workflow sets the deadlines at the dispatch);
router.decisions_with_deadlines_per_s the same with the deadlines worked out
too, as `rules explain` and `rules diff` do.

router.rules2000_*: rule matching alone, the engine (one Aho-Corasick pass,
candidate rules only) against a naive loop that tests every rule in file
order, each keyword with `in`, over the same 2,000 generated rules and the
sample texts. Both build the same decisions (deadlines included), so the ratio
is what the index gains end to end. Two modes: the first match (how tickets
are dispatched) and every match (`rules explain`, `rules diff`), where the
naive loop has to test all the rules.

Rates are per second of the process's CPU time: the machine that runs the
bench is shared, and wall time would measure the neighbours as much as the
router.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import yaml

from services.demo import sample_requests
from services.router.cli import draft_from_json
from services.router.engine import RuleEngine
from services.router.knowledge import shipped_engine
from services.router.rules import Rule, RuleSet, parse_rules
from services.router.text import normalize
from services.router.verdict import Decision
from shared.directory import Directory, load_directory
from shared.domain import TicketDraft
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar
from tests.bench.bench_dispatch import eval_lines

RULES = 2000
SECONDS = 2.0


def generated_rules(directory: Directory, count: int, seed: int = 7) -> RuleSet:
    """count rules of random two- or three-character keywords drawn from the
    sample texts, each for a random district's sub-centre, then a catch-all
    like the shipped rules' last one."""
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
    kinds = sorted({d.kind for d in directory.districts.values()})
    rules.append(
        {"id": "local", "when": {"district_kinds": kinds}, "then": {"department": "{district}"}}
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


class NaiveMatcher:
    """What one would write without an index. Keywords and district names are
    normalized once, up front, as any sensible loop would; the decision is then
    built by the engine, so both sides differ in the matching alone. It knows
    the conditions generated_rules uses and no others."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self.directory = engine.directory
        self.rules = [
            (
                rule,
                {d.id for d in map(engine.directory.district, rule.when.districts) if d},
                set(rule.when.district_kinds),
                [normalize(k) for k in rule.when.keywords.any],
            )
            for rule in engine.ruleset.rules
        ]

    def matches(self, draft: TicketDraft, first_only: bool) -> list[Rule]:
        text = normalize(draft.text)
        district = self.directory.district(draft.district)
        found = []
        for rule, districts, kinds, any_kw in self.rules:
            if districts and draft.district not in districts:
                continue
            if kinds and (district is None or district.kind not in kinds):
                continue
            if any_kw and not any(k in text for k in any_kw):
                continue
            if self.engine.resolve_department(rule.then.department, draft.district) is None:
                continue
            found.append(rule)
            if first_only:
                break
        return found

    def decide(self, draft: TicketDraft, at: datetime, explain: bool = False) -> Decision:
        found = self.matches(draft, first_only=not explain)
        first = found[0] if found else None
        return self.engine.decision_for(draft, at, first, tuple(r.id for r in found[1:]))


def _rate(call: Callable[[TicketDraft], object], drafts: list[TicketDraft]) -> float:
    n = 0
    started = time.process_time()
    while time.process_time() - started < SECONDS:
        for draft in drafts:
            call(draft)
        n += len(drafts)
    return n / (time.process_time() - started)


def run() -> Iterator[str]:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    yield from _with_lists(directory)
    ruleset = generated_rules(directory, RULES)
    engine = RuleEngine(ruleset, directory, WorkCalendar())
    naive = NaiveMatcher(engine)
    drafts = [draft_from_json(s, directory) for s in sample_requests()]
    now = datetime.now(UTC)
    for draft in drafts:  # both must agree before their speed means anything
        for explain in (False, True):
            expected = naive.decide(draft, now, explain)
            assert engine.decide(draft, now, explain=explain) == expected, draft.external_id
    for mode, explain in (("", False), ("explain_", True)):
        fast = _rate(lambda d: engine.decide(d, now, explain=explain), drafts)  # noqa: B023
        slow = _rate(lambda d: naive.decide(d, now, explain), drafts)  # noqa: B023
        yield f"BENCH router.rules2000_{mode}decisions_per_s {fast:.0f} 1/s"
        yield f"BENCH router.rules2000_{mode}naive_decisions_per_s {slow:.0f} 1/s"
        yield f"BENCH router.rules2000_{mode}speedup_vs_naive {fast / slow:.1f} x"


def _with_lists(directory: Directory) -> Iterator[str]:
    """As the router decides (the workflow sets the deadlines at the dispatch),
    and with the deadlines computed too (`rules explain`, `rules diff`)."""
    engine = shipped_engine(directory, WorkCalendar())
    assert engine.lists is not None
    texts = [*sample_requests(), *(json.loads(line) for line in eval_lines())]
    drafts = [draft_from_json(raw, directory) for raw in texts]
    now = datetime.now(UTC)
    rate = _rate(lambda d: engine.decide(d, now, deadlines=False), drafts)
    yield f"BENCH router.decisions_per_s {rate:.0f} 1/s"
    rate = _rate(lambda d: engine.decide(d, now), drafts)
    yield f"BENCH router.decisions_with_deadlines_per_s {rate:.0f} 1/s"
