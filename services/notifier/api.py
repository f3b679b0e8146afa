"""Notifier HTTP API, version 1: every delivery and its attempts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from services.notifier.repository import DeliveryRepository


def build_router(repo: DeliveryRepository) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["deliveries"])

    @router.get("/deliveries")
    async def deliveries(
        ticket_id: str = Query(min_length=1, max_length=64),
    ) -> list[dict[str, Any]]:
        """Deliveries of one ticket's notices, with every attempt and its outcome."""
        docs = await repo.for_ticket(ticket_id)
        for doc in docs:
            doc["delivery_id"] = doc.pop("_id")
        return docs

    return router
