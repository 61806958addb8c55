"""WebSocket /ws: the live feed (hub/web/feed.py has the decimation).

Client -> server, any time (all keys optional):
    {"subscribe": {"nodes": "*" | ["sim-0001", ...], "fields": ["online", "c", "tau",
                   "collapsed", "aligned", "channels"], "max_hz": 10, "max_rows": 200}}
    {"ping": <anything>}                          -> {"type": "pong", "ping": <same>}
Server -> client: {"type": "hello"}, {"type": "subscribed"}, {"type": "state", "mesh",
    "n_nodes", "cols", "rows", "meta"?, "participants"?, "events"?}, {"type": "rule"},
    {"type": "display"}, {"type": "error", "error": "..."} (the socket stays open).
Off loopback the token comes as ?token=... (close code 4401 without it); a
browser page from another origin than the hub's own or [web] origins is
refused (4403) before the feed starts (auth.ws_refusal has the rules).
Everything sent is redacted (becomingone.web.redact).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from becomingone.web.auth import ws_refusal
from becomingone.web.feed import FIELDS, Client, SubscribeError, next_slot
from becomingone.web.redact import redact_feed

router = APIRouter()
MAX_TEXT = 65536


async def _send(ws: WebSocket, feed, msg: dict) -> None:
    text = json.dumps(redact_feed(msg), separators=(",", ":"), allow_nan=False, default=str)
    await ws.send_text(text)
    feed.stats["messages"] += 1
    feed.stats["bytes"] += len(text.encode())


def _parse(text: str) -> dict:
    if len(text) > MAX_TEXT:
        raise SubscribeError(f"message too long (at most {MAX_TEXT} characters)")
    try:
        msg = json.loads(text)
    except ValueError:
        raise SubscribeError("not JSON: send {\"subscribe\": {...}}") from None
    if not isinstance(msg, dict) or not msg or not set(msg) <= {"subscribe", "ping"}:
        raise SubscribeError('expected {"subscribe": {...}} or {"ping": ...}')
    return msg


async def _reader(ws: WebSocket, feed, client: Client) -> None:
    while True:
        text = await ws.receive_text()
        try:
            msg = _parse(text)
            if "subscribe" in msg:
                await _send(ws, feed, client.subscribe(msg["subscribe"]))
                client.wake.set()
            if "ping" in msg:
                await _send(ws, feed, {"type": "pong", "ping": msg["ping"]})
        except SubscribeError as e:
            await _send(ws, feed, {"type": "error", "error": str(e)})


async def _writer(ws: WebSocket, feed, client: Client) -> None:
    next_t = 0.0
    while True:
        await client.wake.wait()
        client.wake.clear()
        delay = next_t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
            client.wake.clear()  # whatever came meanwhile is in this message
        for msg in client.build(feed):
            await _send(ws, feed, msg)
        next_t = next_slot(next_t, 1.0 / client.max_hz, time.monotonic())


@router.websocket("/ws")
async def live(ws: WebSocket) -> None:
    app = ws.app
    refused = ws_refusal(ws.client.host if ws.client else None, ws.headers, ws.url.scheme,
                         app.state.token, ws.query_params.get("token"), app.state.origins)
    if refused is not None:  # before accept: the handshake itself is refused (HTTP 403)
        app.state.guard["ws_refused"] += 1
        await ws.close(code=refused[0], reason=refused[1])
        return
    await ws.accept()
    feed = app.state.feed
    client = Client(feed.max_hz)
    feed.attach(client)
    tasks: list[asyncio.Task] = []
    try:
        await _send(ws, feed, {"type": "hello", "fields": list(FIELDS),
                               "max_hz": feed.max_hz, "n_nodes": app.state.hub.registry.count()})
        tasks = [asyncio.create_task(_reader(ws, feed, client)),
                 asyncio.create_task(_writer(ws, feed, client))]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                feed.stats["errors"] += 1
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        feed.detach(client)
        with contextlib.suppress(Exception):
            await ws.close()
