"""GET /api/health and /api/metrics (JSON, or Prometheus text)."""
from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from becomingone import __version__
from becomingone.web import views
from becomingone.web.deps import READ, HubDep

router = APIRouter(tags=["health"], dependencies=READ)
_T0 = time.time()


def _transports(hub: Any) -> list[dict]:
    out = []
    for t in hub.transports:
        try:
            out.append(views.jsonable(t.status()))
        except Exception as e:  # noqa: BLE001 - one transport's status must not fail health
            out.append({"kind": getattr(t, "kind", "?"), "error": repr(e)})
    return out


@router.get("/health", summary="Is the hub alive and ticking")
def health(hub: HubDep) -> dict:
    alive = hub.alive()
    ms = hub.mesh_state
    age = None if ms is None else views.num(hub.clock() - ms.t, 3)
    store = hub.store.health()  # a failing store is not healthy: nothing gets stored
    ok = alive and age is not None and age < 5.0 and store["ok"]
    return {"ok": ok, "version": __version__, "core_alive": alive, "last_tick_age": age,
            "ticks": hub.counts()["ticks"], "uptime": round(time.time() - _T0, 1),
            "store": store, "transports": _transports(hub)}


def _metrics(hub: Any, request: Request) -> dict[str, Any]:
    feed = request.app.state.feed
    now = hub.clock()
    store = hub.store
    reg = hub.registry.snapshot(now)
    return {
        "counters": hub.counts(),
        "queue": hub.queue_depth(),
        "nodes": {"known": len(reg["nodes"]), "live": len(reg["live"])},
        "registry": {"rejects": reg["rejects"], "dedup": reg["dedup"]},
        "store": {"rejected": store.rejected, "too_old": store.too_old,
                  "last_error": store.last_error},
        "outputs": views.jsonable(hub.router.stats()) if hub.router else None,
        "web": {"clients": len(feed.clients), **feed.stats, **request.app.state.guard},
        "log": dict(hub.log.counts) if hasattr(hub.log, "counts") else {},
    }


@router.get("/metrics", summary="Counters (format=prometheus for the text format)")
def metrics(hub: HubDep, request: Request,
            format: Annotated[str, Query(pattern="^(json|prometheus)$")] = "json") -> Any:
    m = _metrics(hub, request)
    if format == "json":
        return m
    lines = []
    for k, v in m["counters"].items():
        lines.append(f"becomingone_{k}_total {v}")
    lines.append(f"becomingone_queue {m['queue']}")
    lines.append(f"becomingone_nodes_known {m['nodes']['known']}")
    lines.append(f"becomingone_nodes_live {m['nodes']['live']}")
    lines.append(f"becomingone_web_clients {m['web']['clients']}")
    lines.append(f"becomingone_web_messages_total {m['web']['messages']}")
    lines.append(f"becomingone_web_bytes_total {m['web']['bytes']}")
    ms = hub.mesh_state
    if ms is not None:
        lines += [f"becomingone_G {ms.G}", f"becomingone_R {ms.R}",
                  f"becomingone_emerged {int(ms.emerged)}"]
    return PlainTextResponse("\n".join(lines) + "\n")
