"""The hub's configuration: a TOML file where every setting has a default,
so no file is needed at all.  docs/hub.example.toml shows every key.

The whole file is checked here, once, before anything is created (the
database file, threads, sockets): the sections and their keys, the
``[nodes.<id>]`` overrides, the ``[[rules]]`` (by becomingone.rules.parser,
which also checks each action's parameters) and the ``[[inputs]]`` (by
becomingone.transports.inputs).  What :func:`load` and :func:`parse` return
is complete and valid, so building a hub from it cannot fail on its config.
A fault is one HubConfigError, ``file:line: where key: reason``, e.g.

    hub.toml:12: [mqtt] port: must be 1..65535, got 70000
    hub.toml:31: rules[1] when: unknown name 'G2'

The line is the line of the key's statement (or of its table's header when
the key is missing); becomingone.tomllines finds it.  The transports read
their settings from their section as given here: their defaults are the ones
in DEFAULTS, written nowhere else.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from becomingone.errors import BecomingOneError
from becomingone.rules.parser import Rule, RuleError, parse_rule_tables
from becomingone.tomllines import LineIndex
from becomingone.transports.inputs import InputError, check_inputs


class HubConfigError(BecomingOneError, ValueError):
    """A bad hub config: ``file:line: where key: reason``.

    ``file``, ``line`` (1-based, None when not known) and ``key`` (the dotted
    path of the key at fault, e.g. ``"mqtt.port"``, ``"rules.1.when"``) say
    where; the message says it all in one line.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.file, self.line, self.key = file, line, key


# section -> key -> default.  The type of the default is the type required
# (ints are accepted where floats are).  The transports ([serial], [mqtt],
# [ble]) read exactly these keys, with no defaults of their own.
DEFAULTS: dict[str, dict[str, Any]] = {
    "hub": {"db": "becomingone.db", "tick_hz": 10.0, "ping_interval": 10.0,
            "save_interval": 5.0, "compact_interval": 3600.0, "sound_dir": "sounds",
            "keys": "nodes.keys", "require_keys": False,  # node keys (transports.keys)
            "log_key": ""},  # the event log's key file ("": <db>.key)
    "mesh": {"enter": 0.75, "leave": 0.70, "dwell": 3.0, "stale_periods": 3.0},
    "master": {"taus": [60.0, 600.0, 3600.0], "align_rad": 0.3},
    "witness": {"beta": 0.2, "k": 3.0, "refractory": 10},
    "memory": {"r0": 1 / 3600, "prune_below": 0.1, "raw_days": 0.25, "minute_days": 60.0,
               "hour_days": 3650.0},
    "serial": {"enabled": False, "ports": "auto", "baud": 115200, "backoff_min": 0.2,
               "backoff_max": 5.0},
    "mqtt": {"enabled": False, "host": "127.0.0.1", "port": 1883, "prefix": "becomingone",
             "client_id": "becomingone-hub", "keepalive": 30, "username": "", "password": "",
             "backoff_min": 0.2, "backoff_max": 5.0},
    "ble": {"enabled": False, "names": [], "devices": [], "scan": 5.0, "rescan": 5.0},
    "web": {"enabled": True, "host": "127.0.0.1", "port": 8000, "token": "", "max_hz": 10.0,
            "max_body": 1 << 20, "origins": []},  # request body cap (bytes); WebSocket origins
    "sim": {"nodes": 0, "seed": 1, "period": 60.0},
}
# Arrays and tables with a content of their own: [[rules]], [[inputs]], [nodes.<id>].
_FREE = ("rules", "inputs", "nodes")
_STR_LISTS = ("ports", "names", "devices", "origins")  # lists of strings (ports may also be "auto")
NODE_KEYS = {"weight": "a finite number > 0 (this node's weight in G, R and Psi)"}
SECRETS = ("password", "token")


@dataclass
class HubConfig:
    """A checked config: every section complete, the rules parsed, the inputs
    checked.  ``cfg["mqtt"]["port"]`` reads a setting."""

    sections: dict[str, dict[str, Any]]
    rules: list[Rule] = field(default_factory=list)  # parsed [[rules]], in file order
    inputs: list[dict[str, Any]] = field(default_factory=list)  # checked [[inputs]]
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = "(defaults)"

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def weight(self, node: str, default: float) -> float:
        return float(self.nodes.get(node, {}).get("weight", default))


