"""One line per event: human-readable by default, JSON lines with --json-logs.

    log = Log(json_lines=False)
    log("emergence", "entered", G=0.78, participants=12)
    -> 2026-11-22 22:40:01 emergence: entered G=0.78 participants=12
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, complex):
        return f"{v.real:.3g}{v.imag:+.3g}j"
    return str(v)


class Log:
    def __init__(self, json_lines: bool = False, stream: TextIO | None = None,
                 quiet: tuple[str, ...] = ()) -> None:
        self.json_lines = json_lines
        self.stream = stream or sys.stderr
        self.quiet = set(quiet)  # kinds not printed (still counted)
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

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
