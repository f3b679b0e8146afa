"""How well the router dispatches a set of requests whose right department is
known: accuracy (the manual queue counts as wrong), the share left to the
manual queue, precision and recall per department, and the most frequent
confusions (`hotline dispatch evaluate`, `make bench`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.router.backtest import Ticket
from services.router.engine import RuleEngine
from services.router.verdict import Decision
from shared.logmask import mask_phones

MANUAL = "manual dispatch"


@dataclass(frozen=True)
class Outcome:
    ticket: Ticket
    decision: Decision

    @property
    def got(self) -> str:
        return self.decision.department or MANUAL

    @property
    def right(self) -> bool:
        return self.decision.department == self.ticket.expected


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def accuracy(self) -> float:
        return sum(o.right for o in self.outcomes) / self.total if self.total else 0.0

    @property
    def manual_share(self) -> float:
        manual = sum(o.decision.department is None for o in self.outcomes)
        return manual / self.total if self.total else 0.0

    def by_decider(self) -> Counter[str]:
        return Counter(o.decision.decided_by for o in self.outcomes)

    def confusions(self, top: int = 10) -> list[tuple[tuple[str, str], int]]:
        """(sent to, right department) pairs, most frequent first."""
        pairs = Counter((o.got, str(o.ticket.expected)) for o in self.outcomes if not o.right)
        return pairs.most_common(top)

    def per_department(self) -> dict[str, tuple[float, float, int]]:
        """department -> (precision, recall, tickets expected there)."""
        sent = Counter(o.got for o in self.outcomes)
        expected = Counter(str(o.ticket.expected) for o in self.outcomes)
        hits = Counter(o.got for o in self.outcomes if o.right)
        return {
            dep: (hits[dep] / sent[dep] if sent[dep] else 0.0, hits[dep] / n, n)
            for dep, n in sorted(expected.items())
        }

    def lines(self) -> list[str]:
        deciders = ", ".join(f"{k} {v}" for k, v in sorted(self.by_decider().items()))
        out = [
            f"tickets: {self.total}",
            f"accuracy: {self.accuracy:.1%} (manual queue counts as wrong)",
            f"manual share: {self.manual_share:.1%}",
            f"decided by: {deciders}",
            "",
            f"{'department':<28}{'precision':>10}{'recall':>8}{'tickets':>9}",
        ]
        for dep, (precision, recall, n) in self.per_department().items():
            out.append(f"{dep:<28}{precision:>10.0%}{recall:>8.0%}{n:>9}")
        out += ["", "most frequent confusions (sent to <- right department):"]
        out += [f"{n:>4}  {got} <- {right}" for (got, right), n in self.confusions()]
        return out

    def miss_lines(self) -> list[str]:
        """Each request sent wrong, tab-separated: id, decided by, sent to,
        right unit, text. The texts are citizens' words and may carry their
        numbers: phone numbers are masked, as in the logs."""
        misses = [o for o in self.outcomes if not o.right]
        out = [f"misses: {len(misses)} (id, decided by, sent to, right department, text)"]
        for o in misses:
            text = " ".join(mask_phones(o.ticket.draft.text).split())
            fields = (o.ticket.id, o.decision.decided_by, o.got, str(o.ticket.expected), text)
            out.append("\t".join(fields))
        return out


def evaluate(engine: RuleEngine, tickets: Sequence[Ticket], at: datetime) -> Report:
    """Decides each ticket with a known department; others are left out."""
    known = [t for t in tickets if t.expected is not None]
    return Report([Outcome(t, engine.decide(t.draft, at)) for t in known])
