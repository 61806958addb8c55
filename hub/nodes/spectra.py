"""The per-lag coherence spectrum over time, per node channel, in memory.

Every report carries each channel's spectrum (wire field ``coh``: the Q15
coherence of each of its lags).  ``Spectra`` keeps, per (node, channel), the
last ``span`` seconds averaged into ``bucket``-second columns, in
preallocated arrays: with the defaults (10 minutes of 5-second columns) a
4-lag channel costs about 2.7 kB however often it reports (measured by
tests/hub/test_spectrum.py), so 1,000 nodes
stay at a few MB.  The core thread adds, the web thread reads (a lock).
A channel whose lags change (a new hello, or a spectrum of another length)
starts a new history.
"""
from __future__ import annotations

import threading
from array import array

SPAN = 600.0  # s of history kept
BUCKET = 5.0  # s per column


def _mean(total: int, n: int) -> int:
    """A bucket's mean Q15, rounded half up: the one rounding every column uses."""
    return (total + n // 2) // n


def columns_from_rows(rows: list[tuple[float, list[int]]], bucket: float,
                      K: int) -> list[tuple[float, list[int]]]:
    """Stored (t, spectrum) rows as the same bucket means the live history
    makes (for the minutes before a restart): (bucket start, Q15 per lag)."""
    sums: dict[int, list[int]] = {}
    for t, spec in rows:
        if len(spec) == K:
            acc = sums.setdefault(int(t // bucket), [0] * (K + 1))
            for j, v in enumerate(spec):
                acc[j] += v
            acc[K] += 1
    return [(b * bucket, [_mean(v, acc[K]) for v in acc[:K]]) for b, acc in sorted(sums.items())]


class _Hist:
    __slots__ = ("lags", "K", "cols", "b", "c", "w", "cur", "cur_b", "cur_n")

    def __init__(self, lags: tuple[int, ...], K: int, cols: int) -> None:
        self.lags, self.K, self.cols = lags, K, cols
        self.b = array("q", bytes(8 * cols))  # bucket number of each column
        self.c = array("H", bytes(2 * cols * K))  # mean Q15 per column and lag
        self.w = 0  # columns written (the ring's write count)
        self.cur = [0] * K  # sums of the bucket being filled
        self.cur_b = -1
        self.cur_n = 0

    def add(self, b: int, coh: list[int]) -> None:
        if b != self.cur_b:
            if b < self.cur_b:
                return  # a resent (older) frame: its bucket is gone
            self._close()
            self.cur_b = b
        cur = self.cur
        for j in range(self.K):
            cur[j] += coh[j]
        self.cur_n += 1

    def _close(self) -> None:
        n = self.cur_n
        if n:
            i = self.w % self.cols
            self.b[i] = self.cur_b
            base = i * self.K
            for j in range(self.K):
                self.c[base + j] = _mean(self.cur[j], n)
                self.cur[j] = 0
            self.w += 1
        self.cur_n = 0

    def columns(self, since_b: int) -> list[tuple[int, list[int]]]:
        """(bucket, Q15 per lag) oldest first, the open bucket last."""
        out = []
        first = max(0, self.w - self.cols)
        for w in range(first, self.w):
            i = w % self.cols
            if self.b[i] >= since_b:
                out.append((self.b[i], list(self.c[i * self.K:(i + 1) * self.K])))
        if self.cur_n and self.cur_b >= since_b:
            n = self.cur_n
            out.append((self.cur_b, [_mean(s, n) for s in self.cur]))
        return out


class Spectra:
    def __init__(self, span: float = SPAN, bucket: float = BUCKET) -> None:
        self.span, self.bucket = span, bucket
        self.cols = max(1, int(round(span / bucket)))
        self._h: dict[tuple[str, int], _Hist] = {}
        self._lock = threading.Lock()

    def add(self, node: str, coh: list[list[int]], t: float, hello: dict | None) -> None:
        """One report's spectra at hub time t (hello: the node's, for its lags)."""
        b = int(t // self.bucket)
        with self._lock:
            for i, spec in enumerate(coh):
                h = self._h.get((node, i))
                if h is None or len(spec) != h.K:
                    chs = hello["ch"] if hello else []
                    lg = tuple(chs[i]["lags"]) if i < len(chs) else ()
                    h = self._h[(node, i)] = _Hist(lg, len(spec), self.cols)
                h.add(b, spec)

    def on_hello(self, node: str, lags: list[list[int]]) -> None:
        """A hello: a channel with other lags than its history's starts anew."""
        with self._lock:
            for (n, i), h in list(self._h.items()):
                if n == node and (i >= len(lags) or (h.lags and h.lags != tuple(lags[i]))):
                    del self._h[(n, i)]
                elif n == node and not h.lags:
                    h.lags = tuple(lags[i])

    def drop(self, node: str) -> None:
        with self._lock:
            for key in [k for k in self._h if k[0] == node]:
                del self._h[key]

    def get(self, node: str, ch: int, now: float) -> dict | None:
        """{"times": bucket start times, "lags": lags in samples, "c": per time
        a list of Q15 per lag} for the last span seconds, or None."""
        since = int((now - self.span) // self.bucket) + 1
        with self._lock:
            h = self._h.get((node, ch))
            if h is None:
                return None
            cols = h.columns(since)
            lags = list(h.lags)
        return {"times": [b * self.bucket for b, _ in cols], "lags": lags,
                "c": [c for _, c in cols]}

    def __len__(self) -> int:
        return len(self._h)