class _Where:
    """Makes the errors of one file: ``file:line: label: reason``."""

    def __init__(self, path: str, lines: LineIndex | None) -> None:
        self.path, self.lines = path, lines

    def error(self, at: tuple[str | int, ...], label: str, reason: str) -> HubConfigError:
        line = self.lines.line(*at) if self.lines is not None else None
        head = f"{self.path}:{line}" if line else self.path
        return HubConfigError(f"{head}: {label}: {reason}", file=self.path, line=line,
                              key=".".join(str(p) for p in at))


def _typed(key: str, value: Any, default: Any) -> Any:
    """value, as the type of default; ValueError (the reason) if it is not one."""
    want = type(default)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if key in _STR_LISTS and isinstance(value, list):
        if all(isinstance(p, str) for p in value):
            return value
        raise ValueError(f"must be a list of strings, got {value!r}")
    if key == "ports" and value == "auto":
        return value
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        shown = "***" if key in SECRETS else repr(value)
        raise ValueError(f"must be {want.__name__}, got {shown}")
    return value


def _sections(raw: dict[str, Any], where: _Where) -> dict[str, dict[str, Any]]:
    for sec in raw:
        if sec not in DEFAULTS and sec not in _FREE:
            known = ", ".join(list(DEFAULTS) + list(_FREE))
            raise where.error((sec,), f"[{sec}]", f"unknown section (known: {known})")
    sections: dict[str, dict[str, Any]] = {}
    for sec, defaults in DEFAULTS.items():
        given = raw.get(sec, {})
        if not isinstance(given, dict):
            raise where.error((sec,), f"[{sec}]", "must be a table")
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise where.error((sec, unknown[0]), f"[{sec}] {unknown[0]}",
                              f"unknown key (known: {', '.join(defaults)})")
        sections[sec] = {}
        for key, default in defaults.items():
            try:
                sections[sec][key] = _typed(key, given.get(key, default), default)
            except ValueError as e:
                raise where.error((sec, key), f"[{sec}] {key}", str(e)) from None
    _check_ranges(sections, where)
    return sections


def _check_ranges(s: dict[str, dict[str, Any]], where: _Where) -> None:
    def need(ok: bool, sec: str, key: str, what: str) -> None:
        if not ok:
            raise where.error((sec, key), f"[{sec}] {key}", f"{what}, got {s[sec][key]!r}")

    h = s["hub"]
    need(h["tick_hz"] > 0, "hub", "tick_hz", "must be > 0")
    for key in ("ping_interval", "save_interval", "compact_interval"):
        need(h[key] > 0, "hub", key, "must be > 0 seconds")
    need(0 < s["mesh"]["leave"] <= s["mesh"]["enter"] <= 1, "mesh", "leave",
         "must satisfy 0 < leave <= enter <= 1")
    need(s["mesh"]["dwell"] >= 0, "mesh", "dwell", "must be >= 0")
    need(0 < s["witness"]["beta"] < 1, "witness", "beta", "must be in (0, 1)")
    need(s["witness"]["k"] > 0, "witness", "k", "must be > 0")
    need(s["witness"]["refractory"] >= 0, "witness", "refractory", "must be >= 0 ticks")
    m = s["memory"]  # (the Store checks the same, without a file and line to name)
    for key in ("r0", "prune_below", "raw_days", "minute_days", "hour_days"):
        need(math.isfinite(m[key]), "memory", key, "must be a finite number")
    need(0 < m["raw_days"] <= m["minute_days"], "memory", "raw_days",
         "must satisfy 0 < raw_days <= minute_days <= hour_days")
    need(m["minute_days"] <= m["hour_days"], "memory", "minute_days",
         "must satisfy 0 < raw_days <= minute_days <= hour_days")
    need(m["r0"] >= 0, "memory", "r0", "must be >= 0")
    need(0 <= m["prune_below"] < 1, "memory", "prune_below", "must be in [0, 1)")
    need(s["serial"]["baud"] > 0, "serial", "baud", "must be > 0")
    need(1 <= s["mqtt"]["port"] <= 65535, "mqtt", "port", "must be 1..65535")
    need(0 <= s["mqtt"]["keepalive"] <= 65535, "mqtt", "keepalive", "must be 0..65535 seconds")
    for sec in ("serial", "mqtt"):
        need(s[sec]["backoff_min"] > 0, sec, "backoff_min", "must be > 0 seconds")
        need(s[sec]["backoff_min"] <= s[sec]["backoff_max"] <= 3600, sec, "backoff_max",
             "must be backoff_min..3600 seconds")
    need(1 <= s["web"]["port"] <= 65535, "web", "port", "must be 1..65535")
    need(s["web"]["max_hz"] > 0, "web", "max_hz", "must be > 0")
    need(1024 <= s["web"]["max_body"] <= 1 << 30, "web", "max_body", "must be 1024..2**30 bytes")
    need(0 <= s["sim"]["nodes"] <= 100000, "sim", "nodes", "must be 0..100000")
    need(s["sim"]["period"] > 0, "sim", "period", "must be > 0 seconds")
    need(0 < s["ble"]["scan"] <= 600, "ble", "scan", "must be in (0, 600] seconds")
    need(0 <= s["ble"]["rescan"] <= 3600, "ble", "rescan", "must be 0..3600 seconds")
    taus = s["master"]["taus"]
    need(bool(taus) and all(isinstance(t, int | float) and not isinstance(t, bool) and t > 0
                            for t in taus), "master", "taus",
         "must be a non-empty list of positive seconds")


