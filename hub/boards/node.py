"""Node configs: check one against its board, and merge the two (part of becomingone.boards)."""

from __future__ import annotations

import copy
import re
from typing import Any

from becomingone.boards.checks import (
    BoardError,
    check_bool,
    check_int,
    check_keys,
    check_obj,
    check_str,
    show,
)
from becomingone.boards.definition import load_board, validate_board
from kairos import wire

# Node configs: keys that may override the board definition, and their own keys.
NODE_OVERRIDES = ("period_ms", "report_every", "weight", "sensors", "outputs", "watchdog_ms", "hal")
_NODE_OWN = ("node", "key", "transport", "wifi", "mqtt", "serial", "spool", "seed", "realtime",
             "clock_start")
_NODE_KEYS = {"board", *_NODE_OWN, *NODE_OVERRIDES}
_SECRET_KEYS = ("password",)
_MQTT_DEFAULTS: dict[str, Any] = {
    "port": 1883, "user": None, "password": None, "prefix": "becomingone", "keepalive": 30,
}
_KEY_RE = re.compile(r"(?:[0-9a-fA-F]{2}){16,64}")  # the node's key (kairos.mac), hex


def _secrets(cfg: Any) -> list[str]:
    found: list[str] = []
    if isinstance(cfg, dict):
        if isinstance(cfg.get("key"), str) and cfg["key"]:
            found.append(cfg["key"])
        for key in ("wifi", "mqtt"):
            sub = cfg.get(key)
            if isinstance(sub, dict):
                for skey in _SECRET_KEYS:
                    value = sub.get(skey)
                    if isinstance(value, str) and value:
                        found.append(value)
    return found


def _scrubbed(exc: BoardError, cfg: Any) -> BoardError:
    """The same error with any secret value of cfg masked (belt and braces)."""
    reason = exc.reason
    for secret in _secrets(cfg):
        # A very short secret only where it is shown as a value, not inside words.
        reason = reason.replace(secret if len(secret) >= 4 else repr(secret), "***")
    return BoardError(exc.path, reason)


