"""The FastAPI app: routers per concern, JSON errors, the static page.

Every JSON answer goes through ``RedactedJSON`` (secrets masked, see
:mod:`becomingone.web.redact`); :class:`becomingone.web.guard.Guard` checks
the token before a request body is read and caps the body (``[web] max_body``)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from becomingone import __version__
from becomingone.web.auth import Token
from becomingone.web.feed import Feed
from becomingone.web.guard import Guard, new_stats, too_large
from becomingone.web.redact import redact
from becomingone.web.routes import (
    commands,
    events,
    health,
    inputs,
    memories,
    mesh,
    nodes,
    outputs,
    ws,
)

STATIC = Path(__file__).resolve().parent / "static"


def _where(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] if isinstance(loc, list | tuple) else []
    return ".".join(parts) or "body"


class RedactedJSON(JSONResponse):
    """JSON with the secrets in it masked: every answer, whichever route made it."""

    def render(self, content: Any) -> bytes:
        return super().render(redact(content))


MAX_BODY = 1 << 20  # bytes: [web] max_body's default


def create_app(hub: Any, token: str | Token, max_hz: float = 10.0, max_body: int = MAX_BODY,
               origins: Iterable[str] = ()) -> FastAPI:
    """The app for hub: token (the text, or its Token check) for writes and
    remote reads, max_body the request body cap, origins the pages besides the
    hub's own that may open the WebSocket."""
    app = FastAPI(title="BecomingONE hub", version=__version__,
                  description="The hub's REST API (docs/web.md). Reads are open on "
                              "loopback; writes need `Authorization: Bearer <token>`.",
                  default_response_class=RedactedJSON)
    app.state.hub = hub
    app.state.token = token if isinstance(token, Token) else Token.of(token)
    app.state.origins = tuple(origins)
    app.state.max_body = max_body
    app.state.guard = new_stats()
    app.state.feed = Feed(hub, max_hz)
    app.add_middleware(Guard, stats=app.state.guard, max_body=max_body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            msg = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 413:
            msg = too_large(max_body)
        return RedactedJSON({"error": msg}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": _where(e.get("loc")), "problem": str(e.get("msg"))}
                    for e in exc.errors()]
        text = "; ".join(f"{p['where']}: {p['problem']}" for p in problems[:5])
        return RedactedJSON({"error": f"bad request: {text}", "problems": problems[:20]},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        hub.log("web", f"{request.method} {request.url.path} failed: {exc!r}")
        return RedactedJSON({"error": f"internal error ({type(exc).__name__}); "
                                      "the hub keeps running"}, status_code=500)

    for r in (nodes, mesh, events, memories, outputs, health, commands, inputs):
        app.include_router(r.router, prefix="/api")
    app.include_router(ws.router)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
