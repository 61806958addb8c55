"""Nobody gets in where they don't belong (issue 11, items 7, 8, 11):

* secrets (a webhook URL's ?apikey=, the API token) are masked in every read
  endpoint and WebSocket message, and a rule edited from the page keeps them;
  the generated token is stored hashed, in a 0600 database;
* request bodies: the token is checked before a byte of a body is read, the
  body is capped (413 on Content-Length and while streaming); against a real
  hub process, one unauthenticated 100 MB POST and eight 10 MB ones are
  answered without being read (bytes the app was handed, and RSS);
* the WebSocket answers only the hub's own origin and [web] origins, in
  Chromium too (a page served from another loopback port is refused, one
  from an allowed origin reads the feed).
"""
import contextlib
import http.server
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from support.browser import ARGS, CHROMIUM, need_browser, url_in
from support.rigs import free_port, text, wait_for

from becomingone import config, run
from becomingone.core import Hub
from becomingone.logs import Log
from becomingone.web import auth, create_app
from becomingone.web.redact import redact, redact_text, restore

TOKEN = "t0ken-for-the-security-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "SECRET-4711"
QUIET = ("hello", "collapse", "transport", "witness", "status", "ack", "output", "command",
         "emergence", "memory", "web", "rule", "error")


def closed_port():
    """A loopback port nobody listens on (the webhook's calls fail: with its URL)."""
    return free_port()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    db = tmp_path_factory.mktemp("sec") / "hub.db"
    cfg = config.parse(f"""
[hub]
db = "{db}"
[web]
token = "{TOKEN}"
[sim]
period = 20.0
[[rules]]
name = "hook"
when = "G > 2"
action = "webhook"
[rules.with]
url = "http://127.0.0.1:{closed_port()}/hook?apikey={SECRET}&site=home"
timeout = 0.5
retries = 0
""", "sec.toml")
    h = run.build(cfg, Log(quiet=QUIET), sim_nodes=4)
    h.start()
    assert wait_for(lambda: h.mesh_state is not None, 10)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def app(hub):
    return create_app(hub, TOKEN)


@pytest.fixture(scope="module")
def local(app):
    with TestClient(app, client=("127.0.0.1", 50000), base_url="http://127.0.0.1:8000") as c:
        yield c


# -- secrets ------------------------------------------------------------------------
def test_redaction_masks_the_secret_and_keeps_the_rest():
    cases = {
        "http://h.example/x?apikey=abc123&n=1": "http://h.example/x?apikey=***&n=1",
        "https://user:pw@host:8443/p?token=zz#access_token=qq":
            "https://user:***@host:8443/p?token=***#access_token=***",
        "mqtt://hub:s3cret@broker.local:1883": "mqtt://hub:***@broker.local:1883",
        "failed: Authorization: Bearer abc.def": "failed: Authorization: Bearer ***",
        "{'url': 'http://h/p?Api-Key=abc', 'x': 1}": "{'url': 'http://h/p?Api-Key=***', 'x': 1}",
        "http://h/p?page=2&sort=a": "http://h/p?page=2&sort=a",
        "plain words, a=b and c@d": "plain words, a=b and c@d",
        "http://user@host/p": "http://user@host/p",
    }
    for given, shown in cases.items():
        assert redact_text(given) == shown, given
    v = {"password": "x", "token": "", "n": 3, "mqtt": {"client_secret": "y"},
         "rows": [1, 2.5, None, "http://h/?key=k"]}
    assert redact(v) == {"password": "***", "token": "", "n": 3, "mqtt": {"client_secret": "***"},
                         "rows": [1, 2.5, None, "http://h/?key=***"]}
    old = {"url": "http://h/?apikey=1&a=2", "message": "m"}
    assert restore(dict(redact(old), message="new"), old) == dict(old, message="new")
    assert restore({"url": "http://h/?apikey=2&a=2"}, old) == {"url": "http://h/?apikey=2&a=2"}


def test_no_read_endpoint_shows_the_webhook_key(hub, local):
    r = local.post("/api/rules/hook/fire", headers=AUTH)
    assert r.status_code == 200, r.text  # queued; its worker's call is refused, with the URL
    assert wait_for(lambda: hub.router.stats()["adapters"]["webhook"].get("failed"), 10)
    assert SECRET in hub.router.stats()["adapters"]["webhook"]["last_error"]  # (inside: kept)
    paths = ["/api/rules", "/api/rules/hook", "/api/outputs", "/api/events", "/api/log",
             "/api/health", "/api/metrics", "/api/nodes", "/api/mesh", "/api/inputs"]
    seen = ""
    for path in paths:
        r = local.get(path)
        assert r.status_code == 200, (path, r.text)
        assert SECRET not in r.text, path
        seen += r.text
    assert "apikey=***&site=home" in seen  # still readable: host, path, the other parameters
    body = local.get("/api/rules/hook").json()
    assert body["with"]["url"].endswith("/hook?apikey=***&site=home")
    with local.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"subscribe": {"nodes": "*", "max_hz": 20}}))
        for _ in range(6):
            assert SECRET not in json.dumps(ws.receive_json())


