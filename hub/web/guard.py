"""Limits before work: an ASGI middleware in front of every HTTP route.

Without it FastAPI reads a request's whole body before the route's token
check runs: one unauthenticated 100 MB POST took the hub from 72 MB to
1.3 GB of RSS and stalled its ticks.  Here, before the app reads a byte of a
body:

* a request that carries one (Content-Length > 0, or chunked) must bring
  the token unless it is a read from loopback; otherwise 401/403 at once;
* then the cap, ``[web] max_body``: 413 at once for a Content-Length above
  it, and as soon as a body without one streams past it (the app's read
  raises an HTTPException, which the app's handler answers as JSON);
* an answer sent before the body was read to its end closes the
  connection, so the server does not read (and throw away) the rest.

(FastAPI's own ``max_body_size`` on the app would answer an oversized body
with 413 before this middleware could say 401, and in plain text.)

``stats["body_bytes"]`` counts the body bytes the app has been handed: what
the tests (and /api/metrics) check, rather than time or memory.
"""
from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from becomingone.web.auth import bearer, is_loopback, token_refusal

READS = ("GET", "HEAD", "OPTIONS")


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def body_length(scope: Scope) -> int | None:
    """The body's announced length: 0 for none, None when it streams (chunked)."""
    length = _header(scope, b"content-length")
    if length is not None:
        try:
            return max(0, int(length))
        except ValueError:
            return None  # (h11 refuses these before us; count it as streamed)
    return None if "chunked" in (_header(scope, b"transfer-encoding") or "").lower() else 0


class Guard:
    """The token before the body, and close instead of reading a refused body."""

    def __init__(self, app: ASGIApp, stats: dict[str, int], max_body: int) -> None:
        self.app = app
        self.stats = stats
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = body_length(scope)
        body = length != 0
        if body and self._needs_token(scope):
            token = scope["app"].state.token
            refused = token_refusal(token, bearer(_header(scope, b"authorization") or ""))
            if refused is not None:
                self.stats["refused_unread"] += 1
                await _answer(send, *refused, www_auth=refused[0] == 401)
                return
        if length is not None and length > self.max_body:
            self.stats["refused_unread"] += 1
            await _answer(send, 413, too_large(self.max_body))
            return
        done, total = not body, 0

        async def counted() -> Message:
            nonlocal done, total
            msg = await receive()
            if msg["type"] == "http.request":
                n = len(msg.get("body", b""))
                self.stats["body_bytes"] += n
                total += n
                done = done or not msg.get("more_body", False)
                if total > self.max_body:  # FastAPI re-raises it: the app's handler answers
                    raise HTTPException(413, too_large(self.max_body))
            return msg

        async def closing(msg: Message) -> None:
            if msg["type"] == "http.response.start" and not done:
                msg = dict(msg, headers=[*msg.get("headers", []), (b"connection", b"close")])
            await send(msg)

        await self.app(scope, counted, closing)

    @staticmethod
    def _needs_token(scope: Scope) -> bool:
        """Writes always need it; reads off loopback (the routes check again)."""
        client = scope.get("client")
        return scope["method"] not in READS or not is_loopback(client[0] if client else None)


def too_large(max_body: int) -> str:
    return f"request body too large: at most {max_body} bytes ([web] max_body)"


async def _answer(send: Send, status: int, msg: str, www_auth: bool = False) -> None:
    """A JSON error and the end of the connection (the body stays unread)."""
    body = json.dumps({"error": msg}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]
    if www_auth:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def new_stats() -> dict[str, Any]:
    """The counters /api/metrics shows under "web": body bytes the app was handed,
    requests refused before their body was read, WebSockets refused."""
    return {"body_bytes": 0, "refused_unread": 0, "ws_refused": 0}
