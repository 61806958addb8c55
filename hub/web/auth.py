"""The API token and the access rules.

The token is ``[web] token`` from the config or, when that is empty, one
generated on first run; the hub prints it once, when it is made, and keeps
only its SHA-256 in its store (state key ``web/token``), so it survives
restarts and a copy of the database does not give it away.  Reads (GET, the
WebSocket) are open to loopback clients and need the token from anywhere
else; writes (POST, PATCH) always need it.  The token comes as
``Authorization: Bearer <token>`` (or ``?token=`` on the WebSocket, which
browsers cannot give headers); it is compared with ``hmac.compare_digest``
on its hash.

The WebSocket also checks the ``Origin`` a browser sends (CORS does not
cover WebSockets: any page could otherwise read the live feed): only the
hub's own origin and ``[web] origins`` may connect.  Its loopback exemption
holds only when the page was loaded by a loopback address or ``localhost``:
a page whose name resolves to 127.0.0.1 (DNS rebinding) needs the token.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException, Request

STATE_KEY = "web/token"


class Token:
    """What the hub knows of its token: the SHA-256 (the token itself is
    shown once when made, and is in the config when it was given there)."""

    def __init__(self, sha256_hex: str) -> None:
        self.sha256 = sha256_hex

    @classmethod
    def of(cls, token: str) -> Token:
        return cls(_digest(token))

    def matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(_digest(given), self.sha256)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def resolve_token(hub: Any) -> tuple[Token, str | None]:
    """(the token's check, the token if it was made now - to show it once):
    the config's token, the stored hash, or a new token."""
    tok = hub.cfg["web"]["token"]
    if tok:
        return Token.of(tok), None
    saved = hub.store.load_state(STATE_KEY) or {}
    digest = saved.get("sha256")
    if isinstance(digest, str) and len(digest) == 64:
        return Token(digest), None
    if isinstance(saved.get("token"), str) and len(saved["token"]) >= 16:
        # A store from before tokens were hashed: keep the token, forget its text.
        check = Token.of(saved["token"])
        hub.store.save_state(STATE_KEY, {"sha256": check.sha256})
        return check, None
    tok = secrets.token_urlsafe(24)
    check = Token.of(tok)
    hub.store.save_state(STATE_KEY, {"sha256": check.sha256})
    return check, tok


def is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def loopback_name(host_header: str | None) -> bool:
    """Is the Host a request was sent to a loopback address or localhost
    (not a name that merely resolves there)?"""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


def given_token(request: Request) -> str | None:
    return bearer(request.headers.get("authorization", ""))


def bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def token_refusal(check: Token, given: str | None) -> tuple[int, str] | None:
    """(401 or 403, why) when given is not the token, None when it is."""
    if given is None:
        return 401, "this needs the hub's API token: send 'Authorization: Bearer <token>'"
    if not check.matches(given):
        return 403, "wrong API token"
    return None


def _check(request: Request) -> None:
    refused = token_refusal(request.app.state.token, given_token(request))
    if refused is not None:
        status, msg = refused
        raise HTTPException(status, msg,
                            headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def require_read(request: Request) -> None:
    """Dependency: open on loopback, the token from anywhere else."""
    if not is_loopback(request.client.host if request.client else None):
        _check(request)


def require_write(request: Request) -> None:
    """Dependency: the token, always."""
    _check(request)


def normal_origin(origin: str) -> str:
    """An origin as browsers send it: scheme://host[:port], lower case, no slash."""
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str, host_header: str | None, scheme: str,
                   allowed: Iterable[str]) -> bool:
    """Is a browser's Origin the hub's own (the scheme and Host it was asked
    on) or one of the allowed ones?  ("null" - a sandboxed or file page - never.)"""
    o = normal_origin(origin)
    own = f"{'https' if scheme in ('https', 'wss') else 'http'}://{(host_header or '').lower()}"
    return o != "null" and (o == own or o in {normal_origin(a) for a in allowed})


def ws_refusal(client_host: str | None, headers: Any, scheme: str, token: Token,
               given: str | None, allowed: Iterable[str]) -> tuple[int, str] | None:
    """(close code, reason) for a WebSocket that may not connect, else None.

    4403: a browser page from another origin.  4401: no (right) token, which
    a client needs unless it is on loopback and is either not a browser (no
    Origin) or a page loaded from a loopback address or localhost."""
    origin, host = headers.get("origin"), headers.get("host")
    if origin is not None and not origin_allowed(origin, host, scheme, allowed):
        return 4403, f"origin {origin} may not read this hub's feed ([web] origins)"
    local = is_loopback(client_host) and (origin is None or loopback_name(host))
    if not local and not token.matches(given):
        return 4401, "token required (?token=...)"
    return None
