"""`POST /v1/explain`: where the rules would send a request, before it is one.

The call-centre workbench shows it while the agent is still on the phone, and
the manual queue shows it as the candidates for a ticket nobody could route.
Nothing is stored or published."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from services.router.api import REFUSALS, Who
from services.router.engine import Decision
from services.router.handlers import EngineHolder
from services.router.workflow.state import WorkflowError
from shared.domain import Category, Channel, Priority, TicketDraft
from shared.events import DecidedBy


class ExplainBody(BaseModel):
    district: str = Field(min_length=1, max_length=50, description="district id or name")
    town: str | None = Field(default=None, max_length=50)
    category: Category
    priority: Priority = Priority.NORMAL
    text: str = Field(min_length=1, max_length=4000)
    exclude: list[str] = Field(
        default_factory=list, max_length=20, description="departments that returned it"
    )


class Explanation(BaseModel):
    department: str | None = Field(description="None: the manual dispatch queue")
    co_departments: list[str]
    rule: str | None
    time_limit: str
    priority: Priority
    deadline: datetime | None
    response_deadline: datetime | None
    decided_by: DecidedBy = Field(description="rule, list, model or manual (the queue)")
    probability: float | None = Field(description="the model's, when the model decided")
    terms: list[str] = Field(
        default_factory=list, description="the list terms that pointed at the winner"
    )
    candidates: list[str] = Field(
        description="departments of every matching rule, excluded ones included, in rule "
        "order, then those the lists and the model suggest"
    )


def install_preview(app: FastAPI, engines: EngineHolder) -> None:
    router = APIRouter(prefix="/v1", tags=["dispatch"], responses=REFUSALS)

    @router.post("/explain")
    async def explain(body: ExplainBody, who: Who) -> Explanation:
        """The rules' decision for this request now, and the candidates."""
        engine = engines.engine
        district = engine.directory.district(body.district)
        if district is None:
            raise WorkflowError("UNKNOWN_DISTRICT", f"no district {body.district!r}", 422)
        draft = TicketDraft(
            channel=Channel.PHONE,
            **body.model_dump(exclude={"exclude", "district"}),
            district=district.id,
        )
        now = datetime.now(UTC)
        decision = engine.decide(draft, now, exclude=body.exclude)
        rules = engine.matching_rules(draft, at=now)
        found = [engine.resolve_department(r.then.department, district.id) for r in rules]
        found += [c.department for c in decision.candidates]
        return _explanation(decision, list(dict.fromkeys(d for d in found if d)))

    app.include_router(router)


def _explanation(decision: Decision, candidates: list[str]) -> Explanation:
    own = {"candidates", "terms"}
    shared = {name: getattr(decision, name) for name in Explanation.model_fields if name not in own}
    winner = next((c for c in decision.candidates if c.department == decision.department), None)
    terms = list(winner.terms) if winner is not None else []
    return Explanation(**(shared | {"candidates": candidates, "terms": terms}))
