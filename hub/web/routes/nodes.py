"""GET /api/nodes, /api/nodes/{node}, /api/nodes/{node}/history, .../spectrum,
.../events."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from becomingone.web import views
from becomingone.web.deps import READ, HubDep

router = APIRouter(tags=["nodes"], dependencies=READ)

Name = Annotated[str, "node id"]


@router.get("/nodes", summary="Every node: board, transport, online/stale, c, tau")
def list_nodes(hub: HubDep, online: bool | None = None,
               limit: Annotated[int, Query(ge=1, le=100000)] = 100000,
               offset: Annotated[int, Query(ge=0)] = 0) -> dict:
    rows = views.nodes(hub, hub.clock())
    if online is not None:
        rows = [r for r in rows if (r["online"] and not r["stale"]) == online]
    return {"total": len(rows), "offset": offset, "limit": limit,
            "nodes": rows[offset:offset + limit]}


def _known(hub, node: str) -> None:
    if not hub.registry.known(node):
        raise HTTPException(404, f"unknown node {node!r} (GET /api/nodes lists them)")


@router.get("/nodes/{node}", summary="One node: state, hello, counters")
def get_node(hub: HubDep, node: Name) -> dict:
    out = views.node(hub, node, hub.clock())
    if out is None:
        _known(hub, node)
    return out


def _channel(hub, node: str, ch: int) -> None:
    _known(hub, node)
    chans = (hub.registry.hello(node) or {}).get("ch")
    if isinstance(chans, list) and ch >= len(chans):  # (no hello yet: the store may know)
        have = f"channels 0..{len(chans) - 1}" if chans else "no channels"
        raise HTTPException(404, f"node {node!r} has no channel {ch} (it has {have})")


@router.get("/nodes/{node}/history",
            summary="A channel's coherence and dominant lag over time, downsampled")
def history(hub: HubDep, node: Name,
            ch: Annotated[int, Query(ge=0, le=7, description="channel index")] = 0,
            since: Annotated[float | None, Query(description="unix seconds; "
                                                 "default: until - 600")] = None,
            until: Annotated[float | None, Query(description="unix seconds; "
                                                 "default: now")] = None,
            points: Annotated[int, Query(ge=1, le=2000)] = 300) -> dict:
    _channel(hub, node, ch)
    until = hub.clock() if until is None else until
    since = until - 600.0 if since is None else since
    if not (abs(since) < 1e11 and abs(until) < 1e11) or since >= until:
        raise HTTPException(422, "need since < until (unix seconds)")
    if until - since > 3650 * 86400:
        raise HTTPException(422, "the range is at most 10 years")
    return views.history(hub, node, ch, since, until, points)


@router.get("/nodes/{node}/spectrum",
            summary="A channel's per-lag coherence spectrum over the last 10 minutes")
def spectrum(hub: HubDep, node: Name,
             ch: Annotated[int, Query(ge=0, le=7, description="channel index")] = 0) -> dict:
    """Columns of 5 s (the newest still filling), oldest first: `times` (each
    column's start, unix seconds), `lags` (samples) and `lags_ms`, and `c`:
    per column the mean coherence (0..1) of each lag."""
    _channel(hub, node, ch)
    return views.spectrum(hub, node, ch, hub.clock())


@router.get("/nodes/{node}/events", summary="A node's stored collapse/release events")
def node_events(hub: HubDep, node: Name, since: float | None = None,
                until: float | None = None,
                limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> dict:
    _known(hub, node)
    rows = hub.store.events(node, since, until, limit=100000)
    rows = rows[-limit:]
    for r in rows:
        r["c"] = r["c"] / views.Q15
    return {"node": node, "events": rows}
