"""The web page in headless Chromium (Debian's, driven by Playwright) against a
real `becomingone demo` process: it loads without console errors, the nodes
appear, values move, emergence shows when it happens, a command sent from
the page reaches a node (its ack comes back as an event); the same server
answers the API and the WebSocket.  Screenshots land in the test's tmp dir."""
import json
import re
import signal
import subprocess
import tempfile
import time
from types import SimpleNamespace

import pytest
from support.browser import (
    ARGS,
    CHROMIUM,
    TOKEN,
    call,
    need_browser,
    start_demo,
    url_in,
)
from support.rigs import free_port, text, wait_for


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    need_browser()
    d = tmp_path_factory.mktemp("demo")
    p, log = start_demo(d, "--port", str(free_port()))
    try:
        assert wait_for(lambda: url_in(log), 30), text(log)
        yield SimpleNamespace(url=url_in(log), proc=p, log=log)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def browser():
    need_browser()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM,
                                                    headless=True, args=ARGS,
                                                    viewport={"width": 1280, "height": 1000})
        yield ctx
        ctx.close()


def watch(page):
    errors = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error"
            else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


def open_detail(browser, url, node):
    """A new page on url with `node`'s detail open: (page, its error list)."""
    page = browser.new_page()
    errors = watch(page)
    page.goto(url)
    page.click(f'#nodes .nrow[data-node="{node}"]')
    page.wait_for_selector("#detail:not([hidden])")
    return page, errors


def not_blank(path):
    from PIL import Image, ImageStat

    img = Image.open(path).convert("L")
    stat = ImageStat.Stat(img)
    return img.size, stat.stddev[0]


def test_the_page_is_live_and_shows_emergence(demo, browser, tmp_path):
    page = browser.new_page()
    errors = watch(page)
    page.goto(demo.url)
    page.wait_for_selector("#nodes .nrow[data-node]", timeout=15000)
    page.wait_for_function("document.getElementById('n-nodes').textContent === '30'",
                           timeout=15000)
    assert page.locator("#nodes .nrow[data-node]").count() >= 15  # the visible part
    assert page.get_attribute("#conn", "data-state") == "live"
    row = page.locator('#nodes .nrow[data-node="sim-0000"]')
    assert row.locator(".board").inner_text() == "sim" and row.locator(".via").inner_text() == "sim"
    # Values change over time: G and a node's c and tau.
    first = (page.inner_text("#G"), row.locator(".cv b").inner_text())
    assert first[0] != "–"
    assert wait_for(lambda: page.inner_text("#G") != first[0], 10)
    assert wait_for(lambda: row.locator(".cv b").inner_text() != first[1], 10)
    # Emergence: the sim's mood cycle is 20 s, so within one or two cycles.
    page.wait_for_selector('#emergence[data-emerged="true"]', timeout=45000)
    assert page.inner_text("#one") == "THE ONE"
    assert page.inner_text("#one-since").startswith("since ")
    assert int(page.inner_text("#participants-n")) > 0
    # The display rule's colour (docs/kairos.md §8) shows as a swatch on the page.
    page.wait_for_selector("#display:not([hidden])", timeout=10000)
    bg = page.eval_on_selector("#display-swatch", "e => getComputedStyle(e).backgroundColor")
    rgb = [int(v) for v in re.findall(r"\d+", bg)][:3]
    assert len(rgb) == 3 and max(rgb) > 0, bg
    assert re.fullmatch(r"colour: hue \d+°, brightness (0|1)\.\d\d",
                        page.inner_text("#display-text"))
    page.wait_for_timeout(500)
    shot = tmp_path / "page-emerged.png"
    page.screenshot(path=str(shot), full_page=True)
    size, spread = not_blank(shot)
    assert size[0] >= 1280 and spread > 10, (size, spread)
    assert not errors, errors
    page.close()


def test_a_command_from_the_page_reaches_a_node(demo, browser, tmp_path):
    page, errors = open_detail(browser, demo.url, "sim-0003")
    assert page.inner_text("#d-name") == "sim-0003"
    page.wait_for_function("document.querySelectorAll('#d-counters tr').length > 5")
    page.select_option("#cmd-op", "led")
    page.fill("#cmd-args", '{"on": 1}')
    page.click("#cmd-send")
    # No token yet: the page asks; a wrong one is refused and it asks again.
    page.wait_for_selector("#modal:not([hidden])")
    page.fill("#token-input", "wrong-token")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#modal:not([hidden])")
    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    # The page keeps the id of the command it sent (its text turns into the
    # ack as soon as that arrives, which may be before the POST returns).
    page.wait_for_selector("#cmd-result[data-cid]", state="attached")
    cid = page.get_attribute("#cmd-result", "data-cid")
    assert re.fullmatch(r"\d+", cid), cid
    ack = f"sim-0003 command {cid} ok"
    page.wait_for_function(
        "t => [...document.querySelectorAll('#events li')].some(li => li.textContent.includes(t))",
        arg=ack, timeout=10000)
    page.wait_for_function("t => document.getElementById('cmd-result').textContent === t",
                           arg=ack)
    page.screenshot(path=str(tmp_path / "page-detail.png"), full_page=True)
    assert ack in text(demo.log)  # the hub logged the node's ack too
    # Chromium logs the refused wrong token (403) to the console; nothing else.
    assert [e for e in errors if "status of 403" not in e] == [] and len(errors) == 1, errors
    page.close()


