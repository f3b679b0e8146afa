"""Query parameters every HTTP API shares, with the shape their values must have.

A filter is matched by equality in the store, so an odd value could only ever
find nothing; refusing it (422) tells the caller at once that the request is
malformed, and keeps operator strings, markup and megabyte values out of logs
and queries altogether."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Department and district ids of the directory: "guanxian.water", "yanggu.urban-mgmt".
UNIT_ID = r"^[a-z0-9][a-z0-9._-]{0,99}$"
# Ticket numbers: "LC20261126000001" (other channels' references stay as short).
TICKET_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# A status word: "dispatched", "resolved_on_spot".
STATUS = r"^[a-z_]{1,40}$"
MAX_OFFSET = 1_000_000

UnitId = Annotated[str | None, Query(pattern=UNIT_ID, description="a directory id")]
TicketIdQuery = Annotated[str | None, Query(pattern=TICKET_ID, description="a ticket number")]
StatusQuery = Annotated[str | None, Query(pattern=STATUS)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
