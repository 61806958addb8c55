"""Headless Chromium (Debian's, driven by Playwright) and a `becomingone demo`
process for the page's tests and benchmarks."""
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from support.rigs import text

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "browser-test-token-0123456789"
RULES = """
[[rules]]
name = "colour"
when = "emerged"
edge = false
min_interval = 0.5
action = "display"

[[rules]]
name = "tell the page"
when = "emerged"
action = "websocket"
[rules.with]
message = "one"
"""


def need_browser():
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append("Debian's chromium (bash tools/setup.sh installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e .[dev])")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("missing: " + "; ".join(missing))
        pytest.skip("missing: " + "; ".join(missing))


def start_demo(d, *extra, nodes=30, token=TOKEN, period=20.0):
    cfg = d / "hub.toml"
    web = f'[web]\ntoken = "{token}"\n' if token else ""
    cfg.write_text(f"[mesh]\ndwell = 1.0\n[sim]\nperiod = {period}\n{web}{RULES}")
    log = d / "demo.log"
    with open(log, "wb") as f:  # the child keeps its own copy
        p = subprocess.Popen([sys.executable, "-m", "becomingone", "demo", "--nodes", str(nodes),
                              "--config", str(cfg), "--status", "2", *extra],
                             stdout=f, stderr=subprocess.STDOUT)
    return p, log


def url_in(log):
    m = re.search(r"page at (http://\S+)", text(log))
    return m.group(1) if m else None


def call(url, method="GET", body=None, token=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
