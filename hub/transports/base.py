"""The transport base class: what every link to the nodes shares.

Modelled on mpremote's transport.py: one small base class holds the
bookkeeping (reject counts, where each node was last heard, the hand-off to
the hub core's sink, errors logged once per outage) and each subclass adds
only its I/O (serial ports, an MQTT client, BLE connections).  Decoding
itself is kairos.wire / kairos.wirebin; transports never parse by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from becomingone.errors import BecomingOneError
from becomingone.logs import Limiter

# sink(msg, source, t_rx, ack): msg is a validated wire dict (or a synthesised
# {"t": "status", "node": id, "online": bool}); source names where it came
# from ("serial:/dev/ttyACM0", "mqtt", "ble:AA:BB:.."); t_rx = time.time() at
# arrival; ack, when not None, must be called once the core has stored the
# frame durably (for MQTT it sends the PUBACK; call it for duplicates too).
Ack = Callable[[], None]
Sink = Callable[[dict, str, float, Ack | None], None]
Log = Callable[[str], None]
# reject(source, reason, node): a frame refused before it reached the sink
# (the signature of Registry.reject).
Reject = Callable[[str, str, str | None], None]

MAX_ROUTES = 100_000  # nodes whose route a transport remembers (the sim may run 100,000)


class TransportError(BecomingOneError):
    """The transports' errors (a node not heard, a port not open), under the
    one root BecomingOneError."""


class Transport:
    """A link to some nodes.  start() spawns the subclass's threads, which
    call _deliver() for each decoded frame; runtime faults are logged and
    retried inside those threads, never raised to the caller."""

    kind = "?"
    # Whether _send can carry the hub's end-to-end acks (`got`,
    # docs/protocol.md §8) to the nodes it heard: links to real nodes can.
    e2e = False
    # The hub's node keys (becomingone.transports.keys.NodeKeys), set by the
    # hub before start(): the decoders check each frame's MAC with it.
    keys: Any = None

    def __init__(self, cfg: dict[str, Any], sink: Sink, log: Log = print,
                 reject: Reject | None = None) -> None:
        self.cfg = dict(cfg or {})
        self.sink = sink
        self.log = log
        self.on_reject = reject
        self.counts: dict[str, int] = {}  # decoder rejects and noise, by wire reason
        self.reconnects = 0
        self._lock = threading.RLock()
        self._routes: dict[str, Any] = {}  # node -> where it was last heard
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._said: set[str] = set()  # log keys said once (per outage)
        self._limit = Limiter()  # repeated failures: a line a minute per key

    # -- the API the hub core uses -------------------------------------------
    def start(self) -> None:
        self._stop.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the threads, within about timeout seconds in all."""
        self._stop.set()
        self._halt()
        deadline = time.monotonic() + timeout
        while True:  # a thread may have spawned another meanwhile: look again
            with self._lock:
                alive = [t for t in self._threads
                         if t.is_alive() and t is not threading.current_thread()]
                self._threads = alive
            if not alive or time.monotonic() > deadline:
                return
            for t in alive:
                t.join(max(0.0, deadline - time.monotonic()))

    def send(self, msg: dict) -> None:
        """A hub->node frame, to where msg["node"] was last heard."""
        node = msg.get("node") if isinstance(msg, dict) else None
        with self._lock:
            if node not in self._routes:
                raise TransportError(f"node {node!r} not heard on {self.kind}")
            route = self._routes[node]
        try:
            self._send(route, msg)
        except TransportError:
            raise
        except (OSError, ValueError) as e:  # ValueError: an invalid message
            raise TransportError(f"{self.kind} send to {node!r}: {e}") from e

    def nodes(self) -> set[str]:
        with self._lock:
            return set(self._routes)

    def status(self) -> dict:
        with self._lock:
            st = {"kind": self.kind, "connected": False, "counts": dict(self.counts),
                  "reconnects": self.reconnects, "nodes": sorted(self._routes)}
        st.update(self._status())
        return st

    # -- for the subclasses ----------------------------------------------------
    def _auth(self, source: str) -> Callable[[dict, Any, Any], bool] | None:
        """The MAC check for a decoder of frames from source (kairos.wire's
        auth), or None when the hub has no keys."""
        return None if self.keys is None else self.keys.auth(source)

    def _deliver(self, msg: dict, source: str, route: Any, ack: Ack | None = None,
                 t_rx: float | None = None) -> None:
        """Hand a decoded frame to the sink; remember the node's route."""
        t_rx = time.time() if t_rx is None else t_rx
        node = msg.get("node")
        if isinstance(node, str) and route is not None:
            with self._lock:
                # Newest last; the longest silent goes past MAX_ROUTES (a flood
                # of made-up names, whose frames the registry refuses, is
                # heard here first).
                self._routes.pop(node, None)
                self._routes[node] = route
                if len(self._routes) > MAX_ROUTES:
                    del self._routes[next(iter(self._routes))]
        try:
            self.sink(msg, source, t_rx, ack)
        except Exception as e:  # noqa: BLE001 - a core bug must not kill the reader
            more = self._limit.allow("sink")  # (a core bug fails every frame: a line a minute)
            if more is not None:
                self.log(f"{self.kind}: sink failed on a {msg.get('t')} frame from {source}: "
                         f"{e!r}{more}")

    def _merge(self, counts: dict[str, int], source: str, node: str | None = None) -> None:
        """Add a decoder's fresh counts to self.counts and report the rejects."""
        if not counts:
            return
        with self._lock:
            for reason, n in counts.items():
                self.counts[reason] = self.counts.get(reason, 0) + n
        if self.on_reject is not None:
            for reason, n in counts.items():
                for _ in range(n):
                    try:
                        self.on_reject(source, reason, node)
                    except Exception as e:  # noqa: BLE001
                        self.log(f"{self.kind}: reject callback failed: {e!r}")
                        return

    def _say_once(self, key: str, text: str) -> None:
        """Log text unless key was said since the last _unsay(key)."""
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
        self.log(text)

    def _unsay(self, key: str) -> None:
        with self._lock:
            self._said.discard(key)

    def _spawn(self, target: Callable[..., None], *args: Any, name: str = "") -> threading.Thread:
        t = threading.Thread(target=target, args=args, daemon=True,
                             name=name or f"hub-{self.kind}")
        with self._lock:
            self._threads.append(t)
        t.start()
        return t

    # -- the subclass's I/O ------------------------------------------------------
    def _send(self, route: Any, msg: dict) -> None:
        raise TransportError(f"{self.kind} cannot send")

    def _halt(self) -> None:
        """Unblock the threads after _stop is set (close sockets, ports)."""

    def _status(self) -> dict:
        return {}


class Disabled(Transport):
    """A transport that cannot run here (its library is missing): it says so
    once, then does nothing, so the hub runs on without it."""

    def __init__(self, kind: str, reason: str, log: Log = print) -> None:
        super().__init__({}, lambda *a: None, log)
        self.kind = kind
        self.reason = reason

    def start(self) -> None:
        pass

    def _status(self) -> dict:
        return {"disabled": self.reason}
