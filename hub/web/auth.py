"""The API token and the access rules.

The token is ``[web] token`` from the config or, when that is empty, one
generated on first run and kept in the hub's store (state key
``web/token``), so it survives restarts; the hub prints it once, when it is
made.  Reads (GET, the WebSocket) are open to loopback clients and need the
token from anywhere else; writes (POST, PATCH) always need it.  The token comes as
``Authorization: Bearer <token>`` (or ``?token=`` on the WebSocket, which
browsers cannot give headers).
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Any

from fastapi import HTTPException, Request

STATE_KEY = "web/token"


def resolve_token(hub: Any) -> tuple[str, bool]:
    """(token, made_now): the config's token, the stored one, or a new one."""
    tok = hub.cfg["web"]["token"]
    if tok:
        return tok, False
    saved = hub.store.load_state(STATE_KEY) or {}
    if isinstance(saved.get("token"), str) and len(saved["token"]) >= 16:
        return saved["token"], False
    tok = secrets.token_urlsafe(24)
    hub.store.save_state(STATE_KEY, {"token": tok})
    return tok, True


def is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def given_token(request: Request) -> str | None:
    h = request.headers.get("authorization", "")
    scheme, _, value = h.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _check(request: Request) -> None:
    given = given_token(request)
    if given is None:
        raise HTTPException(401, "this needs the hub's API token: "
                                 "send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not token_ok(request.app.state.token, given):
        raise HTTPException(403, "wrong API token")


def require_read(request: Request) -> None:
    """Dependency: open on loopback, the token from anywhere else."""
    if not is_loopback(request.client.host if request.client else None):
        _check(request)


def require_write(request: Request) -> None:
    """Dependency: the token, always."""
    _check(request)
