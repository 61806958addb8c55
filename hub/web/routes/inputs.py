"""GET /api/inputs; POST /api/inputs/{name}: numbers into a hub-side input
(a virtual node run through the kernel, see becomingone.transports.inputs; token)."""
from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from becomingone.transports.base import TransportError
from becomingone.web.deps import READ, WRITE, HubDep

router = APIRouter(tags=["inputs"])


def _inputs(hub: Any) -> Any:
    for t in hub.transports:
        if t.kind == "input":
            return t
    return None


@router.get("/inputs", dependencies=READ, summary="The hub-side inputs ([[inputs]])")
def list_inputs(hub: HubDep) -> dict:
    t = _inputs(hub)
    if t is None:
        return {"inputs": []}
    return {"inputs": [{"name": v.node[len("input-"):], "node": v.node, "topic": v.topic,
                        "scale": v.scale, "samples": v.n} for v in t.inputs.values()]}


class Numbers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: Annotated[list[float], Field(min_length=1, max_length=10000)]


@router.post("/inputs/{name}", dependencies=WRITE,
             summary='Feed numbers to a hub-side input: {"values": [1.5, 2.0]}')
def feed(hub: HubDep, name: str, body: Numbers) -> dict:
    t = _inputs(hub)
    if t is None:
        raise HTTPException(404, "this hub has no [[inputs]] configured")
    if not all(math.isfinite(x) and abs(x) < 1e12 for x in body.values):
        raise HTTPException(422, "values must be finite numbers below 1e12 in size")
    try:
        n = t.feed(name, body.values)
    except TransportError as e:
        raise HTTPException(404, str(e)) from None
    except (ValueError, OverflowError) as e:
        raise HTTPException(422, f"input {name!r}: {e}") from None
    node = name if name.startswith("input-") else "input-" + name
    return {"node": node, "samples": n}
