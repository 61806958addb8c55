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


class InputError(ValueError):
    """A bad [[inputs]] entry: the message names the entry and the key."""


class _Virtual:
    def __init__(self, i: int, spec: dict[str, Any]) -> None:
        where = f"inputs[{i}]"
        unknown = sorted(set(spec) - _KEYS)
        if unknown:
            known = ", ".join(sorted(_KEYS))
            raise InputError(f"{where} {unknown[0]}: unknown key (known: {known})")
        name = spec.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,24}", name):
            raise InputError(f"{where} name: 1..24 chars of [A-Za-z0-9_.-] required, got {name!r}")
        self.node = "input-" + name
        self.scale = _number(where, "scale", spec.get("scale", 1.0))
        self.every = _int(where, "every", spec.get("every", 10))
        self.period = _int(where, "period_ms", spec.get("period_ms", 1000))
        topic = spec.get("mqtt_topic")
        if topic is not None and (not isinstance(topic, str) or not topic
                                  or any(c in topic for c in "+#")):
            raise InputError(f"{where} mqtt_topic: a topic without wildcards required, "
                             f"got {topic!r}")
        try:
            # What the entry leaves out takes the kernel's defaults (kairos.defaults).
            self.norm = Normalizer(**{k: spec[k] for k in NORMALIZER_KEYS if k in spec})
            self.ch = Channel(**{k: spec[k] for k in CHANNEL_KEYS if k in spec})
        except ValueError as e:
            raise InputError(f"{where} {e}") from None
        if not 1 <= self.every <= 65535 or not 1 <= self.period <= 60000:
            raise InputError(f"{where}: every must be 1..65535 and period_ms 1..60000")
        self.topic = topic
        self.seq = 0
        self.n = 0
        self.mean = 0


def _number(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v == 0:
        raise InputError(f"{where} {key}: must be a finite non-zero number, got {v!r}")
    return float(v)


def _int(where: str, key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"{where} {key}: must be an int, got {v!r}")
    return v


class Inputs(Transport):
    """The virtual nodes, as one transport ("input")."""

    kind = "input"

    def __init__(self, specs: list[dict], sink: Callable, log: Callable[[str], None] = print,
                 mqtt: dict | None = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__({}, sink, log)
        import time

        self._clock = clock or time.time
        self.boot = int(self._clock() * 1000) & _M30  # new per run: a restart is a new boot
        self.inputs: dict[str, _Virtual] = {}
        for i, spec in enumerate(specs):
            v = _Virtual(i, spec)
            if v.node in self.inputs:
                raise InputError(f"inputs[{i}] name: {spec['name']!r} is used twice")
            self.inputs[v.node] = v
        self._mqtt_cfg = mqtt
        self._client: Any = None
        self._lock2 = threading.Lock()

    def start(self) -> None:
        for v in self.inputs.values():
            self._deliver(self._hello(v), "input", None)
        topics = {v.topic: v for v in self.inputs.values() if v.topic}
        if topics and self._mqtt_cfg:
            self._subscribe(topics)

    def _subscribe(self, topics: dict[str, _Virtual]) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            self.log("input: paho-mqtt is not installed; inputs take numbers by POST only")
            return

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="becomingone-inputs")
        c.on_connect = lambda cl, u, f, rc, p: [cl.subscribe(t, qos=1) for t in topics]
        c.on_message = lambda cl, u, m: self._on_mqtt(topics, m)
        c.connect_async(self._mqtt_cfg.get("host", "127.0.0.1"), self._mqtt_cfg.get("port", 1883))
        c.loop_start()
        self._client = c

    def _on_mqtt(self, topics: dict[str, _Virtual], m: Any) -> None:
        v = topics.get(m.topic)
        if v is None:
            return
        values = parse_numbers(m.payload)
        if not values:
            self._merge({"malformed": 1}, "input:" + m.topic, v.node)
            return
        self.feed(v.node, values)

    def _halt(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()

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
        ch = v.ch
        msg = self._frame(v, "hello", board="hub-input", fw="hub", period=v.period,
                          every=v.every, weight=1, caps=[],
                          ch=[{"name": v.node[6:][:16], "lags": list(ch.lags), "s": ch.s,
                               "s0": ch.s0, "ic": ch.ic}])
        bad = wire.validate(msg)
        if bad:
            raise InputError(f"input {v.node}: its hello is {bad} (check lags, s, period_ms)")
        return msg


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
