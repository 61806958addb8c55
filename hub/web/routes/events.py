"""GET /api/events (the hub's recent events, paged) and /api/log (the
hash-chained event log in the store, paged)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from becomingone.web import views
from becomingone.web.deps import READ, HubDep

router = APIRouter(tags=["events"], dependencies=READ)


@router.get("/events", summary="Recent events (newest first): collapse, emergence, "
                               "rejects, outputs, acks ...")
def list_events(hub: HubDep, offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                kind: str | None = None, node: str | None = None) -> dict:
    items = views.recent_events(hub)[::-1]
    if kind:
        items = [e for e in items if e.get("kind") == kind]
    if node:
        items = [e for e in items if e.get("node") == node]
    page = [views.event_json(e) for e in items[offset:offset + limit]]
    return {"total": len(items), "offset": offset, "limit": limit, "events": page}


@router.get("/log", summary="The stored hash-chained event log (newest first)")
def event_log(hub: HubDep, offset: Annotated[int, Query(ge=0, le=100000)] = 0,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    rows = hub.store.log_tail(offset + limit)[::-1][offset:offset + limit]
    seq, head = hub.store.log_head()
    return {"head": {"seq": seq, "hash": head}, "offset": offset, "limit": limit,
            "entries": views.jsonable(rows)}
