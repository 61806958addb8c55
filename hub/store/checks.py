"""Input validation for the hub's store (:mod:`becomingone.store`): reports, events and
BLEND signatures.

``StoreError`` is the root of the store's exceptions (re-exported by
:mod:`becomingone.store`, where callers import it).  ``Bad`` is internal: the report
and event checks raise it with a message, and the store counts the input as
rejected instead of failing the whole batch.
"""

from __future__ import annotations

import math
import sys
from array import array
from typing import Any

from becomingone.errors import BecomingOneError

REPORT_INTS = ("boot", "seq", "tick", "n", "drop", "miss")
EVENT_INTS = ("boot", "seq", "tick", "i", "on", "c", "n")
M30 = 0x3FFFFFFF

Signature = dict[str, tuple[float, float, float, float]]


class StoreError(BecomingOneError):
    """Anything that goes wrong in the store: bad input, bad file, SQLite errors."""


class Bad(Exception):
    """One bad report or event (the message says why); skipped and counted."""


def finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def head(r: Any, ints: tuple[str, ...], what: str) -> tuple[str, list[int], float]:
    """Checks the fields common to reports and events: node, the ints, t_hub."""
    if not isinstance(r, dict):
        raise Bad(f"{what} must be a dict, got {type(r).__name__}")
    try:
        node = r["node"]
        vals = [r[f] for f in ints]
        t_hub = r["t_hub"]
    except KeyError as e:
        raise Bad(f"{what} from {r.get('node')!r}: missing field {e.args[0]!r}") from None
    if (
        type(node) is str and node and r.get("t", what) == what
        and all(type(v) is int and 0 <= v <= M30 for v in vals)
        and (type(t_hub) is float or type(t_hub) is int) and 0 <= t_hub < math.inf
    ):
        return node, vals, float(t_hub)
    t = r.get("t", what)
    if t != what:
        raise Bad(f"{what}: 't' is {t!r}, expected {what!r}")
    if type(node) is not str or not node:
        raise Bad(f"{what}: 'node' must be a non-empty str, got {node!r}")
    for f, v in zip(ints, vals, strict=True):
        if type(v) is not int or not 0 <= v <= M30:
            raise Bad(f"{what} from {node!r}: {f!r} must be an int in 0..2**30-1, got {v!r}")
    if not finite(t_hub) or t_hub < 0:
        raise Bad(f"{what} from {node!r}: 't_hub' must be a finite number >= 0, got {t_hub!r}")
    return node, vals, float(t_hub)


def channels(node: str, chs: Any) -> list:
    """The report's channel rows, checked; raises Bad naming the first bad one."""
    if type(chs) is not list and type(chs) is not tuple or len(chs) > 8:
        raise Bad(f"report from {node!r}: 'ch' must be a list of at most 8 rows, got {chs!r}")
    for row in chs:
        # one fast test per row; the code below only runs to word the error
        if (type(row) is list or type(row) is tuple) and len(row) == 7:
            mean, e, k, c, t_re, t_im, coll = row
            if (
                type(mean) is int and type(e) is int and type(k) is int and type(c) is int
                and type(t_re) is int and type(t_im) is int and type(coll) is int
                and -16384 <= mean <= 16384 and 0 <= e <= M30 and 0 <= k <= 7
                and 0 <= c <= 32767 and -M30 <= t_re <= M30 and -M30 <= t_im <= M30
                and 0 <= coll <= 1
            ):
                continue
        i = list(chs).index(row)
        if type(row) not in (list, tuple) or len(row) != 7 or any(type(v) is not int for v in row):
            raise Bad(f"report from {node!r}: ch[{i}] must be 7 ints, got {row!r}")
        raise Bad(
            f"report from {node!r}: ch[{i}] out of range (mean -16384..16384, e >= 0,"
            f" k 0..7, c 0..32767, coll 0/1): {row!r}"
        )
    return chs