def _node_config(cfg: dict, board: dict | None) -> tuple[dict, dict]:
    c = copy.deepcopy(check_obj("", cfg))
    check_keys("", c, _NODE_KEYS, ("node", "board"))
    node = check_str("node", c["node"])
    if not wire.node_ok(node):  # the one node id rule
        raise BoardError("node", f"{show(node)} must be 1..32 characters [A-Za-z0-9_.-]")
    if "key" in c and not (isinstance(c["key"], str) and _KEY_RE.fullmatch(c["key"])):
        raise BoardError("key", "must be 32..128 hex digits (the node's key; "
                         "becomingone keys add writes one)")
    bid = check_str("board", c["board"])
    if board is None:
        board = load_board(bid)
    elif bid != board["board"]:
        raise BoardError("board", f"the node config is for {bid!r}, not {board['board']!r}")
    transports = board["transports"]
    c.setdefault("transport", transports[0])
    t = c["transport"]
    if t not in transports or not isinstance(t, str):
        raise BoardError("transport", f"{show(t)} is not a transport of {board['board']} "
                         f"({', '.join(transports)})")
    if "wifi" in c or t == "mqtt":
        if "wifi" not in c:
            raise BoardError("wifi", "missing: the mqtt transport needs {\"ssid\", \"password\"}")
        wifi = dict(check_obj("wifi", c["wifi"]))
        check_keys("wifi", wifi, {"ssid", "password"}, ("ssid", "password"))
        ssid = check_str("wifi.ssid", wifi["ssid"])
        if not 1 <= len(ssid) <= 32:
            raise BoardError("wifi.ssid", f"must be 1..32 characters, got {len(ssid)}")
        check_str("wifi.password", wifi["password"], secret=True)
        c["wifi"] = wifi
    if "mqtt" in c or t == "mqtt":
        if "mqtt" not in c:
            raise BoardError("mqtt", "missing: the mqtt transport needs at least {\"host\"}")
        mqtt = dict(check_obj("mqtt", c["mqtt"]))
        check_keys("mqtt", mqtt, {"host", *_MQTT_DEFAULTS}, ("host",))
        for key, value in _MQTT_DEFAULTS.items():
            mqtt.setdefault(key, value)
        host = check_str("mqtt.host", mqtt["host"])
        if not host or len(host) > 253 or any(ch.isspace() for ch in host):
            raise BoardError("mqtt.host", f"{show(host)} is not a host name")
        check_int("mqtt.port", mqtt["port"], 1, 65535)
        if mqtt["user"] is not None:
            check_str("mqtt.user", mqtt["user"])
        if mqtt["password"] is not None:
            check_str("mqtt.password", mqtt["password"], secret=True)
        prefix = check_str("mqtt.prefix", mqtt["prefix"])
        if not prefix or any(ch in prefix for ch in "+#") or prefix.strip("/") != prefix:
            raise BoardError("mqtt.prefix", f"{show(prefix)} must be a topic without "
                             "wildcards or leading/trailing '/'")
        check_int("mqtt.keepalive", mqtt["keepalive"], 1, 65535)
        c["mqtt"] = mqtt
    c.setdefault("seed", 1)
    check_int("seed", c["seed"], 0, (1 << 30) - 1)
    if "serial" in c:
        check_obj("serial", c["serial"])
    if "spool" in c:  # the store-and-forward ring (firmware/node/link.py), as the node checks it
        spool = check_obj("spool", c["spool"])
        check_keys("spool", spool, {"slots", "size", "file", "file_slots"})
        if "slots" in spool:
            check_int("spool.slots", spool["slots"], 2, 1024)
        if "size" in spool:
            check_int("spool.size", spool["size"], 0, 4096)
        if "file" in spool:  # "" keeps the spool in RAM only
            path = spool["file"]
            if not isinstance(path, str) or len(path) > 200:
                raise BoardError("spool.file", "a path of at most 200 chars (\"\": RAM only), "
                                 f"got {path!r}")
        if "file_slots" in spool:
            check_int("spool.file_slots", spool["file_slots"], 0, 100000)
    if "realtime" in c:
        check_bool("realtime", c["realtime"])
    if "clock_start" in c:
        check_int("clock_start", c["clock_start"], 0, (1 << 30) - 1)
    return c, board


def _merge(board: dict, c: dict) -> dict:
    overrides = {key: c[key] for key in NODE_OVERRIDES if key in c}
    merged = validate_board({**board, **overrides})  # validate_board works on a deep copy
    for key in _NODE_OWN:
        if key in c:
            merged[key] = copy.deepcopy(c[key])
    return merged


def _checked(cfg: dict, board: dict | None) -> tuple[dict, dict]:
    """(the node config with defaults, the merged board); secrets masked in errors."""
    try:
        c, b = _node_config(cfg, None if board is None else validate_board(board))
        return c, _merge(b, c)
    except BoardError as exc:
        raise _scrubbed(exc, cfg) from None


def validate_node_config(cfg: dict) -> dict:
    """Check a node config (as the flash tool writes it) against its shipped board.

    Returns the config with defaults filled in (transport, mqtt settings,
    seed).  Overrides of board keys are checked as the merged board.
    Passwords never appear in an error message.
    """
    return _checked(cfg, None)[0]


def merged_config(board: dict, cfg: dict) -> dict:
    """What the firmware effectively runs: the node config over the board definition.

    Like the firmware's merge, board keys overridden by the node (period_ms,
    report_every, weight, sensors, outputs, watchdog_ms, hal) are replaced,
    then the node's own keys are added: node, transport, wifi (its
    credentials object replaces the board's capability flag), mqtt, seed...
    """
    return _checked(cfg, board)[1]
