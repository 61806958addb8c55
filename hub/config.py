"""The hub's configuration: a TOML file where every setting has a default,
so no file is needed at all.  A wrong key or type is a HubConfigError that
names the file, the section and the key; the rules' own errors (with line
numbers) come from becomingone.rules.  docs/hub.md shows a full commented example.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class HubConfigError(ValueError):
    """A bad hub config: the message says where and why."""


# section -> key -> default.  The type of the default is the type required
# (ints are accepted where floats are).
DEFAULTS: dict[str, dict[str, Any]] = {
    "hub": {"db": "becomingone.db", "tick_hz": 10.0, "ping_interval": 10.0,
            "save_interval": 5.0, "compact_interval": 3600.0, "sound_dir": "sounds"},
    "mesh": {"enter": 0.75, "leave": 0.70, "dwell": 3.0, "stale_periods": 3.0},
    "master": {"taus": [60.0, 600.0, 3600.0], "align_rad": 0.3},
    "witness": {"beta": 0.2, "k": 3.0, "refractory": 10},
    "memory": {"r0": 1 / 3600, "prune_below": 0.1, "raw_days": 0.25, "minute_days": 60.0,
               "hour_days": 3650.0},
    "serial": {"enabled": False, "ports": "auto", "baud": 115200},
    "mqtt": {"enabled": False, "host": "127.0.0.1", "port": 1883, "prefix": "becomingone",
             "client_id": "becomingone-hub", "keepalive": 30, "username": "", "password": ""},
    "ble": {"enabled": False, "names": [], "devices": [], "scan": 5.0, "rescan": 5.0},
    "web": {"enabled": True, "host": "127.0.0.1", "port": 8000, "token": "", "max_hz": 10.0},
    "sim": {"nodes": 0, "seed": 1, "period": 60.0},
}
# Sections whose content other modules check: [[rules]], [[inputs]]; [nodes.<id>]
# is checked here (NODE_KEYS).
_FREE = ("rules", "inputs", "nodes")
_STR_LISTS = ("ports", "names", "devices")  # lists of strings (ports may also be "auto")
NODE_KEYS = {"weight": "a finite number > 0 (this node's weight in G, R and Psi)"}
SECRETS = ("password", "token")


@dataclass
class HubConfig:
    sections: dict[str, dict[str, Any]]
    rules_text: str = ""  # the TOML text, for becomingone.rules (it reports line numbers)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = "(defaults)"

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def weight(self, node: str, default: float) -> float:
        return float(self.nodes.get(node, {}).get("weight", default))


def _typed(where: str, key: str, value: Any, default: Any) -> Any:
    want = type(default)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if key in _STR_LISTS and isinstance(value, list):
        if all(isinstance(p, str) for p in value):
            return value
        raise HubConfigError(f"{where} {key}: must be a list of strings, got {value!r}")
    if key == "ports" and value == "auto":
        return value
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        shown = "***" if key in SECRETS else repr(value)
        raise HubConfigError(f"{where} {key}: must be {want.__name__}, got {shown}")
    return value


def _check_ranges(s: dict[str, dict[str, Any]], where: str) -> None:
    def need(ok: bool, sec: str, key: str, what: str) -> None:
        if not ok:
            raise HubConfigError(f"{where} [{sec}] {key}: {what}, got {s[sec][key]!r}")

    need(s["hub"]["tick_hz"] > 0, "hub", "tick_hz", "must be > 0")
    need(0 < s["mesh"]["leave"] <= s["mesh"]["enter"] <= 1, "mesh", "leave",
         "must satisfy 0 < leave <= enter <= 1")
    need(s["mesh"]["dwell"] >= 0, "mesh", "dwell", "must be >= 0")
    need(1 <= s["mqtt"]["port"] <= 65535, "mqtt", "port", "must be 1..65535")
    need(1 <= s["web"]["port"] <= 65535, "web", "port", "must be 1..65535")
    need(0 < s["witness"]["beta"] < 1, "witness", "beta", "must be in (0, 1)")
    need(s["witness"]["k"] > 0, "witness", "k", "must be > 0")
    need(s["witness"]["refractory"] >= 0, "witness", "refractory", "must be >= 0 ticks")
    need(0 <= s["sim"]["nodes"] <= 100000, "sim", "nodes", "must be 0..100000")
    need(0 < s["ble"]["scan"] <= 600, "ble", "scan", "must be in (0, 600] seconds")
    need(0 <= s["ble"]["rescan"] <= 3600, "ble", "rescan", "must be 0..3600 seconds")
    taus = s["master"]["taus"]
    need(bool(taus) and all(isinstance(t, int | float) and t > 0 for t in taus), "master",
         "taus", "must be a non-empty list of positive seconds")


def parse(text: str, path: str = "hub.toml") -> HubConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise HubConfigError(f"{path}: {e}") from None
    sections: dict[str, dict[str, Any]] = {}
    for sec, defaults in DEFAULTS.items():
        given = raw.get(sec, {})
        if not isinstance(given, dict):
            raise HubConfigError(f"{path}: [{sec}] must be a table")
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise HubConfigError(f"{path} [{sec}] {unknown[0]}: unknown key "
                                 f"(known: {', '.join(defaults)})")
        sections[sec] = {k: _typed(f"{path} [{sec}]", k, given.get(k, d), d)
                         for k, d in defaults.items()}
    for sec in raw:
        if sec not in DEFAULTS and sec not in _FREE:
            raise HubConfigError(f"{path} [{sec}]: unknown section "
                                 f"(known: {', '.join(list(DEFAULTS) + list(_FREE))})")
    _check_ranges(sections, path)
    inputs = raw.get("inputs", [])
    nodes = raw.get("nodes", {})
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise HubConfigError(f"{path}: inputs must be [[inputs]] tables")
    if not isinstance(nodes, dict) or not all(isinstance(v, dict) for v in nodes.values()):
        raise HubConfigError(f"{path}: nodes must be [nodes.<id>] tables")
    for node, over in nodes.items():
        _check_node(path, node, over)
    return HubConfig(sections, text, inputs, nodes, path)


def _check_node(path: str, node: str, over: dict[str, Any]) -> None:
    where = f"{path} [nodes.{node}]"
    unknown = sorted(set(over) - set(NODE_KEYS))
    if unknown:
        raise HubConfigError(f"{where} {unknown[0]}: unknown key (known: {', '.join(NODE_KEYS)})")
    if "weight" in over:
        w = over["weight"]
        ok = isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w > 0
        if not ok:
            raise HubConfigError(f"{where} weight: must be {NODE_KEYS['weight']}, got {w!r}")
        over["weight"] = float(w)


def load(path: str | Path | None) -> HubConfig:
    """The config at path, or the defaults when path is None."""
    if path is None:
        return parse("", "(defaults)")
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise HubConfigError(f"{p}: cannot read ({e.strerror})") from None
    return parse(text, str(p))