def coh_blobs(node: str, coh: Any, n: int) -> list:
    """The report's per-lag spectra (wire field coh) as one blob per channel
    (u16 little-endian per lag); [None] * n when the report has none.  Raises
    Bad for spectra that are not one list of 1..8 ints 0..32767 per row."""
    if coh is None:
        return [None] * n
    out = []
    if (type(coh) is list or type(coh) is tuple) and len(coh) == n:
        for spec in coh:
            try:
                a = array("H", spec)
            except (TypeError, OverflowError, ValueError):
                break
            if not 1 <= len(a) <= 8 or max(a) > 32767 or any(type(v) is not int for v in spec):
                break
            if sys.byteorder != "little":
                a.byteswap()
            out.append(a.tobytes())
        else:
            return out
    raise Bad(f"report from {node!r}: 'coh' must be one list of 1..8 ints 0..32767 per"
              f" channel row ({n}), got {coh!r}")


def coh_list(blob: bytes) -> list[int]:
    """A stored spectrum blob back to its Q15 ints."""
    a = array("H", blob)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tolist()


def fast_report(r: Any) -> tuple | None:
    """The hot path of add_reports: (node, boot, seq, t_hub, tail, chs) of a valid
    report, else None (then slow_report words the error).  It repeats head()'s
    test inline because that is most of the per-report cost."""
    try:
        node, boot, seq, tick, n, drop, miss, t_hub, chs = (
            r["node"], r["boot"], r["seq"], r["tick"], r["n"], r["drop"], r["miss"],
            r["t_hub"], r["ch"],
        )
        if not (
            type(node) is str and node and type(boot) is int and type(seq) is int
            and type(tick) is int and type(n) is int and type(drop) is int and type(miss) is int
            and 0 <= boot <= M30 and 0 <= seq <= M30 and 0 <= tick <= M30
            and 0 <= n <= M30 and 0 <= drop <= M30 and 0 <= miss <= M30
            and (type(t_hub) is float or type(t_hub) is int) and 0 <= t_hub < math.inf
            and r.get("t", "report") == "report"
        ):
            return None
        channels(node, chs)
    except (KeyError, TypeError, AttributeError, Bad):
        return None
    return node, boot, seq, float(t_hub), (tick, n, drop, miss), chs


def slow_report(r: Any) -> tuple:
    """As fast_report, but raises Bad with a message (and accepts numpy floats)."""
    node, (boot, seq, tick, n, drop, miss), t_hub = head(r, REPORT_INTS, "report")
    if "ch" not in r:
        raise Bad(f"report from {node!r}: missing field 'ch'")
    return node, boot, seq, t_hub, (tick, n, drop, miss), channels(node, r["ch"])


def check_event(ev: Any) -> tuple[str, list[int], float]:
    """(node, [boot, seq, tick, i, on, c, n], t_hub) of a valid event; raises Bad."""
    node, vals, t_hub = head(ev, EVENT_INTS, "event")
    _, _, _, i, on, c, _ = vals
    if i > 7 or on > 1 or c > 32767:
        raise Bad(f"event from {node!r}: need i <= 7, on in 0/1, c <= 32767")
    return node, vals, t_hub


def check_signature(sig: Any) -> Signature:
    """A BLEND signature {node: (c, tau, re, im)} as floats; raises StoreError."""
    if not isinstance(sig, dict) or not sig:
        raise StoreError("signature must be a non-empty dict node -> (c, tau, re, im)")
    out: Signature = {}
    for node, v in sig.items():
        if not isinstance(node, str) or not node:
            raise StoreError(f"signature node ids must be non-empty str, got {node!r}")
        try:
            c, tau, re, im = v
        except (TypeError, ValueError):
            raise StoreError(f"signature[{node!r}] must be (c, tau, re, im), got {v!r}") from None
        if not all(finite(x) for x in (c, tau, re, im)):
            raise StoreError(f"signature[{node!r}] must hold finite numbers, got {v!r}")
        if not 0.0 <= c <= 1.0 or tau < 0:
            raise StoreError(f"signature[{node!r}]: need 0 <= c <= 1 and tau >= 0, got {v!r}")
        out[node] = (float(c), float(tau), float(re), float(im))
    return out
