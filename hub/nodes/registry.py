"""What the hub knows about each node, from the frames its transports deliver.

One wire.Dedup for all nodes decides whether a frame is new: duplicates
(e.g. a QoS 1 redelivery, a retained hello) and replays (an older boot)
are refused and counted per node, skipped sequence numbers are counted as
gaps.  A hello stores the node's metadata (and so its report period), a
report its own drop count, a status (MQTT's retained online / last will)
the online flag.  Thread-safe: transports call in from their threads, the
web reads from its own; ``nodes`` is the registry's own (read it under its
lock), everyone else reads through the accessors below, which return copies.
A node's hello dict is replaced by the next hello, never changed in place,
so a copy may share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kairos import wire
from kairos.dedup import LATE, NEW, OLD

HELLO_KEYS = ("board", "fw", "period", "every", "weight", "caps", "ch")
# Nodes heard from (a valid, new frame) but not yet by their hello: at most
# this many at once; frames of one more such node are held out (UNANNOUNCED,
# counted per source) and it is not created, so a flood of made-up names
# cannot grow the registry.  Its hello still gets it in.
MAX_UNANNOUNCED = 256
UNKNOWN = "unknown"  # reject reason: a status (online / last will) of a node never heard
# Verdict and reject reason: a frame of one node too many awaiting its hello
# (not a NOHELLO: the hub has no route to such a node to ask it for one).
UNANNOUNCED = "unannounced"
MAX_BOOTS = 4  # previous boot ids remembered per node (as wire.Dedup does)
# judge() verdicts beyond kairos.dedup's (NEW, LATE, DUPLICATE, REPLAY,
# NOHELLO, AHEAD; its OLD is resolved here).
INVALID, STATUS, SAME = "invalid", "status", "same"
ACCEPTED = (NEW, LATE, STATUS)  # what accept() calls new
REFUSED = (wire.DUPLICATE, wire.REPLAY, wire.NOHELLO, wire.AHEAD)  # counted per node, by verdict


@dataclass
class NodeInfo:
    node: str
    source: str = ""  # where it was last heard ("serial:/dev/ttyACM0", "mqtt", ...)
    boot: int | None = None
    hello: dict | None = None  # board, fw, period (ms), every, weight, caps, ch
    last_seen: float | None = None  # time.time() of the last new frame or status
    online: bool = True
    frames: dict[str, int] = field(default_factory=dict)  # new frames by type
    rejects: dict[str, int] = field(default_factory=dict)  # by wire reason
    gaps: int = 0  # sequence numbers skipped and not (yet) received late
    late: int = 0  # frames that came after a later seq (e.g. resent after a reconnect)
    duplicates: int = 0
    replays: int = 0
    drops: int = 0  # the node's own count of frames its spool dropped
    reboots: int = 0
    boots: list[int] = field(default_factory=list)  # its previous boot ids, oldest first
    hello_seq: int | None = None  # seq of the hello of the current boot

    @property
    def report_period(self) -> float:
        """Seconds between reports: period/1000 * every (1.0 before a hello)."""
        if not self.hello:
            return 1.0
        return self.hello["period"] / 1000.0 * self.hello["every"]

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "node": self.node, "source": self.source, "boot": self.boot,
            "hello": self.hello, "last_seen": self.last_seen,
            "age": None if self.last_seen is None else now - self.last_seen,
            "online": self.online, "frames": dict(self.frames), "rejects": dict(self.rejects),
            "gaps": self.gaps, "late": self.late, "duplicates": self.duplicates,
            "replays": self.replays,
            "drops": self.drops, "reboots": self.reboots, "report_period": self.report_period,
        }


class Presence(NamedTuple):
    """One node as the registry knew it at a moment (a copy: safe to keep)."""

    hello: dict | None
    source: str
    online: bool
    last_seen: float | None
    report_period: float
    stale: bool


def _bump(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


class Registry:
    def __init__(self, stale_periods: float = 3.0,
                 max_unannounced: int = MAX_UNANNOUNCED) -> None:
        self.stale_periods = stale_periods
        self.max_unannounced = max_unannounced
        self.unannounced: set[str] = set()  # created this run by a frame other than a hello
        self.nodes: dict[str, NodeInfo] = {}
        self.rejects: dict[str, dict[str, int]] = {}  # source -> reason -> n
        self.dedup = wire.Dedup()
        self.dirty: set[str] = set()  # nodes whose persisted part changed (take_dirty)
        self._lock = threading.RLock()

    def _node(self, node: str, source: str) -> NodeInfo:
        info = self.nodes.get(node)
        if info is None:
            info = self.nodes[node] = NodeInfo(node, source)
        return info

    def accept(self, msg: dict, source: str, t_rx: float, validated: bool = False,
               stored: Callable[[dict], bool] | None = None) -> bool:
        """True when msg is new (store it, act on it); False for a duplicate,
        a replay, a frame of an unannounced boot or too far ahead, an invalid
        message, or a status that changes nothing.  See judge()."""
        return self.judge(msg, source, t_rx, validated, stored) in ACCEPTED

    def judge(self, msg: dict, source: str, t_rx: float, validated: bool = False,
              stored: Callable[[dict], bool] | None = None) -> str:
        """The verdict on one frame: NEW or LATE (new: store it, act on it),
        DUPLICATE (seen: not again, but the node may be told it is stored),
        REPLAY, NOHELLO, AHEAD, INVALID (refused), STATUS or SAME (a status
        that changed the online flag, or not).  The rules: kairos.dedup and
        docs/protocol.md §6.  stored(msg) says whether a frame older than
        what the dedup remembers is in the store (without it such a frame is
        a replay).  validated=True skips the schema check for frames a
        decoder (or the hub's own sim) already checked: it is most of the
        cost of a frame."""
        with self._lock:
            if isinstance(msg, dict) and msg.get("t") == "status":
                return STATUS if self._status(msg, source, t_rx) else SAME
            reason = None if validated else wire.validate(msg)
            if reason is not None:
                node = msg.get("node") if isinstance(msg, dict) else None
                self.reject(source, reason, node if isinstance(node, str) else None)
                return INVALID
            created = msg["node"] not in self.nodes
            if created and msg["t"] != "hello" and len(self.unannounced) >= self.max_unannounced:
                _bump(self.rejects.setdefault(source, {}), UNANNOUNCED)
                return UNANNOUNCED  # one node too many awaiting its hello: not created
            info = self._node(msg["node"], source)
            counts = self.dedup.counts  # (read key by key: this is the per-frame path)
            gap0 = counts.get(wire.GAP, 0)
            v = self.dedup.judge(msg, stored)
            if v == OLD:  # too old to tell and nobody to ask: assume a replay
                _bump(counts, wire.REPLAY)
                v = wire.REPLAY
            gap = counts.get(wire.GAP, 0) - gap0
            late = 1 if v == LATE else 0
            if gap or late:
                # A late frame fills a gap counted when the seqs jumped over
                # it: gaps are the seqs still missing.
                info.late += late
                info.gaps = max(0, info.gaps + gap - late)
            if v not in ACCEPTED and created:
                # Only a frame taken makes a node: this one is counted, not kept.
                del self.nodes[info.node]
                _bump(self.rejects.setdefault(source, {}), v)
                return v
            if created and msg["t"] != "hello":
                self.unannounced.add(info.node)
            if v not in ACCEPTED:
                if v == wire.REPLAY:
                    info.replays += 1
                elif v == wire.DUPLICATE:
                    info.duplicates += 1
                _bump(info.rejects, v)
                return v
            if msg["boot"] != info.boot or source != info.source:
                self.dirty.add(info.node)
            if info.boot is not None and msg["boot"] != info.boot:
                info.reboots += 1
                info.boots = (info.boots + [info.boot])[-MAX_BOOTS:]
                info.hello_seq = None
            info.boot = msg["boot"]
            info.source = source
            info.last_seen = t_rx
            info.online = True  # it just spoke
            _bump(info.frames, msg["t"])
            if msg["t"] == "hello":
                self.unannounced.discard(info.node)
                # The newest hello of the boot describes it (a late one, sent
                # before a later hello, would not).
                if info.hello_seq is None or msg["seq"] > info.hello_seq:
                    info.hello = {k: msg[k] for k in HELLO_KEYS}
                    info.hello_seq = msg["seq"]
                    self.dirty.add(info.node)
            elif msg["t"] == "report":
                info.drops = msg["drop"]
            return v

    # -- persistence: what a restarted hub must know --------------------------
    def take_dirty(self) -> dict[str, dict[str, Any]]:
        """The persisted part of each node changed since the last call
        (hello metadata, boot ids, source), for the store's state table."""
        with self._lock:
            out = {n: self.persisted(n) for n in self.dirty if n in self.nodes}
            self.dirty.clear()
            return out

    def persisted(self, node: str) -> dict[str, Any]:
        i = self.nodes[node]
        return {"source": i.source, "boot": i.boot, "boots": list(i.boots),
                "hello": i.hello, "hello_seq": i.hello_seq}

    def restore(self, saved: dict[str, dict[str, Any]],
                stored_seqs: Callable[[str], tuple[int, list[int]] | None]) -> list[str]:
        """Nodes as a previous run left them: hello metadata (an MQTT node on
        a resumed session does not say hello again), boot ids, and the dedup
        state seeded from the store, so a frame stored before the restart is
        a duplicate (or a replay) after it, not a new frame.  The nodes are
        stale until they speak.  stored_seqs(node) gives (boot, seqs) of the
        node's newest stored boot, the seqs its last window.  Returns what
        could not be restored (one line each); the rest still is."""
        bad = []
        odd = [n for n in saved if not wire.node_ok(n)]  # (a store from before the one rule)
        if odd:
            shown = ", ".join(repr(n[:40]) for n in odd[:3]) + (", ..." if len(odd) > 3 else "")
            bad.append(f"{len(odd)} saved names are not node ids, not restored: {shown}")
        with self._lock:
            for node, d in saved.items():
                if not wire.node_ok(node):
                    continue
                try:
                    self._restore_one(node, d, stored_seqs(node))
                except (KeyError, TypeError, ValueError) as e:
                    self.nodes.pop(node, None)
                    bad.append(f"{node}: {e!r}")
            self.dedup.counts.clear()  # seeding counted gaps that are no news
        return bad

    def _restore_one(self, node: str, d: dict[str, Any],
                     stored: tuple[int, list[int]] | None) -> None:
        hello = d.get("hello")
        if hello is not None:
            probe = dict(hello, t="hello", node=node, boot=0, seq=0, tick=0)
            if wire.validate(probe) is not None:
                raise ValueError(f"saved hello is {wire.validate(probe)}")
        boot, boots = d.get("boot"), [int(b) for b in d.get("boots", [])]
        seqs = []
        if stored is not None and stored[0] != boot:  # a newer boot reached the store
            boots, boot = (boots + [boot] if boot is not None else boots)[-MAX_BOOTS:], stored[0]
        if stored is not None:
            seqs = list(stored[1])
        if boot is not None and d.get("hello_seq") is not None and d.get("boot") == boot:
            # Its hello too, unless it is older than the store's window: the
            # lowest seq seeded is the dedup's floor (below it, the store is
            # asked), and the seqs between an old hello and the window are
            # not known to be missing.
            hs = int(d["hello_seq"])
            if not seqs or hs >= min(seqs):
                seqs.append(hs)
        info = NodeInfo(node, str(d.get("source", "")), boot=boot, hello=hello,
                        boots=boots[-MAX_BOOTS:], hello_seq=d.get("hello_seq"))
        # The previous boots' frames are replays; below the lowest seq seeded
        # the dedup asks the store (judge's stored), so a frame stored before
        # the restart is a duplicate after it, however old.
        self.dedup.seed(node, boot, seqs, info.boots)
        self.nodes[node] = info

    def _status(self, msg: dict, source: str, t_rx: float) -> bool:
        node, online = msg.get("node"), msg.get("online")
        if not isinstance(node, str) or not isinstance(online, bool):
            self.reject(source, wire.MALFORMED, node if isinstance(node, str) else None)
            return False
        info = self.nodes.get(node)
        if info is None:
            # A status makes no node: anyone may publish one, under any
            # name (the hello that follows an "online" makes the node).
            _bump(self.rejects.setdefault(source, {}), UNKNOWN)
            return False
        changed = info.online != online
        info.online = online
        if online:
            info.last_seen = t_rx
        return changed

    def reject(self, source: str, reason: str, node: str | None = None) -> None:
        """A frame refused upstream (decoder, topic check): count it."""
        with self._lock:
            _bump(self.rejects.setdefault(source, {}), reason)
            info = self.nodes.get(node) if node is not None else None
            if info is not None:
                _bump(info.rejects, reason)

    def reject_totals(self) -> dict[tuple[str, str], int]:
        """(source, reason) -> frames refused so far; the dedup's refusals
        (duplicates, replays, unannounced boots, too far ahead: counted per
        node) under the source "dedup"."""
        with self._lock:
            out = {(src, r): n for src, rs in self.rejects.items() for r, n in rs.items()}
            for info in self.nodes.values():
                for r in REFUSED:
                    if info.rejects.get(r):
                        out[("dedup", r)] = out.get(("dedup", r), 0) + info.rejects[r]
            return out

    def _is_stale(self, info: NodeInfo, now: float) -> bool:
        if not info.online or info.last_seen is None:
            return True
        return now - info.last_seen > self.stale_periods * info.report_period

    # -- reading (any thread): copies ------------------------------------------
    def known(self, node: str) -> bool:
        with self._lock:
            return node in self.nodes

    def count(self) -> int:
        with self._lock:
            return len(self.nodes)

    def hello(self, node: str) -> dict | None:
        """The node's hello metadata (board, fw, period, every, weight, caps, ch)."""
        with self._lock:
            info = self.nodes.get(node)
            return info.hello if info is not None else None

    def source(self, node: str) -> str | None:
        """Where the node was last heard ("mqtt", "serial:/dev/ttyACM0", ...)."""
        with self._lock:
            info = self.nodes.get(node)
            return info.source if info is not None else None

    def presence(self, now: float) -> dict[str, Presence]:
        """Every node's hello, source, liveness and staleness, in one look."""
        with self._lock:
            return {n: Presence(i.hello, i.source, i.online, i.last_seen, i.report_period,
                                self._is_stale(i, now)) for n, i in self.nodes.items()}

    def node_json(self, node: str, now: float) -> dict[str, Any] | None:
        """NodeInfo.to_json of one node with its staleness, or None."""
        with self._lock:
            info = self.nodes.get(node)
            if info is None:
                return None
            return dict(info.to_json(now), stale=self._is_stale(info, now))

    def live(self, now: float) -> list[str]:
        with self._lock:
            return sorted(n for n, i in self.nodes.items() if not self._is_stale(i, now))

    def stale(self, now: float) -> list[str]:
        """Nodes silent for more than stale_periods report periods, or offline."""
        with self._lock:
            return sorted(n for n, i in self.nodes.items() if self._is_stale(i, now))

    def snapshot(self, now: float) -> dict[str, Any]:
        with self._lock:
            return {
                "t": now,
                "nodes": {n: dict(i.to_json(now), stale=self._is_stale(i, now))
                          for n, i in sorted(self.nodes.items())},
                "live": self.live(now),
                "stale": self.stale(now),
                "rejects": {s: dict(r) for s, r in self.rejects.items()},
                "dedup": dict(self.dedup.counts),
            }
