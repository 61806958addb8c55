"""One line per event: human-readable by default, JSON lines with --json-logs.

    log = Log(json_lines=False)
    log("emergence", "entered", G=0.78, participants=12)
    -> 2026-11-22 22:40:01 emergence: entered G=0.78 participants=12

A failure that repeats (a node that cannot be pinged, a frame the hub fails
on, a callback that raises) goes through log.limited(key, ...): one line
per key per LIMIT_EVERY seconds, the repeats in between counted and said by
the next line that gets out ("(+41 more like it since 12:00:01)").  However
fast the failures come, the log grows by a line a minute per key.  Limiter
is the same rule for the transports, whose log is a plain callable.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

LIMIT_EVERY = 60.0  # s: one line per key of a repeated failure, at most
MAX_KEYS = 1024  # keys a Limiter remembers (more: it forgets them all and starts over)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, complex):
        return f"{v.real:.3g}{v.imag:+.3g}j"
    return str(v)


class Limiter:
    """At most one pass per key per ``every`` seconds (thread-safe).

    ``allow(key)`` is None while the key is held back (the call is counted),
    else the suffix to add to the line: "" or " (+N more like it since T)".
    """

    def __init__(self, every: float = LIMIT_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.held = 0  # lines held back so far, all keys
        # key -> [next pass allowed (clock), repeats held, wall time of the first held]
        self._keys: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> str | None:
        now = self.clock()
        with self._lock:
            k = self._keys.get(key)
            if k is not None and now < k[0]:
                if not k[1]:
                    k[2] = time.time()
                k[1] += 1
                self.held += 1
                return None
            if len(self._keys) >= MAX_KEYS and k is None:
                self._keys.clear()  # (a flood of keys: bounded memory, a few extra lines)
            self._keys[key] = [now + self.every, 0, 0.0]
        if k is None or not k[1]:
            return ""
        since = time.strftime("%H:%M:%S", time.localtime(k[2]))
        return f" (+{int(k[1])} more like it since {since})"


class Log:
    def __init__(self, json_lines: bool = False, stream: TextIO | None = None,
                 quiet: tuple[str, ...] = (), limit_every: float = LIMIT_EVERY) -> None:
        self.json_lines = json_lines
        self.stream = stream or sys.stderr
        self.quiet = set(quiet)  # kinds not printed (still counted)
        self.counts: dict[str, int] = {}
        self.limiter = Limiter(limit_every)
        self._lock = threading.Lock()

    def limited(self, key: str, kind: str, text: str = "", **fields: Any) -> None:
        """As a call, for a failure that may repeat: one line per key per
        limit_every seconds (the first one at once); the repeats held back
        are counted in counts[kind] all the same, and told by the next line."""
        more = self.limiter.allow(key)
        if more is None:
            with self._lock:
                self.counts[kind] = self.counts.get(kind, 0) + 1
            return
        self(kind, text + more, **fields)

    def __call__(self, kind: str, text: str = "", **fields: Any) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind in self.quiet:
                return
            now = time.time()
            if self.json_lines:
                rec = {"t": round(now, 3), "kind": kind, "msg": text}
                rec.update({k: (str(v) if isinstance(v, complex) else v)
                            for k, v in fields.items()})
                line = json.dumps(rec, default=str)
            else:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
                extra = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
                line = f"{stamp} {kind}: {text} {extra}".rstrip()
            print(line, file=self.stream, flush=True)

    def line(self, text: str) -> None:
        """For transports' log(str) callback: one plain message."""
        self("transport", text)