def test_a_rule_edited_with_its_masked_url_keeps_the_key(hub, local):
    shown = local.get("/api/rules/hook").json()["with"]
    r = local.patch("/api/rules/hook", json={"with": dict(shown, timeout=0.25)}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert SECRET not in r.text
    rule = next(x for x in hub.router.rules if x.name == "hook")
    assert rule.params["url"].endswith(f"?apikey={SECRET}&site=home")
    assert rule.params["timeout"] == 0.25
    assert all(SECRET not in e.get("text", "") for e in local.get("/api/events").json()["events"])
    # A real change to the URL wins.
    new = dict(shown, url=shown["url"].replace("apikey=***", "apikey=OTHER-KEY"))
    assert local.patch("/api/rules/hook", json={"with": new}, headers=AUTH).status_code == 200
    rule = next(x for x in hub.router.rules if x.name == "hook")
    assert "apikey=OTHER-KEY&" in rule.params["url"]


def test_a_generated_token_is_stored_hashed_in_a_0600_file(tmp_path):
    db = tmp_path / "hub.db"
    h = Hub(config.parse(f'[hub]\ndb = "{db}"\n'), Log(quiet=QUIET))
    try:
        check, tok = auth.resolve_token(h)
        assert tok and check.matches(tok)
        assert h.store.load_state("web/token") == {"sha256": check.sha256}
    finally:
        h.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("hub.db"))
    assert tok.encode() not in raw
    for name in ("hub.db", "hub.db.key", "hub.db.head"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600, name
    # A store from before: the plaintext token becomes its hash, and still works.
    db2 = tmp_path / "old.db"
    h = Hub(config.parse(f'[hub]\ndb = "{db2}"\n'), Log(quiet=QUIET))
    try:
        h.store.save_state("web/token", {"token": "legacy-token-0123456789"})
        check, shown = auth.resolve_token(h)
        assert shown is None and check.matches("legacy-token-0123456789")
        assert set(h.store.load_state("web/token")) == {"sha256"}
    finally:
        h.store.close()
    con = sqlite3.connect(db2)
    assert "legacy" not in con.execute("SELECT value FROM state").fetchall().__repr__()
    con.close()


# -- the store's health ---------------------------------------------------------------
def test_health_is_false_while_the_store_is_damaged(tmp_path):
    """A store damaged under a running hub (its pages overwritten on disk):
    /api/health says so at once, and stays false (issue 11, item 5)."""
    from support import damage

    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n[sim]\nperiod = 20.0\n', "t.toml")
    h = run.build(cfg, Log(quiet=QUIET), sim_nodes=3)
    h.start()
    try:
        with TestClient(create_app(h, TOKEN), client=("127.0.0.1", 50000)) as c:
            assert wait_for(lambda: c.get("/api/health").json()["ok"], 15)
            body = c.get("/api/health").json()
            assert body["store"]["ok"] and body["store"]["integrity"] == "new store"
            damage.damage_live(tmp_path / "hub.db")
            assert wait_for(lambda: not c.get("/api/health").json()["ok"], 20)
            store = c.get("/api/health").json()["store"]
            assert store["damaged"] and "malformed" in store["error"] and store["failures"] >= 1
            assert run.status_line(h).startswith("STORE DAMAGED since ")
    finally:
        with contextlib.suppress(Exception):  # saving the state into a damaged file fails
            h.stop()


# -- request bodies (in process: what the app was handed) -------------------------
def _guard(app):
    return dict(app.state.guard)


@pytest.mark.parametrize("headers,status", [({}, 401), ({"Authorization": "Bearer nope"}, 403)])
def test_no_body_is_read_before_the_token(app, local, headers, status):
    before = _guard(app)
    r = local.post("/api/memories/recall", content=b"{" + b" " * (5 << 20) + b"}",
                   headers={"Content-Type": "application/json", **headers})
    assert r.status_code == status and "token" in r.json()["error"]
    assert r.headers["connection"] == "close"
    after = _guard(app)
    assert after["body_bytes"] == before["body_bytes"]
    assert after["refused_unread"] == before["refused_unread"] + 1


def test_bodies_over_the_cap_get_413_with_and_without_a_length(app, local):
    before = _guard(app)["body_bytes"]
    r = local.post("/api/memories/recall", content=b"x" * (2 << 20), headers=AUTH)
    assert r.status_code == 413 and "at most 1048576 bytes ([web] max_body)" in r.json()["error"]
    assert _guard(app)["body_bytes"] == before  # refused on its Content-Length

    def chunks():
        for _ in range(48):
            yield b"x" * 65536  # 3 MiB, no Content-Length: chunked
    # (TestClient hands the app the body in one piece: the real server's test
    # below counts how much of a stream is read before the 413.)
    r = local.post("/api/memories/recall", content=chunks(), headers=AUTH)
    assert r.status_code == 413 and "at most 1048576 bytes" in r.json()["error"]
    ok = local.post("/api/memories/recall", json={"k": 1}, headers=AUTH)
    assert ok.status_code == 200, ok.text


def test_the_cap_is_configurable(hub):
    app = create_app(hub, TOKEN, max_body=2048)
    with TestClient(app, client=("127.0.0.1", 50000)) as c:
        assert c.post("/api/memories/recall", json={"nodes": ["x" * 3000]},
                      headers=AUTH).status_code == 413
        assert c.post("/api/memories/recall", json={}, headers=AUTH).status_code == 200
    with pytest.raises(config.HubConfigError, match="max_body"):
        config.parse("[web]\nmax_body = 10\n")


# -- the WebSocket's origin -----------------------------------------------------------
def _ws(app, host, origin=None, query="", client=("127.0.0.1", 50000)):
    """Open /ws as a browser on `host` would (Origin) and take its hello; the close
    code when refused."""
    headers = {"host": host} if origin is None else {"host": host, "origin": origin}
    with TestClient(app, client=client) as c:
        try:
            with c.websocket_connect(f"/ws{query}", headers=headers) as ws:
                return ws.receive_json()["type"]
        except WebSocketDisconnect as e:
            return e.code


def test_websocket_origins(hub):
    app = create_app(hub, TOKEN, origins=["http://127.0.0.1:5555/"])
    q = f"?token={TOKEN}"
    own = "http://127.0.0.1:8000"
    assert _ws(app, "127.0.0.1:8000", own) == "hello"  # the hub's own page
    assert _ws(app, "localhost:8000", "http://localhost:8000") == "hello"
    assert _ws(app, "[::1]:8000", "http://[::1]:8000") == "hello"
    assert _ws(app, "127.0.0.1:8000", "http://127.0.0.1:5555") == "hello"  # [web] origins
    assert _ws(app, "127.0.0.1:8000") == "hello"  # not a browser (no Origin), on loopback
    for origin in ("http://127.0.0.1:9999", "http://evil.example", "null",
                   "https://127.0.0.1:8000"):
        assert _ws(app, "127.0.0.1:8000", origin) == 4403, origin
        assert _ws(app, "127.0.0.1:8000", origin, q) == 4403, origin  # a token does not help
    # DNS rebinding: a page whose name resolves to 127.0.0.1 is same-origin with
    # itself, but is no loopback page: it needs the token.
    assert _ws(app, "evil.example:8000", "http://evil.example:8000") == 4401
    assert _ws(app, "evil.example:8000", "http://evil.example:8000", q) == "hello"
    # Off loopback: the token, as before.
    far = ("192.0.2.7", 50000)
    assert _ws(app, "hub.lan:8000", "http://hub.lan:8000", client=far) == 4401
    assert _ws(app, "hub.lan:8000", "http://hub.lan:8000", q, client=far) == "hello"
    assert _ws(app, "hub.lan:8000", None, q + "x", client=far) == 4401
    assert app.state.guard["ws_refused"] == 11


# -- a real hub process -----------------------------------------------------------------
def _rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _start(d, web="", nodes=20):
    """`becomingone demo` with a web port of its own ([web] token, and `web` lines)."""
    cfg = d / "hub.toml"
    cfg.write_text(f'[web]\ntoken = "{TOKEN}"\n{web}\n[sim]\nperiod = 20.0\n')
    log = d / "hub.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "becomingone", "demo", "--nodes", str(nodes),
                              "--config", str(cfg), "--port", str(free_port()), "--status", "0"],
                             stdout=f, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: url_in(log), 30), text(log)
    except BaseException:
        p.kill()
        raise
    return SimpleNamespace(proc=p, log=log, url=url_in(log).rstrip("/"),
                           port=int(url_in(log).rstrip("/").rsplit(":", 1)[1]))


