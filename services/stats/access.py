"""Who reads what on the stats service, and what of the citizen they see.

Staff read everything. A department reads the tickets it was ever dispatched
(lead or co-handler) or passed on to one of its units as a county sub-centre, and
the statistics about itself. A call-centre agent reads tickets (and finds a
caller's earlier ones by phone number), not the statistics. A channel key reads
nothing here. The citizen's contact is shown in full to staff, agents and the
lead department while the ticket is in its hands; masked to everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends

from shared.access import Caller, forbidden
from shared.keys import KeyKind, KeyOwner
from shared.mongo import Document
from shared.privacy import Contact, caller_digest, contact_of, mask_personal

IN_HANDS = frozenset({"dispatched", "accepted", "extension_requested", "reopened"})
TICKET_READERS = frozenset({KeyKind.STAFF, KeyKind.DEPARTMENT, KeyKind.AGENT})
STATS_READERS = frozenset({KeyKind.STAFF, KeyKind.DEPARTMENT})
# Never shown: the digest of the caller's number, who may read the ticket, and
# what the aggregator counted of it (services.stats.aggregator.COUNTED).
INTERNAL_FIELDS = ("caller", "handlers", "_counted")


@dataclass(frozen=True)
class Reader:
    owner: KeyOwner

    @property
    def department(self) -> str | None:
        return self.owner.id if self.owner.kind == KeyKind.DEPARTMENT else None

    def ticket_filter(self, phone: str | None, contacts: bool, as_csv: bool) -> Document:
        """What narrows a ticket search to the tickets this reader may read (and
        to a caller's, by phone); refuses what the reader may not ask."""
        if phone is not None and self.department is not None:
            raise forbidden("a department key may not search tickets by phone number")
        if contacts and (not self.owner.is_staff or not as_csv):
            raise forbidden("only hotline staff export contacts, and only with format=csv")
        query: Document = {"handlers": self.owner.id} if self.department else {}
        if phone is not None:
            query["caller"] = caller_digest(phone)
        return query

    def may_read(self, view: Document) -> bool:
        return self.department is None or self.owner.id in (view.get("handlers") or [])

    def sees_contact(self, view: Document) -> bool:
        if self.department is None:
            return True
        return view.get("department") == self.owner.id and view.get("status") in IN_HANDS

    def shown(self, view: Document) -> Document:
        """The view as this reader may see it: internal fields gone, the
        citizen's data masked unless the reader is entitled to it."""
        for field in INTERNAL_FIELDS:
            view.pop(field, None)
        if not self.sees_contact(view):
            return dict(mask_personal(view))
        if self.department is not None and "history" in view:
            # The department calls back the citizen who reported it, not the
            # other callers whose repeats were linked to the ticket (并单).
            view["history"] = [
                mask_personal(step) if step["event_type"] == "linked" else step
                for step in view["history"]
            ]
        return view

    def measured_department(self, requested: str | None) -> str | None:
        """The department filter of a statistics call: a department's own, always."""
        if self.department is None:
            return requested
        if requested not in (None, self.department):
            raise forbidden(f"a department key reads only its own statistics ({self.department})")
        return self.department


def _reader(kinds: frozenset[KeyKind], what: str) -> Any:
    async def check(owner: Caller) -> Reader:
        if owner.kind not in kinds:
            raise forbidden(f"a {owner.kind.value} key may not read {what}")
        return Reader(owner)

    return check


TicketReader = Annotated[Reader, Depends(_reader(TICKET_READERS, "tickets here"))]
StatsReader = Annotated[Reader, Depends(_reader(STATS_READERS, "statistics"))]


def ticket_contact(history: list[Document]) -> Contact:
    """The contact the citizen gave, from the ticket's receipt."""
    for step in history:
        if step["event_type"] in ("received", "resolved_on_spot"):
            return contact_of(step["payload"].get("ticket"))
    return Contact()
