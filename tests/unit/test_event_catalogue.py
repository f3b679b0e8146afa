"""The catalogue of event types is the one source of every service's tables."""

from __future__ import annotations

from services.intake.progress import LABELS
from shared.events import EVENT_TYPES
from shared.events.catalogue import CATALOGUE, CLOSED_STATUSES, STATUS_AFTER, stage_of


def test_catalogue_names_every_event_of_the_union_once() -> None:
    names = [kind.name for kind in CATALOGUE]
    assert len(names) == len(set(names))
    assert tuple(names) == EVENT_TYPES  # test_events: the same set as the message union


def test_causes_come_before_their_effects() -> None:
    assert stage_of("returned") < stage_of("dispatched")
    assert stage_of("returned") < stage_of("unroutable")
    assert stage_of("feedback") < stage_of("closed") == stage_of("reopened")
    assert stage_of("dispatched") < stage_of("accepted") < stage_of("resolved")
    assert stage_of("received") < min(stage_of(k.name) for k in CATALOGUE if k.name != "received")
    assert stage_of("no-such-event") > max(k.stage for k in CATALOGUE)


def test_every_status_a_citizen_can_reach_has_a_label() -> None:
    assert set(STATUS_AFTER.values()) - {"extension_requested"} <= set(LABELS)
    assert {"resolved_on_spot", "resolved", "closed"} == CLOSED_STATUSES
