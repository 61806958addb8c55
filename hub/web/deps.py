"""What the routes get injected (FastAPI ``Depends``)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from becomingone.web.auth import require_read, require_write


def get_hub(request: Request) -> Any:
    return request.app.state.hub


HubDep = Annotated[Any, Depends(get_hub)]
READ = [Depends(require_read)]
WRITE = [Depends(require_write)]
