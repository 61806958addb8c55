"""The WebSocket feed: one hub subscriber fanned out to many browsers, each
with its own subscription and server-side decimation.

The core thread calls ``Feed.on_hub`` every tick (10 Hz) with the state;
that only keeps a reference and wakes the event loop.  Each client's task
then builds its own message, at most ``max_hz`` a second:

- the mesh globals (G, R, Psi, emergence, witness) every time;
- node rows only for nodes whose values changed since this client last got
  them, at most ``max_rows`` per message, taken round-robin, so with 1,000
  nodes every node is refreshed every few messages and a message stays
  small; columns are named once (``cols``), each row is a list;
- a node's static facts (board, transport, channel names) once, in ``meta``;
- the hub's events and rule/display broadcasts since the previous message.

The feed subscribes to the hub only while a client is connected: the
per-node part of the state costs the core ~15 ms a tick at 1,000 nodes.
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from becomingone.errors import BecomingOneError
from becomingone.web import views

FIELDS = ("online", "c", "tau", "collapsed", "aligned", "channels")
DEFAULT_FIELDS = ("online", "c", "tau", "collapsed")
MAX_ROWS = 5000
DEFAULT_ROWS = 200
MAX_EVENTS = 50  # per message
MAX_NAMES = 10000  # nodes in one subscription


def next_slot(slot: float, period: float, now: float) -> float:
    """When the next message may go, after one sent at `now` in `slot`.

    On a grid of `period` (1/max_hz), not "a full period after the last
    send": the core's ticks jitter, and a tick a little late must not push
    every later message back.  When the grid has fallen behind (a pause, a
    core slower than max_hz) it restarts a period after this message, so a
    pause is never followed by a burst faster than max_hz."""
    nxt = slot + period
    return nxt if nxt >= now else now + period


class SubscribeError(BecomingOneError, ValueError):
    """A bad subscribe message: the text goes back to the client."""


def _row(st: dict, fields: tuple[str, ...], online: bool) -> tuple:
    out = []
    for f in fields:
        if f == "online":
            out.append(online)
        elif f == "c":
            out.append(views.num(st.get("c"), 3))
        elif f == "tau":
            out.append(views.num(st.get("tau"), 3))
        elif f == "channels":
            out.append([views.num(ch.get("c"), 3) for ch in st.get("channels", ())])
        else:
            out.append(bool(st.get(f)))
    return tuple(out)


class Client:
    """One WebSocket's subscription and what it has been sent."""

    def __init__(self, max_hz: float) -> None:
        self.cap_hz = max_hz
        self.max_hz = max_hz
        self.nodes: list[str] | None = None  # None: all
        self.fields: tuple[str, ...] = DEFAULT_FIELDS
        self.max_rows = DEFAULT_ROWS
        self.cursor = 0
        self.sent: dict[str, tuple] = {}
        self.meta_sent: set[str] = set()
        self.ev_seq = 0  # the feed's sequence numbers already sent (set by attach)
        self.other_seq = 0
        self.participants: list[str] | None = None
        self.wake = asyncio.Event()

    def subscribe(self, spec: Any) -> dict[str, Any]:
        """Apply a {"nodes", "fields", "max_hz", "max_rows"} dict (all optional)."""
        if not isinstance(spec, dict):
            raise SubscribeError("subscribe must be an object")
        unknown = sorted(set(spec) - {"nodes", "fields", "max_hz", "max_rows"})
        if unknown:
            raise SubscribeError(f"subscribe.{unknown[0]}: unknown key "
                                 "(known: nodes, fields, max_hz, max_rows)")
        nodes, fields = spec.get("nodes", "*"), spec.get("fields", list(DEFAULT_FIELDS))
        hz, rows = spec.get("max_hz", self.cap_hz), spec.get("max_rows", DEFAULT_ROWS)
        if nodes != "*" and not (isinstance(nodes, list) and len(nodes) <= MAX_NAMES
                                 and all(isinstance(n, str) and 0 < len(n) <= 64
                                         for n in nodes)):
            raise SubscribeError(f'subscribe.nodes: "*" or a list of up to {MAX_NAMES} '
                                 "node names")
        if not (isinstance(fields, list) and all(f in FIELDS for f in fields)):
            raise SubscribeError(f"subscribe.fields: a list of {', '.join(FIELDS)}")
        if isinstance(hz, bool) or not isinstance(hz, int | float) or not 0 < hz <= 1000:
            raise SubscribeError("subscribe.max_hz: a number in (0, 1000]")
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
            raise SubscribeError(f"subscribe.max_rows: an integer 1..{MAX_ROWS}")
        self.nodes = None if nodes == "*" else list(dict.fromkeys(nodes))
        self.fields = tuple(dict.fromkeys(fields))
        self.max_hz = min(float(hz), self.cap_hz)
        self.max_rows = rows
        self.sent.clear()  # a new subscription starts from full rows
        self.cursor = 0
        return {"type": "subscribed", "nodes": nodes, "fields": list(self.fields),
                "max_hz": self.max_hz, "max_rows": rows}

    def build(self, feed: Feed) -> list[dict[str, Any]]:
        """The messages due now (possibly none)."""
        out: list[dict[str, Any]] = []
        others = [(s, m) for s, m in list(feed.others) if s > self.other_seq]
        if others:
            self.other_seq = others[-1][0]
            out += [m for _, m in others]
        st = feed.state
        if st is None:
            return out
        msg: dict[str, Any] = {"type": "state", "mesh": feed.mesh_view}
        parts = st.get("participants") or []
        msg["mesh"] = dict(feed.mesh_view, participants=len(parts))
        if parts != self.participants:
            self.participants = list(parts)
            msg["participants"] = self.participants
        nodes: dict[str, dict] = st.get("nodes") or {}
        meta = feed.meta
        names = list(nodes) if self.nodes is None else [n for n in self.nodes if n in nodes]
        msg["n_nodes"] = len(names)
        new_meta = {n: meta[n] for n in names if n not in self.meta_sent and n in meta}
        if new_meta:
            self.meta_sent.update(new_meta)
            msg["meta"] = new_meta
        rows = []
        n = len(names)
        start = self.cursor % n if n else 0
        looked = 0
        stale = feed.stale
        for j in range(n):
            name = names[(start + j) % n]
            looked = j + 1
            row = _row(nodes[name], self.fields, name not in stale)
            if self.sent.get(name) != row:
                self.sent[name] = row
                rows.append([name, *row])
                if len(rows) >= self.max_rows:
                    break
        self.cursor = (start + looked) % n if n else 0
        msg["cols"] = ["node", *self.fields]
        msg["rows"] = rows
        evs = feed.events_after(self.ev_seq)
        if evs:
            self.ev_seq = evs[-1][0]
            msg["events"] = [views.event_json(e) for _, e in evs[-MAX_EVENTS:]]
        out.append(msg)
        return out


