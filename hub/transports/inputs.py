"""Hub-side inputs: a stream of numbers from an MQTT topic (or POSTed to the
hub's HTTP API) becomes a virtual node run through the same kernel as a
board's channel, with the same frames, so the rest of the hub can't tell it
from a real node.

    [[inputs]]
    name = "door"                 # the virtual node is "input-door"
    mqtt_topic = "house/door/level"   # optional; numbers also accepted by POST
    scale = 100.0                 # raw = round(value * scale) before the Normalizer
    offset = 0                    # Normalizer(offset, mul, shift) -> Q14
    mul = 1
    shift = 0
    lags = [2, 4, 8, 16]          # kernel settings, as on a board
    s = 8
    every = 10                    # a report every N samples
    period_ms = 1000              # the nominal sample period (for tau in seconds)
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from becomingone.transports.base import Transport, TransportError
from kairos import Channel, Normalizer, wire
from kairos.defaults import CHANNEL_KEYS, NORMALIZER_KEYS

_M30 = (1 << 30) - 1
_KEYS = {"name", "mqtt_topic", "scale", "every", "period_ms", *NORMALIZER_KEYS, *CHANNEL_KEYS}
_NUM = re.compile(rb"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


class InputError(TransportError, ValueError):
    """A bad [[inputs]] entry: ``inputs[i] key: reason``.

    ``index`` (the entry's position, None for the array as a whole), ``key``
    (None when the entry as a whole is at fault) and ``reason`` let
    becomingone.config add the file and line.
    """

    def __init__(self, reason: str, *, index: int | None = None, key: str | None = None) -> None:
        where = "inputs" if index is None else f"inputs[{index}]"
        super().__init__(f"{where} {key}: {reason}" if key else f"{where}: {reason}")
        self.index, self.key, self.reason = index, key, reason


class _Virtual:
    """One input: its settings checked, its kernel built, its hello valid."""

    def __init__(self, i: int, spec: Any) -> None:
        def bad(key: str | None, reason: str) -> InputError:
            return InputError(reason, index=i, key=key)

        if not isinstance(spec, dict):
            raise bad(None, "must be a table ([[inputs]])")
        unknown = sorted(set(spec) - _KEYS)
        if unknown:
            raise bad(unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
        name = spec.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,24}", name):
            raise bad("name", f"1..24 chars of [A-Za-z0-9_.-] required, got {name!r}")
        self.node = "input-" + name
        self.scale = _number(bad, "scale", spec.get("scale", 1.0))
        self.every = _int(bad, "every", spec.get("every", 10), 1, 65535)
        self.period = _int(bad, "period_ms", spec.get("period_ms", 1000), 1, 60000)
        topic = spec.get("mqtt_topic")
        if topic is not None and (not isinstance(topic, str) or not topic
                                  or any(c in topic for c in "+#\0")):
            raise bad("mqtt_topic", f"a topic without wildcards required, got {topic!r}")
        try:
            # What the entry leaves out takes the kernel's defaults (kairos.defaults).
            self.norm = Normalizer(**{k: spec[k] for k in NORMALIZER_KEYS if k in spec})
            self.ch = Channel(**{k: spec[k] for k in CHANNEL_KEYS if k in spec})
        except (ValueError, TypeError) as e:  # "s must be an int in 2..15, got 99"
            key, _, reason = str(e).partition(" ")
            if key in _KEYS:
                raise bad(key, reason) from None
            raise bad(None, str(e)) from None
        self.topic = topic
        self.seq = 0
        self.n = 0
        self.mean = 0
        bad_hello = wire.validate(self.hello(boot=0, seq=0, tick=0))
        if bad_hello:
            raise bad(None, f"its hello would be {bad_hello} (check lags, s, period_ms)")

    def hello(self, **head: int) -> dict:
        ch = self.ch
        return dict({"t": "hello", "node": self.node}, **head, board="hub-input", fw="hub",
                    period=self.period, every=self.every, weight=1, caps=[],
                    ch=[{"name": self.node[6:][:16], "lags": list(ch.lags), "s": ch.s,
                         "s0": ch.s0, "ic": ch.ic}])


def _number(bad: Callable[..., InputError], key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v == 0:
        raise bad(key, f"must be a finite non-zero number, got {v!r}")
    return float(v)


def _int(bad: Callable[..., InputError], key: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(key, f"must be an int, got {v!r}")
    if not lo <= v <= hi:
        raise bad(key, f"must be {lo}..{hi}, got {v}")
    return v


def _virtuals(specs: Any) -> dict[str, _Virtual]:
    if not isinstance(specs, list):
        raise InputError("must be an array of tables ([[inputs]])")
    out: dict[str, _Virtual] = {}
    for i, spec in enumerate(specs):
        v = _Virtual(i, spec)
        if v.node in out:
            raise InputError(f"{spec['name']!r} is used twice", index=i, key="name")
        out[v.node] = v
    return out


def check_inputs(specs: Any) -> list[dict[str, Any]]:
    """The [[inputs]] of a config, checked as Inputs will run them (InputError
    for the first bad entry); a copy of each entry."""
    _virtuals(specs)
    return [dict(s) for s in specs]


class Inputs(Transport):
    """The virtual nodes, as one transport ("input").

    ``mqtt``: the hub's MQTT transport (or None); an input's ``mqtt_topic``
    is subscribed over its connection and login (MqttTransport.route), so
    no second client and no second set of credentials.  Without one, the
    inputs take numbers by POST only, and start() says so.
    """

    kind = "input"

    def __init__(self, specs: list[dict], sink: Callable, log: Callable[[str], None] = print,
                 mqtt: Any = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__({}, sink, log)
        import time

        self._clock = clock or time.time
        # Random per run, as a node's boot id (node/entropy.py): a restart is a
        # new boot even within the same millisecond or on a fake clock.
        self.boot = int.from_bytes(os.urandom(4), "little") & _M30
        self.inputs = _virtuals(specs)
        self._mqtt = mqtt
        self._lock2 = threading.Lock()

    def start(self) -> None:
        for v in self.inputs.values():
            self._deliver(self._hello(v), "input", None)
        topics = {v.topic: v for v in self.inputs.values() if v.topic}
        if not topics:
            return
        route = getattr(self._mqtt, "route", None)  # (a Disabled transport has none)
        if route is None:
            why = ("[mqtt] is not enabled" if self._mqtt is None else
                   f"the MQTT transport is off ({getattr(self._mqtt, 'reason', '?')})")
            self.log(f"input: {', '.join(topics)}: {why}, so these inputs take numbers by "
                     "POST /api/inputs/<name> only")
            return
        for topic, v in topics.items():
            route(topic, lambda _topic, payload, v=v: self._on_mqtt(v, payload))

    def _on_mqtt(self, v: _Virtual, payload: bytes) -> None:
        values = parse_numbers(payload)
        if not values:
            self._merge({"malformed": 1}, "input:" + (v.topic or v.node), v.node)
            return
        self.feed(v.node, values)

    def _send(self, route: Any, msg: dict) -> None:
        raise TransportError("a hub-side input takes no commands")

    def nodes(self) -> set[str]:
        return set(self.inputs)

    # -- samples in, frames out ---------------------------------------------------
    def feed(self, node: str, values: list[float]) -> int:
        """Run numbers through the input's kernel; returns samples taken."""
        v = self.inputs.get(node) or self.inputs.get("input-" + node)
        if v is None:
            raise TransportError(f"no hub-side input {node!r} (have: {', '.join(self.inputs)})")
        frames, taken = [], 0
        with self._lock2:
            for x in values:
                try:
                    u = v.norm(round(float(x) * v.scale))  # inf / nan / not a number: skipped
                except (TypeError, ValueError, OverflowError):
                    self._merge({"malformed": 1}, "input:" + v.node, v.node)
                    continue
                taken += 1
                v.mean += u - (v.mean >> 6)
                v.n = (v.n + 1) & _M30
                if v.ch.step(u):
                    for tick, entered in v.ch.events():
                        frames.append(self._frame(v, "event", i=0, on=int(entered), c=v.ch.c,
                                                  n=tick))
                if v.n % v.every == 0:
                    row = [v.mean >> 6, v.ch.e, v.ch.k, v.ch.c, v.ch.t_re, v.ch.t_im,
                           int(v.ch.collapsed)]
                    frames.append(self._frame(v, "report", n=v.n, drop=0, miss=0, ch=[row],
                                              coh=[list(v.ch.coh)]))
        for f in frames:
            self._deliver(f, "input", None)
        return taken

    def _frame(self, v: _Virtual, t: str, **fields: Any) -> dict:
        seq, v.seq = v.seq, (v.seq + 1) & _M30
        return dict({"t": t, "node": v.node, "boot": self.boot, "seq": seq,
                     "tick": int(self._clock() * 1000) & _M30}, **fields)

    def _hello(self, v: _Virtual) -> dict:
        seq, v.seq = v.seq, (v.seq + 1) & _M30  # (checked valid when the input was built)
        return v.hello(boot=self.boot, seq=seq, tick=int(self._clock() * 1000) & _M30)


def parse_numbers(payload: bytes | str) -> list[float]:
    """Numbers from a payload: "12.5", "1 2 3", "[1, 2]" or {"value": 3}."""
    if isinstance(payload, str):
        payload = payload.encode()
    try:
        obj = json.loads(payload)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        obj = obj.get("value", obj.get("values"))
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return [float(obj)]
    if isinstance(obj, list) and all(isinstance(x, int | float) for x in obj):
        return [float(x) for x in obj]
    return [float(m) for m in _NUM.findall(payload)]