def _stop(h):
    if h.proc.poll() is None:
        h.proc.send_signal(signal.SIGINT)
        try:
            h.proc.wait(15)
        except subprocess.TimeoutExpired:
            h.proc.kill()


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post_raw(port, size, token=None, chunked=False):
    """POST /api/memories/recall announcing (or streaming) `size` bytes; send
    until the hub answers or stops reading.  (status, bytes sent)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = "POST /api/memories/recall HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "Content-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    s.sendall((head + "\r\n").encode())
    block = b" " * 65536
    chunk = b"10000\r\n" + block + b"\r\n" if chunked else block
    sent, answer = 0, b""
    s.setblocking(False)
    try:
        while sent < size and b"\r\n\r\n" not in answer:
            with contextlib.suppress(BlockingIOError):
                answer += s.recv(65536)
            try:
                sent += s.send(chunk) if chunked else s.send(block[:min(65536, size - sent)])
            except BlockingIOError:
                threading.Event().wait(0.001)
        s.setblocking(True)
        s.settimeout(10)
        while b"\r\n\r\n" not in answer:
            more = s.recv(65536)
            if not more:
                break
            answer += more
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()
    m = re.match(rb"HTTP/1.1 (\d+)", answer)
    return (int(m.group(1)) if m else None), sent


def test_a_100_mb_unauthenticated_post_is_not_read(tmp_path):
    h = _start(tmp_path)
    try:
        rss0 = _rss(h.proc.pid)
        status, sent = _post_raw(h.port, 100 << 20)
        assert status == 401
        assert sent < 50 << 20  # the hub answered and closed; the client stopped early
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(_post_raw(h.port, 10 << 20)))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [st for st, _ in statuses] == [401] * 8
        # With the token: over the cap, refused on its length; streamed, at the cap.
        assert _post_raw(h.port, 10 << 20, token=TOKEN)[0] == 413
        web = _get(h.url + "/api/metrics")["web"]
        assert web["body_bytes"] == 0 and web["refused_unread"] == 10
        assert _post_raw(h.port, 10 << 20, token=TOKEN, chunked=True)[0] == 413
        web = _get(h.url + "/api/metrics")["web"]
        # stopped at the cap: past it by at most what one read hands the app (uvicorn
        # passes on what one socket read gave, asyncio's 256 KiB at most, + its buffer)
        assert (1 << 20) < web["body_bytes"] <= (1 << 20) + (1 << 19)
        rss1 = _rss(h.proc.pid)
        print(f"\n[body cap] hub RSS {rss0 / 2**20:.0f} MB -> {rss1 / 2**20:.0f} MB after one"
              f" 100 MB and eight 10 MB unauthenticated POSTs and two 10 MB authenticated ones;"
              f" the app read {web['body_bytes']} body bytes; the 100 MB client got its 401"
              f" after sending {sent / 2**20:.1f} MB")
        assert rss1 - rss0 < 64 << 20  # was +1.2 GB
        assert _get(h.url + "/api/health")["ok"]
    finally:
        _stop(h)


# -- Chromium: a page from another origin -------------------------------------------------
# Run in a page: open the hub's WebSocket and say what happened (two messages
# are enough to have read the feed).
PROBE = """(port) => new Promise(done => {
  const r = {open: false, messages: 0, close: null};
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  ws.onopen = () => { r.open = true; };
  ws.onmessage = () => { r.messages += 1; if (r.messages === 2) ws.close(); };
  ws.onclose = e => { r.close = e.code; done(r); };
  setTimeout(() => done(r), 10000);
})"""


def _serve_page(port=0):
    """A blank page on a loopback port of its own: another origin than the hub's."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>elsewhere</title><p>another site</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_a_page_from_another_origin_cannot_read_the_feed_in_chromium(tmp_path):
    need_browser()
    from playwright.sync_api import sync_playwright

    friend_port = free_port()
    friend_origin = f"http://127.0.0.1:{friend_port}"
    h = _start(tmp_path, web=f'origins = ["{friend_origin}"]', nodes=5)
    servers = [_serve_page(friend_port), _serve_page()]
    stranger = servers[1].server_port
    pages = {"stranger": f"http://127.0.0.1:{stranger}/",
             "stranger-localhost": f"http://localhost:{stranger}/",
             "friend": f"{friend_origin}/", "own": h.url + "/"}
    results = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                for name, url in pages.items():
                    page = browser.new_page()
                    page.goto(url)
                    results[name] = page.evaluate(PROBE, h.port)
                    page.close()
            finally:
                browser.close()
        for name in ("stranger", "stranger-localhost"):
            r = results[name]
            assert not r["open"] and r["messages"] == 0 and r["close"] == 1006, (name, r)
        for name in ("friend", "own"):
            assert results[name]["open"] and results[name]["messages"] == 2, (name, results)
        assert _get(h.url + "/api/metrics")["web"]["ws_refused"] == 2
    finally:
        _stop(h)
        for srv in servers:
            srv.shutdown()
            srv.server_close()
