"""Web page figures with 1,000 simulated nodes (docs/web.md quotes them).

Run: .venv/bin/python -m pytest tests/bench/bench_web.py -m bench -s

A real `becomingone demo --nodes 1000` process serves the page; headless
Chromium (Debian's, through Playwright) opens it.  Measured in the page
with the performance API:

- time to first render: from navigation start to the first frame that drew
  the node list (performance.mark "bo-first-render" in app.js);
- frame time: the page's own work per drawn frame (app.js times its
  requestAnimationFrame callback: node list, cards, events), and the
  interval between animation frames, while the feed streams at 10 Hz and
  the node list is scrolled;
- WebSocket messages/s and bytes/s received by that one browser, and the
  same from the server's counters (/api/metrics).

Asserts only that the page got data; never on time.
"""
import json
import signal
import tempfile
import time

import pytest
from support.browser import (
    ARGS,
    CHROMIUM,
    call,
    need_browser,
    start_demo,
    url_in,
)
from support.rigs import free_port, text, wait_for

pytestmark = pytest.mark.bench
NODES = 1000
SECONDS = 10.0

FRAME_PROBE = """
() => new Promise(done => {
  const gaps = []; let last = null; const end = performance.now() + %d;
  function step(t) {
    if (last !== null) gaps.push(t - last);
    last = t;
    if (t < end) requestAnimationFrame(step); else done(gaps);
  }
  requestAnimationFrame(step);
})
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def test_page_with_1000_nodes(tmp_path):
    need_browser()
    from playwright.sync_api import sync_playwright

    p, log = start_demo(tmp_path, "--port", str(free_port()), nodes=NODES, period=60.0)
    try:
        assert wait_for(lambda: url_in(log), 60), text(log)
        base = url_in(log)
        time.sleep(3)  # the sim's first reports
        with tempfile.TemporaryDirectory() as prof, sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(prof, executable_path=CHROMIUM,
                                                        headless=True, args=ARGS,
                                                        viewport={"width": 1280, "height": 1000})
            page = ctx.new_page()
            page.goto(base)
            page.wait_for_function("window.__bo && window.__bo.firstRender !== null",
                                   timeout=30000)
            first = page.evaluate("performance.getEntriesByName('bo-first-render')[0].startTime")
            dcl = page.evaluate("performance.getEntriesByType('navigation')[0]"
                                ".domContentLoadedEventEnd")
            page.wait_for_function("document.getElementById('n-nodes').textContent === '1000'",
                                   timeout=30000)
            time.sleep(2)
            mm0 = call(base + "api/metrics")[1]
            m0 = mm0["web"]
            b0 = page.evaluate("({m: __bo.messages, b: __bo.bytes, f: __bo.frames.length})")
            t0 = time.monotonic()
            page.evaluate("""() => { const el = document.getElementById('nodes');
                window.__scroll = setInterval(() => { el.scrollTop = (el.scrollTop + 270) %
                  Math.max(1, el.scrollHeight - el.clientHeight); }, 100); }""")
            gaps = page.evaluate(FRAME_PROBE % int(SECONDS * 1000))
            dt = time.monotonic() - t0
            b1 = page.evaluate("({m: __bo.messages, b: __bo.bytes, f: __bo.frames.length})")
            mm1 = call(base + "api/metrics")[1]
            m1 = mm1["web"]
            work = page.evaluate(f"__bo.frames.slice(-{b1['f'] - b0['f']})")
            ctx.close()
        res = {
            "nodes": NODES,
            "first_render_ms": round(first, 1), "dom_content_loaded_ms": round(dcl, 1),
            "frame_work_ms": {"median": round(pct(work, 50), 2), "p95": round(pct(work, 95), 2),
                              "max": round(max(work), 2), "frames": len(work)},
            "frame_interval_ms": {"median": round(pct(gaps, 50), 1),
                                  "p95": round(pct(gaps, 95), 1), "max": round(max(gaps), 1),
                                  "fps": round(len(gaps) / SECONDS, 1)},
            "ws_browser": {"msgs_per_s": round((b1["m"] - b0["m"]) / dt, 1),
                           "bytes_per_s": round((b1["b"] - b0["b"]) / dt)},
            "core_ticks_per_s": round((mm1["counters"]["ticks"] - mm0["counters"]["ticks"]) / dt,
                                      1),
            "ws_server": {"msgs_per_s": round((m1["messages"] - m0["messages"]) / dt, 1),
                          "bytes_per_s": round((m1["bytes"] - m0["bytes"]) / dt)},
        }
        print("\nweb bench:", json.dumps(res, indent=1))
        assert res["ws_browser"]["msgs_per_s"] > 1 and work
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0, text(log)[-2000:]
