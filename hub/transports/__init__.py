"""The hub's links to the nodes: serial, MQTT and BLE.

    t = make("serial", config.section("serial", ports="auto"), sink, log)
    t.start()

A transport reads its section of the hub config ([serial], [mqtt], [ble]),
complete: becomingone.config holds the defaults, and section() fills them in
for a transport built without a config file.

make() imports a transport's module (and so its library: pyserial, paho,
bleak) only when asked for it.  A transport whose library is missing is
reported once via log() and comes back as an inert Disabled transport, so
the hub runs on without it; missing hardware (no ports, no broker, no BLE
adapter) is a runtime condition each transport logs and copes with.
"""

from __future__ import annotations

from typing import Any

from becomingone.transports.base import Ack, Disabled, Log, Reject, Sink, Transport, TransportError

__all__ = ["KINDS", "Ack", "Disabled", "Sink", "Transport", "TransportError", "make"]

KINDS = ("serial", "mqtt", "ble")
# The library each transport needs (pip name), for the one-line report.
NEEDS = {"serial": "pyserial", "mqtt": "paho-mqtt", "ble": "bleak"}


def _cls(kind: str) -> type[Transport]:
    if kind == "serial":
        from becomingone.transports.serial import SerialTransport

        return SerialTransport
    if kind == "mqtt":
        from becomingone.transports.mqtt import MqttTransport

        return MqttTransport
    if kind == "ble":
        from becomingone.transports.ble import BleTransport

        return BleTransport
    raise TransportError(f"unknown transport {kind!r} (one of {', '.join(KINDS)})")


def make(kind: str, cfg: dict[str, Any] | None, sink: Sink, log: Log = print,
         reject: Reject | None = None) -> Transport:
    """A transport of this kind, not yet started, on ``cfg``: its complete,
    checked config section.  TransportError for an unknown kind; a Disabled
    transport (logged once) if its library is missing or it cannot be built."""
    try:
        cls = _cls(kind)
    except ImportError as e:
        why = f"{NEEDS.get(kind, '?')} is not installed ({e.name or e})"
        log(f"{kind}: {why}; {kind} transport off")
        return Disabled(kind, why, log)
    try:
        return cls(cfg or {}, sink, log, reject)
    except (ValueError, TypeError) as e:  # (a missing key is the caller's bug: raised)
        why = f"bad config: {e}"
        log(f"{kind}: {why}; {kind} transport off")
        return Disabled(kind, why, log)
