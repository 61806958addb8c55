"""Secrets out of what the API and the WebSocket answer.

A webhook URL with ``?apikey=...`` or ``user:password@``, an MQTT password, a
``Bearer`` token in an error message: whatever the hub says (rules, outputs,
events, errors, log entries), ``redact`` replaces the secret part with
``***`` and keeps the rest readable (the host, the path, the other query
parameters).  It is applied once, where the app renders JSON and where the
WebSocket sends, so no endpoint can forget it.

What counts as a secret:

* the value under a key whose name says so (``password``, ``token``,
  ``apikey``, ``secret``, ``key``, ``*_token``, ``*_key`` ... see
  :func:`secret_name`), in a dict or as a URL query / fragment parameter;
* the password of a URL's ``user:password@`` (a lone ``user@`` is kept:
  often a name, e.g. an MQTT client; ``token@`` forms are rare);
* whatever follows ``Bearer`` / ``Basic``.

A change sent back with ``***`` where the secret was (the page's rule editor
sends the ``with`` it was shown) keeps the secret: see :func:`restore`.
"""
from __future__ import annotations

import re
from typing import Any

MASK = "***"

_NAMES = {"password", "passwd", "pass", "pwd", "secret", "token", "apikey", "key", "auth",
          "authorization", "credential", "credentials", "signature", "sig", "sessionid",
          "access_token", "refresh_token", "id_token", "client_secret", "private_key",
          "api_key", "apitoken", "api_token", "x_api_key"}
_SUFFIXES = ("_key", "_token", "_secret", "_password", "_pass", "_pwd", "apikey", "password")

# A URL's userinfo with a password: scheme://user:password@
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:'\"<>]*:)([^\s/?#@'\"<>]+)@")
# name=value in a query string or fragment (after ? & ; #)
_PARAM = re.compile(r"([?&;#])([A-Za-z0-9_.\-]+)=([^&#;\s'\"<>]*)")
# Authorization header values
_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")
# Quick test before the regexes: most strings (node ids, numbers as text) have none of these.
_HINTS = ("=", "@", "earer", "asic")


def secret_name(name: str) -> bool:
    """Does a key (a dict key, a query parameter) hold a secret by its name?"""
    n = name.lower().replace("-", "_")
    return n in _NAMES or n.endswith(_SUFFIXES)


def _param(m: re.Match) -> str:
    sep, name, value = m.groups()
    return f"{sep}{name}={MASK}" if value and secret_name(name) else m.group(0)


def redact_text(text: str) -> str:
    """text with the secrets in the URLs and auth headers it contains masked."""
    if not any(h in text for h in _HINTS):
        return text
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _PARAM.sub(_param, text)
    return _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def redact(value: Any) -> Any:
    """A copy of a JSON-able value with its secrets masked (see the module doc);
    values that hold none come back as they are (not copied)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and isinstance(v, str) and v and secret_name(k):
                out[k] = MASK
            else:  # (keys too: an adapter's stats may be keyed by URL)
                out[redact_text(k) if isinstance(k, str) else k] = redact(v)
        return out
    if isinstance(value, list | tuple):  # (numbers skip the call: rows of them are common)
        return [v if type(v) in _PLAIN else redact(v) for v in value]
    return value


_PLAIN = (int, float, bool, type(None))


def redact_feed(msg: dict) -> dict:
    """redact for a WebSocket message: a state message's rows (node ids, numbers,
    flags: 1,000 nodes at 10 Hz) are left out of the walk, the rest is redacted."""
    if msg.get("type") != "state":
        return redact(msg)
    return {k: v if k in ("rows", "cols") else redact(v) for k, v in msg.items()}


def restore(new: Any, old: Any) -> Any:
    """new, where it is old as the API showed it (redacted), back to old: a
    value sent back unchanged keeps its secret; a value really changed wins."""
    if new == old:
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: restore(v, old[k]) if k in old else v for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list | tuple) and len(new) == len(old):
        return [restore(a, b) for a, b in zip(new, old, strict=True)]
    return old if new == redact(old) else new
