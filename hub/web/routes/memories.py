"""GET /api/memories, GET /api/memories/similar (read-only similarity),
POST /api/memories/recall (a real recall: boosts what it finds; token)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from becomingone.store import StoreError, similarity
from becomingone.web import views
from becomingone.web.deps import READ, WRITE, HubDep

router = APIRouter(tags=["memories"])


def _mem(m: dict, with_signature: bool) -> dict:
    out = {k: views.jsonable(m[k]) for k in ("id", "kind", "created", "c", "strength", "t_ref",
                                              "recalls")}
    out["nodes"] = len(m["signature"])
    if with_signature:
        out["signature"] = views.jsonable(m["signature"])
    return out


@router.get("/memories", dependencies=READ,
            summary="BLEND memories with their strengths now (strongest first)")
def list_memories(hub: HubDep, limit: Annotated[int, Query(ge=1, le=10000)] = 100,
                  signature: bool = False) -> dict:
    mems = sorted(hub.store.memories(hub.clock()), key=lambda m: -m["strength"])
    return {"total": len(mems), "memories": [_mem(m, signature) for m in mems[:limit]]}


def _signature_of(hub, nodes: list[str] | None) -> dict:
    """The BLEND signature of these nodes now (default: the participants, else all)."""
    if not nodes:
        ms = hub.mesh_state
        nodes = list(ms.participants) if ms is not None and ms.participants else \
            hub.nodes.reported()
    reported = set(hub.nodes.reported())
    unknown = [n for n in nodes if n not in reported]
    if unknown:
        raise HTTPException(404, f"no report yet from node {unknown[0]!r}")
    sig = hub.nodes.signature(nodes)
    if not sig:
        raise HTTPException(409, "no node has reported yet: nothing to compare")
    return sig


@router.get("/memories/similar", dependencies=READ,
            summary="Memories most similar to the nodes' state now (changes nothing)")
def similar(hub: HubDep,
            nodes: Annotated[str | None, Query(description="comma-separated node ids; "
                                               "default: the participants")] = None,
            k: Annotated[int, Query(ge=1, le=100)] = 5) -> dict:
    names = [n for n in (nodes or "").split(",") if n.strip()]
    sig = _signature_of(hub, [n.strip() for n in names])
    found = []
    for m in hub.store.memories(hub.clock()):
        s = similarity(sig, {n: tuple(v) for n, v in m["signature"].items()})
        if s > 0:
            found.append((s, m))
    found.sort(key=lambda x: (-x[0], -x[1]["strength"]))
    return {"query_nodes": len(sig),
            "matches": [dict(_mem(m, False), similarity=s) for s, m in found[:k]]}


class RecallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=10000, description="default: the participants (else all nodes)")
    k: int = Field(5, ge=1, le=100)
    boost: float = Field(0.2, ge=0, le=1)


@router.post("/memories/recall", dependencies=WRITE,
             summary="Recall by similarity: the k best are boosted (BLEND)")
def recall(hub: HubDep, body: RecallBody) -> dict:
    sig = _signature_of(hub, body.nodes)
    try:
        got = hub.store.recall(sig, hub.clock(), k=body.k, boost=body.boost)
    except StoreError as e:
        raise HTTPException(422, str(e)) from None
    return {"recalled": [{"id": i, "similarity": s, "strength": st} for i, s, st in got]}
