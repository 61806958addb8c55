"""The hub's core: one processing thread that takes every frame the
transports deliver, stores it, and runs the slow tier on a fixed tick.

Per frame (in batches): dedup and liveness (Registry), a hub timestamp from
the node's clock sync, the Master tier per channel, storage in SQLite; only
then are the frames acknowledged (MQTT PUBACK), so a hub killed at any
moment loses nothing it acknowledged.  Per tick (10 Hz): mesh sync and
emergence, witnessing, output rules, clock-sync pings, periodic saves.

Other threads (the web, the transports) call only the public methods: the
core's changing data is read through copies taken under a lock (``recent``,
``events_after``, ``counts``, ``nodes``' and ``registry``'s accessors) or
through objects replaced whole each tick and never changed afterwards
(``mesh_state``, ``witness_state``).
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from becomingone.config import HubConfig
from becomingone.errors import BecomingOneError
from becomingone.logs import Log
from becomingone.nodes.registry import LATE, NEW, STATUS, Registry
from becomingone.nodes.states import Memory, NodeStates
from becomingone.slowtier.clocksync import ClockSync
from becomingone.slowtier.mesh import Mesh, MeshState
from becomingone.slowtier.witness import Witness, WitnessState
from becomingone.store import Store
from becomingone.transports.keys import NodeKeys
from kairos import wire

_M30 = (1 << 30) - 1
_BATCH = 5000  # frames per store transaction at most
QUEUE_MAX = 200000  # frames queued for the core before the transports wait
_LINGER = 0.010  # s a batch may wait for more frames of a busy stream ...
_GAP = 0.002  # ... as long as the next comes within this
FAILED = "failed"  # reject reason: a valid frame the hub failed to process (a hub bug)
REJECT_EVERY = 1.0  # s: rejects reach `recent` coalesced, one entry per source and reason
HELLO_EVERY = 5.0  # s: a node whose frames the dedup can't place is asked for its hello this often
ACCEPTED = (NEW, LATE, STATUS)  # registry verdicts whose frame is processed
ASK_HELLO = (wire.NOHELLO, wire.AHEAD, wire.REPLAY)  # verdicts a hello from the node settles
STORED = (NEW, LATE, wire.DUPLICATE)  # verdicts whose frame is in the store once the batch is
ACK_EVERY = 0.1  # s: a node's stored frames are acknowledged (got) at most this often ...
ACK_RANGES = 16  # ... in got frames of at most this many seq ranges (the wire's limit)


class HubError(BecomingOneError):
    """The hub core's errors (a command to an unknown node, a node whose link is
    down): one line for the user, under the one root BecomingOneError."""


class Hub:
    def __init__(self, cfg: HubConfig, log: Log | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.log = log or Log()
        self.clock = clock
        h, m = cfg["hub"], cfg["memory"]
        self.store = Store(h["db"], raw_days=m["raw_days"], minute_days=m["minute_days"],
                           hour_days=m["hour_days"], r0=m["r0"], prune_below=m["prune_below"],
                           log_key=h.get("log_key", ""))
        if self.store.log_problem:  # the hub runs on; the head file stays as the evidence
            self.log("error", f"event log: {self.store.log_problem}")
        self.registry = Registry(stale_periods=cfg["mesh"]["stale_periods"])
        # The node keys: each transport's decoders check every frame's MAC with them.
        self.keys = NodeKeys(h["keys"], require=h["require_keys"],
                             log=lambda text: self.log("keys", text.removeprefix("keys: ")),
                             reject=self.registry.reject)
        self.mesh = Mesh(**self._mesh_settings())
        self.witness = Witness(**self._witness_settings())
        self.clocks: dict[str, ClockSync] = {}
        mc = cfg["master"]
        self.nodes = NodeStates(self.registry, taus=tuple(mc["taus"]), align_rad=mc["align_rad"],
                                weight=cfg.weight)
        self.transports: list[Any] = []
        self.router: Any = None
        self._subscribers: list[Callable[[dict], None]] = []  # WebSocket pushes
        self._events: deque[tuple[int, dict]] = deque(maxlen=200)  # (seq, event), the web's
        self._event_seq = 0
        self._lock = threading.Lock()  # the subscribers and the events
        self.counters = {"frames": 0, "stored": 0, "acked": 0, "ticks": 0, "store_retries": 0,
                         "gots": 0, "gots_failed": 0}
        # The last tick's results: replaced whole each tick, never changed after.
        self.mesh_state: MeshState | None = None
        self.witness_state: WitnessState | None = None
        self._q: queue.SimpleQueue = queue.SimpleQueue()  # (C: cheap per frame)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Random, as a node's boot id: a hub restarted within the same
        # millisecond (or on a fake clock) must not look like its previous run
        # to the nodes, which drop a frame whose (boot, seq) they have seen.
        self._boot = int.from_bytes(os.urandom(4), "little") & _M30
        self._seq = itertools.count()
        self._cid = itertools.count(1)
        self._send_lock = threading.Lock()
        self._pings: dict[tuple[str, int], float] = {}
        self._clock_boot: dict[str, int] = {}
        self._next = {"ping": 0.0, "save": 0.0, "compact": 0.0, "decay": 0.0, "rejects": 0.0}
        self._rejects_seen: dict[tuple[str, str], int] = {}
        self._hello_asked: dict[str, float] = {}  # node -> when it was last asked for a hello
        # End-to-end acks (docs/protocol.md §8): the seqs stored and not yet
        # acknowledged to their node, per (node, boot), and when each node
        # was last acknowledged; which sources' transports carry acks.
        self._unacked: dict[tuple[str, int], list[int]] = {}
        self._acked_at: dict[str, float] = {}
        self._e2e_sources: dict[str, bool] = {}
        self._restore()

    # -- wiring -------------------------------------------------------------------
    def add_transport(self, t: Any) -> None:
        t.keys = self.keys  # (before start(): the decoders take it when they are made)
        self.transports.append(t)

    def sink(self, msg: dict, source: str, t_rx: float, ack: Callable[[], None] | None) -> None:
        """Called by the transports' threads; blocks only if the hub is
        QUEUE_MAX frames behind (back-pressure instead of loss)."""
        while (self._q.qsize() >= QUEUE_MAX and self._thread is not None  # full, and the
               and self._thread.is_alive() and not self._stop.is_set()):  # core running
            time.sleep(0.005)
        self._q.put((msg, source, t_rx, ack))

    def start(self) -> None:
        from becomingone.outputs import OutputContext
        from becomingone.rules.router import Router

        ctx = OutputContext(mqtt_publish=self._mqtt_publish(), send_command=self.send_command,
                            node_caps=self.nodes.caps, broadcast=self.broadcast,
                            sound_dir=self._sound_dir())
        self.router = Router.from_rules(self.cfg.rules, ctx)  # (checked by config.parse)
        for t in self.transports:
            t.start()
        self._thread = threading.Thread(target=self._loop, name="hub-core", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for t in self.transports:
            t.stop()
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        end = time.monotonic() + 5.0  # what the transports handed over, within reason
        while not self._q.empty() and time.monotonic() < end:
            try:
                self._drain()
            except Exception as e:  # noqa: BLE001 - the store is failing: leave them queued
                self.log("error", f"storing on stop failed: {e!r}")
                break
        if not self._q.empty():  # (MQTT redelivers these: they are not acknowledged)
            self.log("error", f"stopping with {self._q.qsize()} frames not processed")
        self.save()
        if self.router:
            self.router.close()
        self.store.close()

    def broadcast(self, msg: dict) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            fn(msg)

    def subscribe(self, fn: Callable[[dict], None]) -> None:
        """fn(msg) gets each tick's {"type": "state", "state": ...} and every
        broadcast, on the core thread: it must return at once."""
        with self._lock:
            if fn not in self._subscribers:
                self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[dict], None]) -> None:
        with self._lock:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

    @property
    def subscribers(self) -> list[Callable[[dict], None]]:
        """A copy of the subscribers (subscribe/unsubscribe change them)."""
        with self._lock:
            return list(self._subscribers)

    # -- for other threads: copies ------------------------------------------------
    @property
    def recent(self) -> list[dict]:
        """The last 200 events, oldest first (a new list; the events
        themselves are never changed once made)."""
        with self._lock:
            return [rec for _, rec in self._events]

    def events_after(self, seq: int) -> list[tuple[int, dict]]:
        """(seq, event) of the recent events numbered above seq, oldest first
        (seq 0: all; the numbers rise by one per event from 1)."""
        with self._lock:
            return [(s, rec) for s, rec in self._events if s > seq]

    def counts(self) -> dict[str, int]:
        """A copy of the counters: frames, stored, acked, ticks, store_retries."""
        return dict(self.counters)  # (fixed keys: copying never races a resize)

    def queue_depth(self) -> int:
        """Frames handed over by the transports and not yet processed."""
        return self._q.qsize()

    def alive(self) -> bool:
        """Whether the processing thread runs."""
        th = self._thread
        return th is not None and th.is_alive()

    # -- the processing thread ----------------------------------------------------
    def _loop(self) -> None:
        period = 1.0 / self.cfg["hub"]["tick_hz"]
        next_tick = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            try:
                self._drain(timeout)
            except Exception as e:  # noqa: BLE001 - e.g. the disk is full: not acked, go on
                self.log("error", f"a batch failed (its frames are not acknowledged): {e!r}")
            if time.monotonic() >= next_tick:
                try:
                    self.tick(self.clock())
                except Exception as e:  # noqa: BLE001 - a bad tick must not stop ingest
                    self.log.limited("tick", "error", f"tick failed: {e!r}")
                next_tick += period
                if time.monotonic() - next_tick > 1.0:
                    next_tick = time.monotonic()  # far behind: skip, don't burst

    def _drain(self, timeout: float = 0.0) -> None:
        """One batch: what is queued, and while frames keep coming (no gap
        over _GAP) up to _LINGER more, so a busy stream is stored in big
        transactions (their fixed cost dominates small ones) while a lone
        frame, or a broker that waits for PUBACKs, is not held back."""
        q = self._q
        try:
            batch = [q.get(timeout=timeout) if timeout else q.get_nowait()]
        except queue.Empty:
            return
        end = None
        while len(batch) < _BATCH:
            try:
                batch.append(q.get_nowait())
                continue
            except queue.Empty:
                pass
            if len(batch) == 1:
                break  # a lone frame: no stream to wait for
            now = time.monotonic()
            end = end or now + _LINGER
            if now >= end:
                break
            try:
                batch.append(q.get(timeout=min(_GAP, end - now)))
            except queue.Empty:
                break  # the stream paused
        self.process(batch)

    def _write(self, reports: list, events: list, dirty: dict) -> None:
        """Store a batch, retrying until it is in (a full disk, a locked
        file): its frames are already in the dedup, so a dropped batch would
        refuse their redelivery for good.  Meanwhile the queue fills and its
        back-pressure holds the senders; every write is idempotent."""
        delay = 0.05
        while True:
            try:
                if reports:
                    self.counters["stored"] += self.store.add_reports(reports)
                if events:
                    self.store.add_events(events)
                if dirty:  # hello metadata and boots, before the ack: a restart needs them
                    self.store.save_states({f"node/{n}": d for n, d in dirty.items()})
                return
            except Exception as e:  # noqa: BLE001 - anything the store raises: retry
                self.counters["store_retries"] += 1
                if self.counters["store_retries"] == 1 or delay >= 5.0:
                    self.log("error", f"storing a batch failed, retrying: {e!r}")
                if self._stop.wait(delay):
                    raise  # stopping: not acknowledged, so redelivered after a restart
                delay = min(delay * 2, 5.0)

    def process(self, batch: list[tuple[dict, str, float, Any]]) -> None:
        """Accept, timestamp, store, then acknowledge a batch of frames."""
        reports, events, acks, unsure, stored = [], [], [], [], []
        for msg, source, t_rx, ack in batch:
            self.counters["frames"] += 1
            if ack is not None:
                acks.append(ack)
            try:
                # The transports' decoders validated every frame (their contract).
                v = self.registry.judge(msg, source, t_rx, validated=True,
                                        stored=self._in_store)
                if v in ASK_HELLO:
                    unsure.append(msg["node"])
                elif v in STORED and self._acks_to(source):
                    stored.append(msg)  # (a duplicate too: the node missed our got)
                if v not in ACCEPTED:
                    continue
                self._one(msg, t_rx, reports, events)
            except Exception as e:  # noqa: BLE001 - one frame must not lose the batch
                # Not the frame's fault (it was validated): the hub's, counted apart.
                self.registry.reject(source, FAILED, msg.get("node"))
                self.log.limited("frame", "error",
                                 f"a {msg.get('t')} frame from {source} failed: {e!r}")
        self._write(reports, events, self.registry.take_dirty())
        for ack in acks:
            ack()
        self.counters["acked"] += len(acks)
        # Committed: now the nodes may let these frames go (after the store,
        # never before: a hub killed in between loses nothing a node dropped).
        for msg in stored:
            self._unacked.setdefault((msg["node"], msg["boot"]), []).append(msg["seq"])
        if self._unacked:
            self._send_gots(force=False)
        if unsure:
            self._ask_hello(unsure)

    def _acks_to(self, source: str) -> bool:
        """Whether frames from this source get end-to-end acks: its transport
        can carry them to the node (serial, MQTT, BLE; not the sim, not a
        hub-side input, not frames fed by hand)."""
        e2e = self._e2e_sources.get(source)
        if e2e is None:
            kind = source.split(":", 1)[0]
            e2e = any(t.kind == kind and getattr(t, "e2e", False) for t in self.transports)
            self._e2e_sources[source] = e2e
        return e2e

    def _send_gots(self, force: bool) -> None:
        """Tell each node which of its frames are stored: one `got` of seq
        ranges per (node, boot), at most every ACK_EVERY per node (force:
        all now, as each tick does).  A got that can't go (the node's link
        is down) is dropped: the node sends those frames again, and their
        duplicates are acknowledged then."""
        now = time.monotonic()
        for key in list(self._unacked):
            node, boot = key
            if not force and now - self._acked_at.get(node, -ACK_EVERY) < ACK_EVERY:
                continue
            ranges = seq_ranges(self._unacked.pop(key))
            self._acked_at[node] = now
            for i in range(0, len(ranges), ACK_RANGES):
                try:
                    self._send(node, "got", b=boot, s=ranges[i:i + ACK_RANGES])
                    self.counters["gots"] += 1
                except Exception:  # noqa: BLE001 - gone or unreachable now: it resends
                    self.counters["gots_failed"] += 1
                    break

    def _in_store(self, msg: dict) -> bool:
        """For the dedup, about a frame older than it remembers: is it stored?
        Reports and events are looked up; other frames are not stored, and
        an old one is taken for a repeat (an old hello must not win)."""
        if msg["t"] in ("report", "event"):
            return self.store.has_frame(msg["node"], msg["boot"], msg["seq"])
        return True

    def _ask_hello(self, nodes: list[str]) -> None:
        """A node sent frames of a boot the hub has no hello for, a seq too
        far ahead, or an old boot's: ask for its hello (at most once per
        HELLO_EVERY), which settles its boot and seq (docs/protocol.md §6).
        The frames refused meanwhile are not acknowledged: the node resends."""
        now = time.monotonic()
        for node in dict.fromkeys(nodes):
            if now - self._hello_asked.get(node, -HELLO_EVERY) < HELLO_EVERY:
                continue
            self._hello_asked[node] = now
            try:
                self.send_command(node, "hello", {})
            except Exception as e:  # noqa: BLE001 - gone, or its link is down: it says hello on return
                self.log("dedup", f"asking {node} for its hello failed: {e}")

    def _one(self, msg: dict, t_rx: float, reports: list, events: list) -> None:
        t, node = msg["t"], msg["node"]
        if t == "report":
            msg["t_hub"] = self.hub_time(node, msg["boot"], msg["tick"], t_rx)
            reports.append(msg)
            self._remember(self.nodes.on_report(msg))
        elif t == "event":
            msg["t_hub"] = self.hub_time(node, msg["boot"], msg["tick"], t_rx)
            events.append(msg)
            c = msg["c"] / 32768.0
            self.event("collapse", f"{node} channel {msg['i']} "
                       f"{'collapse' if msg['on'] else 'release'}", node=node, c=c)
            self.store.log("collapse", {"node": node, "ch": msg["i"], "on": msg["on"], "c": c},
                           msg["t_hub"])
            self._remember(self.nodes.on_event(msg))
        elif t == "pong":
            t0 = self._pings.pop((node, msg["id"]), None)
            if t0 is not None:
                # Ticks restart with a reboot: a new boot gets a new clock.
                cs = self.clocks.get(node)
                if cs is None or self._clock_boot.get(node) != msg["boot"]:
                    cs = self.clocks[node] = ClockSync()
                    self._clock_boot[node] = msg["boot"]
                cs.add(t0, msg["t1"], msg["t2"], t_rx)
        elif t == "hello":
            self.nodes.on_hello(msg)
            names = ", ".join(c["name"] for c in msg["ch"])
            self.event("hello", f"{node}: {msg['board']} fw {msg['fw']}, channels {names}",
                       node=node)
            self.store.log("hello", {k: msg[k] for k in ("node", "board", "fw", "boot")},
                           self.clock())
        elif t == "status":
            self.event("status", f"{node} {'online' if msg['online'] else 'offline'}", node=node)
        elif t == "ack":
            self.event("ack", f"{node} command {msg['id']} "
                       + ("ok" if msg["ok"] else "failed: " + msg["err"]), node=node,
                       id=msg["id"], ok=msg["ok"])

    def _remember(self, memories: list[Memory]) -> None:
        for m in memories:
            self.store.remember("collapse", m.signature, m.c, m.t)

    def hub_time(self, node: str, boot: int, tick: int, t_rx: float) -> float:
        """The hub time of a node tick; the arrival time until the node's
        current boot has answered a ping."""
        cs = self.clocks.get(node)
        if cs is None or not cs.synced or self._clock_boot.get(node) != boot:
            return t_rx
        return cs.to_hub(tick, t_rx)

    # -- the tick -------------------------------------------------------------------
    def tick(self, now: float) -> dict:
        self.counters["ticks"] += 1
        if self._unacked:
            self._send_gots(force=True)
        ms = self.mesh.update(self.nodes.views(now), now)
        self.mesh_state = ms
        if ms.event:
            self.event("emergence", f"THE_ONE {ms.event}", G=ms.G, R=ms.R,
                       participants=len(ms.participants))
            self.store.log("emergence", {"event": ms.event, "G": ms.G, "R": ms.R,
                                         "participants": ms.participants}, now)
            if ms.event == "entered":
                self.store.remember("emergence", self.nodes.signature(ms.participants), ms.G, now)
        ws = self.witness.update(ms.G, ms.R, ms.psi)
        self.witness_state = ws
        if ws.event:
            self.event("witness", "surprise", S=ws.S, avg=ws.S_avg)
        # The per-node part of the state costs ~15 ms a tick at 1,000 nodes:
        # built only when a rule or a web page will read it.
        with self._lock:
            watched = bool(self._subscribers)
        busy = watched or bool(self.router is not None and self.router.rules)
        state = self.state(now, with_nodes=busy)
        if self.router is not None:
            for rec in self.router.tick(state):
                self.event("output", f"rule {rec['rule']} -> {rec['action']}"
                           + ("" if rec["ok"] else f" failed: {rec['error']}"))
        self._periodic(now)
        if watched:
            self.broadcast({"type": "state", "state": state_summary(state)})
        return state

    def state(self, now: float, with_nodes: bool = True) -> dict:
        """STATE: the dict the rules and the API read (docs/rules.md), built
        from the last tick's mesh and witness and, with_nodes, every node's
        row (NodeStates.rows).  Any thread may call it, after the first tick."""
        ms, ws = self.mesh_state, self.witness_state
        if ms is None:
            raise HubError("no tick yet: the hub has no STATE before its first tick")
        return {"t": now, "G": ms.G, "R": ms.R, "psi": ms.psi, "emerged": ms.emerged,
                "since": ms.since, "participants": list(ms.participants),
                "surprise": ws.S if ws else 0.0, "witness_event": bool(ws and ws.event),
                "nodes": self.nodes.rows(now) if with_nodes else {}}

    def _periodic(self, now: float) -> None:
        h = self.cfg["hub"]
        if now >= self._next["ping"]:
            self._next["ping"] = now + h["ping_interval"]
            self.ping_all(now)
        if now >= self._next["save"]:
            self._next["save"] = now + h["save_interval"]
            self.save()
        if now >= self._next["decay"]:
            self._next["decay"] = now + 60.0
            pruned = self.store.decay(now)
            if pruned:
                self.event("memory", f"{pruned} memories faded below the threshold")
        if now >= self._next["rejects"]:
            self._next["rejects"] = now + REJECT_EVERY
            self._note_rejects()
        if now >= self._next["compact"]:
            self._next["compact"] = now + h["compact_interval"]
            self.store.compact(now)

    def _note_rejects(self) -> None:
        """New rejects since the last look, one event per (source, reason):
        garbage at any rate adds at most one entry per key per REJECT_EVERY."""
        now = self.registry.reject_totals()
        for (src, reason), n in sorted(now.items()):
            new = n - self._rejects_seen.get((src, reason), 0)
            if new > 0:
                self.event("reject", f"{new} {reason} frame{'s' * (new > 1)} from {src}",
                           source=src, reason=reason, n=new)
        self._rejects_seen = now

    def event(self, kind: str, text: str, **fields: Any) -> None:
        """Log an event and keep it for the web page (any thread)."""
        self.log(kind, text, **fields)
        rec = {"t": self.clock(), "kind": kind, "text": text}
        rec.update({k: v for k, v in fields.items() if isinstance(v, int | float | str)})
        with self._lock:
            self._event_seq += 1
            self._events.append((self._event_seq, rec))

    # -- towards the nodes ------------------------------------------------------------
    def _frame(self, node: str, t: str, **fields: Any) -> dict:
        return dict({"t": t, "node": node, "boot": self._boot, "seq": next(self._seq) & _M30,
                     "tick": int(self.clock() * 1000) & _M30}, **fields)

    def _transport_for(self, node: str) -> Any:
        source = self.registry.source(node)
        if source is None:
            raise HubError(f"unknown node {node!r}")
        kind = source.split(":", 1)[0]
        for t in self.transports:
            if t.kind == kind:
                return t
        raise HubError(f"node {node!r} came over {kind}, which is not running")

    def _send(self, node: str, t: str, **fields: Any) -> dict:
        """Number a frame and send it under one lock: nodes drop a frame whose
        seq is not above the last one they took (a replay), so two threads
        (web commands, the core's pings) must not send out of their order."""
        with self._send_lock:
            transport = self._transport_for(node)
            msg = self._frame(node, t, **fields)
            bad = wire.validate(msg)
            if bad:
                what = f"command {fields['op']!r}" if t == "cmd" else t
                raise HubError(f"{what} to {node}: {bad} frame (check the arguments)")
            transport.send(msg)
        return msg

    def send_command(self, node: str, op: str, args: dict) -> int:
        cid = next(self._cid) & 0xFFFF
        self._send(node, "cmd", id=cid, op=op, args=args)
        return cid

    def ping_all(self, now: float) -> None:
        for node in self.registry.live(now):
            if node.startswith("input-") and self.registry.source(node) == "input":
                continue  # a hub-side input: its ticks are the hub's own clock
            pid = next(self._cid) & 0xFFFF
            t0 = self.clock()
            try:
                self._send(node, "ping", id=pid, t0=int(t0 * 1000) & _M30)
                self._pings[(node, pid)] = t0
            except Exception as e:  # noqa: BLE001 - a node that can't be pinged now
                # Once a minute, however many nodes fail how often (the rest counted).
                self.log.limited("ping", "clock", f"ping {node} failed: {e}")
        if len(self._pings) > 10000:  # unanswered pings: keep the newest
            for key in list(self._pings)[:-5000]:
                del self._pings[key]

    # -- persistence ----------------------------------------------------------------------
    def save(self) -> None:
        """The saved state (mesh, witness, clock syncs, Master tiers, nodes),
        in one transaction: state only; the settings are the config's."""
        st = {"mesh": self.mesh.to_dict(), "witness": self.witness.to_dict()}
        for node, cs in list(self.clocks.items()):
            d = cs.to_dict()
            d["boot"] = self._clock_boot.get(node)
            st[f"clock/{node}"] = d
        st.update(self.nodes.saved())
        st.update({f"node/{n}": d for n, d in self.registry.take_dirty().items()})
        self.store.save_states(st)

    def _mesh_settings(self) -> dict[str, float]:
        ms = self.cfg["mesh"]
        return {k: float(ms[k]) for k in ("enter", "leave", "dwell", "stale_periods")}

    def _witness_settings(self) -> dict[str, Any]:
        w = self.cfg["witness"]
        return {"beta": float(w["beta"]), "k": float(w["k"]), "refractory": w["refractory"]}

    def _restore(self) -> None:
        """The saved state, run under this start's settings."""
        st = self.store.all_state()
        if "mesh" in st:
            self.mesh = Mesh.from_dict(st["mesh"], **self._mesh_settings())
        if "witness" in st:
            self.witness = Witness.from_dict(st["witness"], **self._witness_settings())
        nodes, masters = {}, {}
        for key, d in st.items():
            parts = key.split("/")
            if parts[0] == "clock" and len(parts) == 2:
                self._clock_boot[parts[1]] = d.pop("boot", None)
                self.clocks[parts[1]] = ClockSync.from_dict(d)
            elif parts[0] == "master" and len(parts) == 3:
                masters[(parts[1], int(parts[2]))] = d
            elif parts[0] == "node" and len(parts) == 2:
                nodes[parts[1]] = d
        for line in self.nodes.restore(masters):
            self.log("hub", f"saved state not resumed (starts afresh): {line}")
        for name in self.store.nodes():  # (a store from before node/<id> was saved)
            nodes.setdefault(name, {})
        for line in self.registry.restore(nodes, self.store.recent_seqs):
            self.log("error", f"node state not restored: {line}")
        if nodes:
            self.log("hub", f"restored {len(nodes)} nodes (hello metadata, boots, dedup)")

    def _mqtt_publish(self) -> Callable | None:
        """The MQTT transport's publish; None when MQTT is off or Disabled
        (paho missing): the MQTT output then reports itself unavailable."""
        for t in self.transports:
            if t.kind == "mqtt" and callable(getattr(t, "publish", None)):
                return t.publish
        return None

    def _sound_dir(self):
        from pathlib import Path
        return Path(self.cfg["hub"]["sound_dir"])


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """Sorted [lo, hi] ranges covering seqs (any order, repeats allowed)."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def state_summary(state: dict) -> dict:
    """STATE made JSON-ready (Psi as re/im), as the WebSocket feed sends it."""
    psi = state["psi"]
    out = {k: v for k, v in state.items() if k != "psi"}
    out["psi"] = {"re": psi.real, "im": psi.imag}
    return out