def _nodes(raw: Any, where: _Where) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise where.error(("nodes",), "nodes", "must be [nodes.<id>] tables")
    out = {}
    for node, over in raw.items():
        label = f"[nodes.{node}]"
        unknown = sorted(set(over) - set(NODE_KEYS))
        if unknown:
            raise where.error(("nodes", node, unknown[0]), f"{label} {unknown[0]}",
                              f"unknown key (known: {', '.join(NODE_KEYS)})")
        out[node] = dict(over)
        if "weight" in over:
            w = over["weight"]
            ok = (isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)
                  and w > 0)
            if not ok:
                raise where.error(("nodes", node, "weight"), f"{label} weight",
                                  f"must be {NODE_KEYS['weight']}, got {w!r}")
            out[node]["weight"] = float(w)
    return out


def _rules(raw: Any, where: _Where) -> list[Rule]:
    def header(i: int) -> int | None:  # Rule.line: the line of its [[rules]] header
        return where.lines.line("rules", i) if where.lines is not None else None

    try:
        return parse_rule_tables(raw, header)
    except RuleError as e:
        if e.index is None:
            raise where.error(("rules",), "rules", e.reason) from None
        keys = tuple(e.key.split(".")) if e.key else ()
        label = f"rules[{e.index}]" + (f" {e.key}" if e.key else "")
        raise where.error(("rules", e.index, *keys), label, e.reason) from None


def _inputs(raw: Any, where: _Where) -> list[dict[str, Any]]:
    try:
        return check_inputs(raw)
    except InputError as e:
        if e.index is None:
            raise where.error(("inputs",), "inputs", e.reason) from None
        label = f"inputs[{e.index}]" + (f" {e.key}" if e.key else "")
        at = ("inputs", e.index) + ((e.key,) if e.key else ())
        raise where.error(at, label, e.reason) from None


def _build(raw: dict[str, Any], where: _Where) -> HubConfig:
    sections = _sections(raw, where)
    nodes = _nodes(raw.get("nodes", {}), where)
    rules = _rules(raw.get("rules", []), where)
    inputs = _inputs(raw.get("inputs", []), where)
    return HubConfig(sections, rules, inputs, nodes, where.path)


def parse(text: str, path: str = "hub.toml") -> HubConfig:
    """The config in ``text`` (read from ``path``, named in the errors),
    checked whole; HubConfigError for the first fault."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        found = re.search(r"\(at line (\d+), column \d+\)$", str(e))
        line = int(found.group(1)) if found else None
        head = f"{path}:{line}" if line else path
        raise HubConfigError(f"{head}: invalid TOML: {e}", file=path, line=line) from None
    return _build(raw, _Where(path, LineIndex(text, raw)))


def load(path: str | Path | None) -> HubConfig:
    """The config at path, or the defaults when path is None."""
    if path is None:
        return parse("", "(defaults)")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")  # (TOML is UTF-8)
    except OSError as e:
        raise HubConfigError(f"{p}: cannot read ({e.strerror})", file=str(p)) from None
    except UnicodeDecodeError as e:
        raise HubConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})",
                             file=str(p)) from None
    return parse(text, str(p))


def section(name: str, **given: Any) -> dict[str, Any]:
    """One section, complete and checked as in a file: what a transport takes
    when it is built without a hub, e.g.
    ``transports.make("serial", config.section("serial", ports=["/dev/ttyACM0"]), sink)``."""
    if name not in DEFAULTS:
        raise HubConfigError(f"[{name}]: unknown section (known: {', '.join(DEFAULTS)})")
    return _sections({name: given}, _Where(f"config.section({name!r})", None))[name]
