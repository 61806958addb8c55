"""GET /api/mesh: G, R, Psi, emergence, the witness."""
from __future__ import annotations

from fastapi import APIRouter

from becomingone.web import views
from becomingone.web.deps import READ, HubDep

router = APIRouter(tags=["mesh"], dependencies=READ)


@router.get("/mesh", summary="Global coherence G, alignment R, phase Psi, emergence, witness")
def get_mesh(hub: HubDep) -> dict:
    return views.mesh(hub)
