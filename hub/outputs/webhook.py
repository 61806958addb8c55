"""webhook: POST the docs/kairos.md §8 state JSON plus ``"rule"`` to an http:// URL.

Parameters: ``url`` (required, http:// only), ``timeout`` (seconds per
attempt, default 2), ``retries`` (extra attempts, default 3), ``backoff``
(seconds before the first retry, doubling each time, default 0.5) and
``queue`` (bounded queue length per URL, default 100).

Firing only enqueues: one daemon worker thread per URL does the POSTs, so
the hub tick never waits on the network.  When the queue is full the firing
is dropped and counted ("dropped", and as a failure).  2xx is success; a 4xx
is not retried; 5xx, connection errors and timeouts are, with exponential
backoff.  No proxies, no redirects (a 3xx is a failure).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from becomingone.outputs import (
    Adapter,
    OutputContext,
    OutputError,
    ParamError,
    param_num,
    param_str,
)
from becomingone.outputs.mapping import state_json

_Item = tuple[bytes, dict[str, Any]]


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path?query) of an http:// URL; ValueError if it is not one."""
    u = urlsplit(url)
    if u.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    if not u.hostname or u.username is not None or any(c in url for c in " \r\n\t"):
        raise ValueError(f"not a valid http URL (host, no credentials, no spaces): {url!r}")
    port = u.port or 80  # .port raises ValueError for a bad port
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return u.hostname, port, path


class _Worker(threading.Thread):
    def __init__(self, adapter: WebhookAdapter, url: str, size: int) -> None:
        super().__init__(name=f"webhook {url}", daemon=True)
        self.adapter, self.url = adapter, url
        self.host, self.port, self.path = split_url(url)
        self.q: queue.Queue[_Item | None] = queue.Queue(maxsize=size)
        self.busy = 0  # 1 while a POST (with its retries) is under way
        self.pending = 0  # accepted and not finished (queued + in flight)
        self.lock = threading.Lock()

    def done(self, n: int = 1) -> None:
        with self.lock:
            self.pending -= n

    def run(self) -> None:
        stop = self.adapter.stopping
        while True:
            item = self.q.get()
            if item is None:
                break
            if stop.is_set():
                self.adapter.count("discarded")
                self.done()
                break
            self.busy = 1
            try:
                self.deliver(*item)
            except Exception as e:  # a bug here must not kill the worker
                self.adapter.count("failed", error=f"{self.url}: {type(e).__name__}: {e}")
            finally:
                self.busy = 0
                self.done()

    def post(self, body: bytes, timeout: float) -> int:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", self.path, body, {"Content-Type": "application/json",
                                                   "User-Agent": "becomingone-hub"})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def deliver(self, body: bytes, p: dict[str, Any]) -> None:
        a, err = self.adapter, "closed"
        for attempt in range(p["retries"] + 1):
            if attempt:
                a.count("retries")
                if a.stopping.wait(p["backoff"] * 2 ** (attempt - 1)):
                    break
            try:
                status = self.post(body, p["timeout"])
            except TimeoutError:
                a.count("timeouts")
                err = f"timeout after {p['timeout']:g} s"
                continue
            except (OSError, http.client.HTTPException) as e:
                err = f"{type(e).__name__}: {e}"
                continue
            if 200 <= status < 300:
                a.count("sent")
                return
            err = f"HTTP {status}"
            if 300 <= status < 500:  # redirects and client errors do not get better
                break
        a.count("failed", error=f"{self.url}: {err}")


class WebhookAdapter(Adapter):
    name = "webhook"
    PARAMS = {"url": None, "timeout": 2.0, "retries": 3, "backoff": 0.5, "queue": 100}

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        self.stopping = threading.Event()
        self.workers: dict[str, _Worker] = {}
        self._longest = 0.0  # longest per-attempt timeout in use

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        p = super().validate(params)
        try:
            split_url(param_str(p, "url"))
        except ValueError as e:
            raise ParamError(str(e), key="url") from None
        p["timeout"] = param_num(p, "timeout", 0.01, 60.0)
        p["retries"] = param_num(p, "retries", 0, 10, integer=True)
        p["backoff"] = param_num(p, "backoff", 0.0, 60.0)
        p["queue"] = param_num(p, "queue", 1, 10_000, integer=True)
        return p

    def queued(self) -> int:
        return sum(w.pending for w in list(self.workers.values()))

    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        if self.stopping.is_set():
            raise OutputError("closed")
        w = self.workers.get(params["url"])
        if w is None:
            w = self.workers[params["url"]] = _Worker(self, params["url"], params["queue"])
            w.start()
        self._longest = max(self._longest, params["timeout"])
        body = json.dumps({**state_json(state), "rule": rule_name},
                          separators=(",", ":")).encode()
        with w.lock:  # counted before the worker can see it, so queued() never dips
            w.pending += 1
        try:
            w.q.put_nowait((body, params))
        except queue.Full:
            w.done()
            self.count("dropped")
            raise OutputError(f"queue full ({w.q.maxsize}): dropped") from None

    def close(self, timeout: float | None = None) -> None:
        """Stop the workers; waits at most ``timeout`` (default: the longest
        per-attempt timeout + 1 s) per worker for a POST under way."""
        self.stopping.set()
        for w in self.workers.values():
            left = 0
            while True:
                try:
                    left += w.q.get_nowait() is not None
                except queue.Empty:
                    break
            if left:
                self.count("discarded", left)
                w.done(left)
            with contextlib.suppress(queue.Full):  # (the worker also sees `stopping`)
                w.q.put_nowait(None)
        for w in self.workers.values():
            w.join(timeout if timeout is not None else self._longest + 1.0)