# Pixels of the heatmap's cells (left of the colour scale): how many are
# painted, how many distinct colours, and a digest that changes when redrawn.
HEAT_PIXELS = """cv => {
  const w = cv.width - 32 * devicePixelRatio;
  const d = cv.getContext("2d").getImageData(0, 0, w, cv.height).data;
  let painted = 0, sum = 0; const colours = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 0) continue;
    painted++; colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + i) % 1000000007;
  }
  return {painted, colours: colours.size, sum, total: d.length / 4};
}"""


def test_the_detail_shows_the_spectrum_heatmap(demo, browser, tmp_path):
    page, errors = open_detail(browser, demo.url, "sim-0005")
    # A few 5 s columns: the demo has run since the first test.
    page.wait_for_function("+(document.getElementById('d-spec').dataset.columns || 0) >= 2",
                           timeout=20000)
    assert page.inner_text("#d-ch") == "0: rhythm"
    cv = page.locator("#d-spec")
    first = cv.evaluate(HEAT_PIXELS)
    # Cells cover a real part of the plot, in many shades (c differs per lag).
    assert first["painted"] > 0.02 * first["total"] and first["colours"] > 20, first
    # Live: the newest column fills and new ones come (redrawn every 3 s).
    assert wait_for(lambda: cv.evaluate(HEAT_PIXELS)["sum"] != first["sum"], 15)
    shot = tmp_path / "page-spectrum.png"
    page.locator("#detail").screenshot(path=str(shot))
    size, spread = not_blank(shot)
    assert spread > 10, (size, spread)
    print(f"\nspectrum screenshot: {shot}")
    assert not errors, errors
    page.close()


def test_a_rule_changed_from_the_page(demo, browser, tmp_path):
    page = browser.new_page()
    errors = watch(page)
    page.goto(demo.url + "#token=" + TOKEN)  # stores the token, as the docs say
    row = page.locator('#rules tr[data-rule="tell the page"]')
    row.wait_for()
    assert row.locator("code").inner_text() == "emerged"
    row.locator("button.edit").click()
    page.wait_for_selector("#rule-modal:not([hidden])")
    assert page.input_value("#rf-when") == "emerged" and page.is_checked("#rf-enabled")
    assert json.loads(page.input_value("#rf-with")) == {"message": "one"}
    # A bad condition: the hub's parser says what is wrong, nothing changes.
    page.fill("#rf-when", "emerged and BAD > 1")
    page.click("#rf-save")
    page.wait_for_function("document.getElementById('rf-error').textContent.includes('BAD')")
    assert "'when': unknown name 'BAD'" in page.inner_text("#rf-error")
    assert not page.is_hidden("#rule-modal")
    page.screenshot(path=str(tmp_path / "page-rule-form.png"))
    page.fill("#rf-for", "soon")  # checked on the page before sending
    page.click("#rf-save")
    page.wait_for_function("document.getElementById('rf-error').textContent.startsWith('for:')")
    # A good change: condition, hold, parameters and disabled in one go.
    page.fill("#rf-when", "emerged and G > 0.5")
    page.fill("#rf-for", "1.5")
    page.fill("#rf-with", '{"message": "changed"}')
    page.uncheck("#rf-enabled")
    page.click("#rf-save")
    page.wait_for_selector("#rule-modal", state="hidden")
    page.wait_for_function("document.querySelector('#rules tr[data-rule=\"tell the page\"] "
                           "code').textContent === 'emerged and G > 0.5'")
    assert row.locator(".badge.off").inner_text() == "off"
    st, rule = call(demo.url + "api/rules/tell%20the%20page")
    assert st == 200 and (rule["when"], rule["for"], rule["enabled"], rule["with"]) == (
        "emerged and G > 0.5", 1.5, False, {"message": "changed"})
    page.screenshot(path=str(tmp_path / "page-rule.png"), full_page=True)
    st, evs = call(demo.url + "api/events?kind=rule")
    assert any(e["text"].startswith("rule tell the page changed from the web") for e in
               evs["events"])
    # Re-enabled: only what changed is sent.
    row.locator("button.edit").click()
    page.check("#rf-enabled")
    page.click("#rf-save")
    page.wait_for_selector("#rule-modal", state="hidden")
    assert wait_for(lambda: call(demo.url + "api/rules/tell%20the%20page")[1]["enabled"], 10)
    st, evs = call(demo.url + "api/events?kind=rule")
    assert evs["events"][0]["text"] == "rule tell the page changed from the web: enabled=True"
    # Chromium logs the refused change (422) to the console; nothing else.
    assert [e for e in errors if "status of 422" not in e] == [], errors
    page.close()