class Feed:
    def __init__(self, hub: Any, max_hz: float) -> None:
        self.hub = hub
        self.max_hz = max_hz
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.state: dict | None = None  # the latest summary (JSON-ready STATE)
        self.mesh_view: dict[str, Any] = {}
        self.meta: dict[str, dict] = {}
        self.stale: set[str] = set()
        self.others: deque[tuple[int, dict]] = deque(maxlen=50)
        self.events: deque[tuple[int, dict]] = deque(maxlen=500)
        self._other_seq = 0
        self._ev_seq = 0
        self._hub_seq = 0  # the hub's event numbers already taken (Hub.events_after)
        self._lock = threading.Lock()
        self.stats = {"messages": 0, "bytes": 0, "clients_total": 0, "errors": 0}

    # -- clients (event loop) -------------------------------------------------
    def attach(self, client: Client) -> None:
        self.loop = asyncio.get_running_loop()
        self.clients.add(client)
        self.stats["clients_total"] += 1
        if self.on_hub not in self.hub.subscribers:
            seen = self.hub.events_after(self._hub_seq)  # older ones are history (GET /api/events)
            if seen:
                self._hub_seq = seen[-1][0]
            self.hub.subscribe(self.on_hub)
        client.ev_seq, client.other_seq = self._ev_seq, self._other_seq  # news from now on

    def detach(self, client: Client) -> None:
        self.clients.discard(client)
        if not self.clients:
            self.unsubscribe()

    def unsubscribe(self) -> None:
        self.hub.unsubscribe(self.on_hub)

    def events_after(self, seq: int) -> list[tuple[int, dict]]:
        with self._lock:
            return [(s, e) for s, e in self.events if s > seq]

    # -- the hub side (core thread) ---------------------------------------------
    def on_hub(self, msg: dict) -> None:
        """Called by the core thread each tick and by hub.broadcast: keep, wake."""
        try:
            if msg.get("type") == "state":
                now = msg["state"].get("t") or self.hub.clock()
                self.mesh_view = views.mesh(self.hub)
                presence = self.hub.registry.presence(now)
                self.stale = {n for n, p in presence.items() if p.stale}
                self._update_meta(presence)
                self._collect_events()
                self.state = msg["state"]
            else:
                m = dict(msg)
                if isinstance(m.get("participants"), list):
                    m["participants"] = len(m["participants"])  # a count, not 1,000 names
                m.pop("nodes", None)
                with self._lock:
                    self._other_seq += 1
                    self.others.append((self._other_seq, m))
            loop = self.loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._wake)
        except Exception:  # noqa: BLE001 - the web page must never break the core's tick
            self.stats["errors"] += 1

    def _wake(self) -> None:
        for c in self.clients:
            c.wake.set()

    def _update_meta(self, presence: dict[str, Any]) -> None:
        if len(self.meta) == len(presence):
            return
        for name, p in presence.items():
            if name not in self.meta and p.hello:
                self.meta[name] = views._meta({"hello": p.hello, "source": p.source})

    def _collect_events(self) -> None:
        new = self.hub.events_after(self._hub_seq)
        if not new:
            return
        self._hub_seq = new[-1][0]
        with self._lock:
            for _, rec in new:
                self._ev_seq += 1
                self.events.append((self._ev_seq, rec))
