"""POST /api/nodes/{node}/commands: a cmd frame to a node (token)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from becomingone.core import HubError
from becomingone.transports.base import TransportError
from becomingone.web.deps import WRITE, HubDep

router = APIRouter(tags=["commands"], dependencies=WRITE)

ArgValue = int | Annotated[str, Field(max_length=32)] | Annotated[list[int], Field(max_length=16)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: str = Field(min_length=1, max_length=16, description="ping, set, led, reboot ...",
                    examples=["led"])
    args: dict[str, ArgValue] = Field(default_factory=dict, max_length=8,
                                      examples=[{"on": 1}])


@router.post("/nodes/{node}/commands", status_code=202,
             summary="Send a command; the node's ack shows up in /api/events")
def send(hub: HubDep, node: str, cmd: Command) -> dict:
    if not hub.registry.known(node):
        raise HTTPException(404, f"unknown node {node!r} (GET /api/nodes lists them)")
    try:
        cid = hub.send_command(node, cmd.op, dict(cmd.args))
    except HubError as e:
        raise HTTPException(422, str(e)) from None
    except TransportError as e:
        raise HTTPException(409, f"cannot reach {node}: {e}") from None
    hub.event("command", f"{node} command {cid} {cmd.op} (from the web)", node=node)
    return {"id": cid, "node": node, "op": cmd.op, "args": cmd.args}