def test_readable_on_a_phone(demo, browser, tmp_path):
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    errors = watch(page)
    page.goto(demo.url)
    page.wait_for_selector("#nodes .nrow[data-node]")
    page.wait_for_timeout(800)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, f"the page scrolls sideways on a phone: {width}px"
    assert page.locator(".thead .hide-s").first.is_hidden()
    shot = tmp_path / "page-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert not_blank(shot)[1] > 10
    assert not errors, errors
    page.close()


# -- the API and the feed against the same running server ----------------------------------

def test_the_running_server_api(demo):
    base = demo.url.rstrip("/")
    st, h = call(base + "/api/health")
    assert st == 200 and h["ok"]
    st, nodes = call(base + "/api/nodes")
    assert st == 200 and nodes["total"] == 30
    for path in ("/api/mesh", "/api/events?limit=5", "/api/log?limit=2", "/api/memories",
                 "/api/memories/similar", "/api/rules", "/api/outputs", "/api/inputs",
                 "/api/metrics", "/api/nodes/sim-0001", "/api/nodes/sim-0001/history",
                 "/api/nodes/sim-0001/events"):
        st, body = call(base + path)
        assert st == 200, (path, body)
    st, body = call(base + "/api/nodes/sim-0001/commands", "POST", {"op": "ping"})
    assert st == 401 and "token" in body["error"]
    st, body = call(base + "/api/nodes/sim-0001/commands", "POST", {"op": "ping"}, token=TOKEN)
    assert st == 202 and isinstance(body["id"], int)
    st, body = call(base + "/api/nodes/sim-0001/commands", "POST", token=TOKEN, raw=b"{oops")
    assert st == 422 and "bad request" in body["error"]
    st, body = call(base + "/api/nodes/sim-0001/commands", "POST", {"op": "p", "args": []},
                    token=TOKEN)
    assert st == 422 and "args" in body["error"]
    st, body = call(base + "/api/nope")
    assert st == 404 and "no such endpoint" in body["error"]
    st, body = call(base + "/api/inputs/x", "POST", {"values": [1]}, token=TOKEN)
    assert st == 404 and "no [[inputs]]" in body["error"]
    assert call(base + "/api/health")[1]["ok"] and demo.proc.poll() is None


def test_the_running_server_feed(demo):
    from websockets.sync.client import connect

    ws_url = demo.url.replace("http://", "ws://") + "ws"
    with connect(ws_url, open_timeout=10) as ws:
        assert json.loads(ws.recv(10))["type"] == "hello"
        ws.send(json.dumps({"subscribe": {"nodes": "*", "fields": ["c"], "max_rows": 7,
                                          "max_hz": 5}}))
        ws.send("garbage")
        got, t0, stamps = set(), time.monotonic(), []
        while time.monotonic() - t0 < 3:
            m = json.loads(ws.recv(5))
            got.add(m["type"])
            if m["type"] == "state" and m["cols"] == ["node", "c"]:
                stamps.append(m["mesh"]["t"])  # the hub's tick: not when this test got to it
                assert len(m["rows"]) <= 7
        assert {"subscribed", "error", "state"} <= got
        # At most max_hz (5) over the span of the hub's ticks, give or take a
        # message at either end (a 10 Hz feed would send twice as many).
        span = stamps[-1] - stamps[0] if stamps else 0.0
        assert len(stamps) >= 4 and len(stamps) - 1 <= 5 * span + 2, (span, len(stamps))
    with connect(ws_url, open_timeout=10) as ws:  # the bad client left nothing broken
        assert json.loads(ws.recv(10))["type"] == "hello"


# -- the CLI around the web server ------------------------------------------------------------

def test_cli_web_flags_and_clean_exit(tmp_path):
    need_browser()
    a, b, c = (tmp_path / x for x in "abc")
    for d in (a, b, c):
        d.mkdir()
    # --port 0: any free port; the URL and the made-up token are printed once.
    p, log = start_demo(a, "--port", "0", "--seconds", "6", nodes=3, token="")
    assert wait_for(lambda: url_in(log), 20), text(log)
    st, h = call(url_in(log).rstrip("/") + "/api/health")
    assert st == 200
    # --no-web: no page; a port in use: the hub says so and runs on.
    q, qlog = start_demo(b, "--no-web", "--seconds", "2", nodes=3)
    busy = int(url_in(log).rsplit(":", 1)[1].strip("/"))
    r, rlog = start_demo(c, "--port", str(busy), "--seconds", "2", nodes=3)
    assert p.wait(30) == 0 and q.wait(30) == 0 and r.wait(30) == 0
    assert text(log).count("page at http://127.0.0.1:") == 1
    assert text(log).count("API token (made now") == 1
    assert "page at" not in text(qlog) and "status" in text(qlog)
    assert "cannot listen" in text(rlog) and "page at" not in text(rlog)
