"""The hub's REST API and WebSocket feed through FastAPI's TestClient, on a
real Hub (sim mesh, a hub-side input, two rules) running its core thread:
every endpoint, the token rules, malformed requests (4xx JSON), and the hub
still healthy afterwards."""
import math
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient
from support.rigs import wait_for
from support.web import err

from becomingone import config, run
from becomingone.logs import Log
from becomingone.web import create_app

TOKEN = "t0ken-for-the-api-tests"
CFG = f"""
[hub]
db = ":memory:"
[mesh]
dwell = 0.5
[web]
token = "{TOKEN}"
[sim]
period = 20.0
[[inputs]]
name = "door"
every = 5
[[rules]]
name = "tell the page"
when = "G >= 0"
action = "websocket"
edge = false
min_interval = 1.0
[rules.with]
message = "hello page"
[[rules]]
name = "never"
when = "G > 2"
action = "websocket"
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def hub():
    cfg = config.parse(CFG, "test.toml")
    h = run.build(cfg, Log(quiet=("hello", "collapse", "transport", "witness", "status", "ack",
                                  "output", "command", "emergence", "memory", "web")),
                  sim_nodes=12)
    h.start()
    assert wait_for(lambda: h.mesh_state is not None and len(h.nodes) == 12, 10)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def app(hub):
    return create_app(hub, TOKEN)


@pytest.fixture(scope="module")
def local(app):
    """A client on loopback: reads need no token."""
    with TestClient(app, client=("127.0.0.1", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def remote(app):
    """A client from another machine: everything needs the token."""
    with TestClient(app, client=("192.0.2.7", 50000)) as c:
        yield c


GETS = ["/api/nodes", "/api/nodes/sim-0003", "/api/nodes/sim-0003/history",
        "/api/nodes/sim-0003/spectrum",
        "/api/nodes/sim-0003/events", "/api/mesh", "/api/events", "/api/log", "/api/memories",
        "/api/memories/similar", "/api/rules", "/api/rules/never", "/api/outputs",
        "/api/health", "/api/metrics", "/api/inputs"]


def test_openapi_lists_exactly_the_endpoints_tested(local):
    spec = local.get("/openapi.json").json()
    paths = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert paths == {
        ("GET", "/api/nodes"), ("GET", "/api/nodes/{node}"), ("GET", "/api/nodes/{node}/history"),
        ("GET", "/api/nodes/{node}/events"), ("GET", "/api/nodes/{node}/spectrum"),
        ("GET", "/api/mesh"), ("GET", "/api/events"),
        ("GET", "/api/log"), ("GET", "/api/memories"), ("GET", "/api/memories/similar"),
        ("POST", "/api/memories/recall"), ("GET", "/api/rules"), ("GET", "/api/rules/{name}"),
        ("PATCH", "/api/rules/{name}"), ("POST", "/api/rules/{name}/fire"),
        ("GET", "/api/outputs"), ("GET", "/api/health"),
        ("GET", "/api/metrics"), ("POST", "/api/nodes/{node}/commands"), ("GET", "/api/inputs"),
        ("POST", "/api/inputs/{name}")}
    assert local.get("/docs").status_code == 200


@pytest.mark.parametrize("path", GETS)
def test_reads_open_on_loopback_and_need_the_token_elsewhere(local, remote, path):
    assert local.get(path).status_code == 200, local.get(path).text
    assert "Bearer" in err(remote.get(path), 401)
    assert err(remote.get(path, headers={"Authorization": "Bearer nope"}), 403)
    assert remote.get(path, headers=AUTH).status_code == 200


@pytest.mark.parametrize("path,body", [
    ("/api/nodes/sim-0001/commands", {"op": "ping"}),
    ("/api/inputs/door", {"values": [1.0]}),
    ("/api/rules/never/fire", {}),
    ("/api/memories/recall", {}),
])
def test_writes_need_the_token_even_on_loopback(local, path, body):
    err(local.post(path, json=body), 401)
    err(local.post(path, json=body, headers={"Authorization": "Bearer wrong"}), 403)
    err(local.post(path, json=body, headers={"Authorization": "Basic abc"}), 401)


def test_nodes_and_one_node(local):
    body = local.get("/api/nodes").json()
    names = [n["node"] for n in body["nodes"]]
    assert body["total"] == 13 and "sim-0000" in names and "input-door" in names
    row = next(n for n in body["nodes"] if n["node"] == "sim-0005")
    assert row["board"] == "sim" and row["transport"] == "sim" and row["online"]
    assert 0 <= row["c"] <= 1 and row["tau"] > 0 and row["channels"][0]["name"] == "rhythm"
    page = local.get("/api/nodes?offset=2&limit=3").json()
    assert [n["node"] for n in page["nodes"]] == names[2:5]
    one = local.get("/api/nodes/sim-0005").json()
    assert one["counters"]["frames"]["report"] > 0 and one["hello"]["period"] == 20
    assert "unknown node" in err(local.get("/api/nodes/nobody"), 404)


def test_history_is_downsampled_with_the_dominant_lag(local, hub):
    now = hub.clock()
    h = local.get(f"/api/nodes/sim-0002/history?since={now - 30}&until={now}&points=10").json()
    assert h["lags"] == [2, 4, 8, 16] and h["lags_s"] == [0.04, 0.08, 0.16, 0.32]
    assert 1 <= len(h["points"]) <= 10 and h["rows_read"] > len(h["points"])
    p = h["points"][-1]
    assert 0 <= p["c_min"] <= p["c"] <= p["c_max"] <= 1 and p["tau"] in h["lags_s"]
    err(local.get(f"/api/nodes/sim-0002/history?since={now}&until={now - 5}"), 422)
    err(local.get("/api/nodes/sim-0002/history?points=0"), 422)
    err(local.get("/api/nodes/sim-0002/history?since=abc"), 422)
    err(local.get("/api/nodes/sim-0002/history?ch=99"), 422)
    # sim nodes have one channel (their hello says so): channel 1 is not there.
    assert "has no channel 1 (it has channels 0..0)" in err(
        local.get("/api/nodes/sim-0002/history?ch=1"), 404)
    assert local.get("/api/nodes/sim-0002/history?ch=0").status_code == 200
    err(local.get("/api/nodes/sim-0002/history?since=1e300"), 422)
    err(local.get("/api/nodes/ghost/history"), 404)


def test_spectrum_is_the_per_lag_coherence_over_time(local, hub):
    sp = local.get("/api/nodes/sim-0002/spectrum?ch=0").json()
    assert sp["lags"] == [2, 4, 8, 16] and sp["lags_ms"] == [40.0, 80.0, 160.0, 320.0]
    assert sp["bucket"] == 5.0 and sp["span"] == 600.0
    assert 1 <= len(sp["times"]) == len(sp["c"]) <= 121
    assert sp["times"] == sorted(sp["times"]) and sp["times"][-1] <= hub.clock()
    assert all(len(col) == 4 and all(0 <= v <= 1 for v in col) for col in sp["c"])
    assert any(v > 0 for col in sp["c"] for v in col)
    assert "has no channel 1" in err(local.get("/api/nodes/sim-0002/spectrum?ch=1"), 404)
    err(local.get("/api/nodes/sim-0002/spectrum?ch=8"), 422)
    err(local.get("/api/nodes/sim-0002/spectrum?ch=x"), 422)
    err(local.get("/api/nodes/ghost/spectrum"), 404)


def test_mesh_health_metrics(local):
    m = local.get("/api/mesh").json()
    assert m["ready"] and 0 <= m["G"] <= 1 and 0 <= m["R"] <= 1 and m["live"] >= 12
    assert set(m["psi"]) == {"re", "im", "abs", "deg"} and m["witness"]["surprise"] >= 0
    h = local.get("/api/health").json()
    assert h["ok"] and h["core_alive"] and h["transports"][0]["kind"] in ("sim", "input")
    mt = local.get("/api/metrics").json()
    assert mt["counters"]["frames"] > 0 and mt["nodes"]["known"] == 13
    prom = local.get("/api/metrics?format=prometheus")
    assert prom.status_code == 200 and "becomingone_frames_total" in prom.text
    err(local.get("/api/metrics?format=xml"), 422)


def test_a_command_reaches_a_sim_node_and_its_ack_is_an_event(local):
    r = local.post("/api/nodes/sim-0004/commands", json={"op": "led", "args": {"on": 1}},
                   headers=AUTH)
    assert r.status_code == 202, r.text
    cid = r.json()["id"]

    def acked():
        evs = local.get("/api/events?kind=ack&node=sim-0004").json()["events"]
        return any(e["text"] == f"sim-0004 command {cid} ok" for e in evs)
    assert wait_for(acked, 5)


@pytest.mark.parametrize("body,status,words", [
    ({"op": "led", "args": {"on": 1}, "extra": 1}, 422, "extra"),
    ({"args": {}}, 422, "op"),
    ({"op": ""}, 422, "op"),
    ({"op": "x" * 17}, 422, "op"),
    ({"op": "led", "args": {"k": 1.5}}, 422, "args"),
    ({"op": "led", "args": {f"k{i}": 1 for i in range(9)}}, 422, "args"),
    ({"op": "led", "args": {"on": 2**40}}, 422, "check the arguments"),
    ({"op": "led", "args": {"k" * 17: 1}}, 422, "check the arguments"),
    ({"op": "led", "args": {"txt": "é"}}, 422, "check the arguments"),
    ([1, 2], 422, "bad request"),
    ("not json", 422, "bad request"),
])
def test_malformed_commands_get_a_4xx_that_says_what(local, body, status, words):
    kw = {"content": body} if isinstance(body, str) else {"json": body}
    assert words in err(local.post("/api/nodes/sim-0001/commands", headers=AUTH, **kw), status)


def test_commands_to_unknown_or_unreachable_nodes(local):
    assert "unknown node" in err(local.post("/api/nodes/ghost/commands", json={"op": "ping"},
                                            headers=AUTH), 404)
    # The hub-side input is a node that takes no commands.
    assert "cannot reach" in err(local.post("/api/nodes/input-door/commands",
                                            json={"op": "ping"}, headers=AUTH), 409)


def test_hub_side_input_numbers(local, hub):
    assert local.get("/api/inputs").json()["inputs"][0]["node"] == "input-door"
    r = local.post("/api/inputs/door", json={"values": [math.sin(i / 3) for i in range(50)]},
                   headers=AUTH)
    assert r.status_code == 200 and r.json() == {"node": "input-door", "samples": 50}
    assert wait_for(lambda: (hub.nodes.report("input-door") or {}).get("n", 0) >= 50, 5)
    assert "no hub-side input" in err(local.post("/api/inputs/window", json={"values": [1]},
                                                 headers=AUTH), 404)
    for bad in ({"values": []}, {"values": ["x"]}, {"value": 1}, {"values": 3},
                {"values": [1] * 10001}):
        err(local.post("/api/inputs/door", json=bad, headers=AUTH), 422)
    for text in ('{"values": [NaN]}', '{"values": [Infinity]}', '{"values": [1e300]}'):
        r = local.post("/api/inputs/door", content=text,
                       headers={**AUTH, "Content-Type": "application/json"})
        assert "finite" in err(r, 422)


def test_rules_outputs_and_firing_from_the_api(local, hub):
    rules = {r["name"]: r for r in local.get("/api/rules").json()["rules"]}
    assert rules["tell the page"]["fired"] >= 1 and rules["tell the page"]["last_fired"]
    assert rules["never"]["fired"] == 0 and rules["never"]["when"] == "G > 2"
    assert local.get("/api/rules/never").json()["action"] == "websocket"
    err(local.get("/api/rules/nope"), 404)
    r = local.post("/api/rules/never/fire", headers=AUTH)
    assert r.status_code == 200 and r.json()["ok"]
    out = local.get("/api/outputs").json()
    assert out["adapters"]["websocket"]["sent"] >= 2 and out["recent"]
    assert any("fired from the web" in e["text"] for e in
               local.get("/api/events?kind=output").json()["events"])
    err(local.post("/api/rules/nope/fire", headers=AUTH), 404)


def test_events_are_paged_and_the_log_is_chained(local):
    # hello events stopped coming at start-up: a stable list on a live hub
    # (unless 200 newer events pushed them out of the hub's recent ones).
    all_ = local.get("/api/events?limit=500&kind=hello").json()
    page = local.get("/api/events?offset=3&limit=4&kind=hello").json()
    assert page["events"] == all_["events"][3:7] and page["total"] == all_["total"]
    ts = [e["t"] for e in all_["events"]]
    assert ts == sorted(ts, reverse=True)  # newest first
    assert all(e["kind"] == "hello" for e in all_["events"])
    err(local.get("/api/events?limit=0"), 422)
    err(local.get("/api/events?offset=-1"), 422)
    log = local.get("/api/log?limit=5").json()
    assert log["entries"][0]["seq"] == log["head"]["seq"]
    assert log["entries"][0]["prev"] == log["entries"][1]["hash"]


def test_memories_similar_and_recall(local, hub):
    hub.store.remember("collapse", hub.nodes.signature(["sim-0001"]), 0.9, hub.clock())
    mems = local.get("/api/memories?signature=true").json()
    assert mems["total"] >= 1 and mems["memories"][0]["strength"] > 0.5
    assert "signature" in mems["memories"][0]
    sim = local.get("/api/memories/similar?nodes=sim-0001&k=3").json()
    assert sim["query_nodes"] == 1 and sim["matches"] and sim["matches"][0]["similarity"] > 0
    err(local.get("/api/memories/similar?nodes=ghost"), 404)
    r = local.post("/api/memories/recall", json={"nodes": ["sim-0001"], "k": 2, "boost": 0.5},
                   headers=AUTH)
    assert r.status_code == 200 and r.json()["recalled"], (r.text, sim)
    assert r.json()["recalled"][0]["strength"] > 0.5
    err(local.post("/api/memories/recall", json={"k": 0}, headers=AUTH), 422)
    err(local.post("/api/memories/recall", json={"boost": 2}, headers=AUTH), 422)
    err(local.post("/api/memories/recall", json={"nodes": [""]}, headers=AUTH), 422)


def test_unknown_paths_and_methods_are_json_errors(local):
    assert "no such endpoint" in err(local.get("/api/nothing"), 404)
    assert "not allowed" in err(local.delete("/api/nodes"), 405)
    assert "not allowed" in err(local.post("/api/mesh", headers=AUTH), 405)
    assert local.get("/").status_code == 200 and "BecomingONE" in local.get("/").text
    assert local.get("/static/app.js").status_code == 200


def test_an_internal_error_is_a_json_500_and_the_hub_runs_on(hub, monkeypatch):
    app = create_app(hub, TOKEN)
    with TestClient(app, client=("127.0.0.1", 1), raise_server_exceptions=False) as c:
        monkeypatch.setattr(hub.store, "memories", lambda now: 1 / 0)
        assert "internal error (ZeroDivisionError)" in err(c.get("/api/memories"), 500)
        monkeypatch.undo()
        assert c.get("/api/health").json()["ok"]


def test_the_hub_is_fine_after_all_that(local, hub):
    ticks = hub.counters["ticks"]
    assert wait_for(lambda: hub.counters["ticks"] > ticks + 2, 3)
    assert local.get("/api/health").json()["ok"]


# -- the WebSocket ---------------------------------------------------------------------

def _until(ws, kind, n=50):
    for _ in range(n):
        m = ws.receive_json()
        if m["type"] == kind:
            return m
    raise AssertionError(f"no {kind} message in {n}")


def test_ws_subscribe_decimate_and_recover_from_bad_messages(local, hub):
    with local.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and "channels" in hello["fields"]
        ws.send_json({"subscribe": {"nodes": "*", "fields": ["c", "online"], "max_rows": 5}})
        assert _until(ws, "subscribed")["max_rows"] == 5
        st = _until(ws, "state")
        assert st["cols"] == ["node", "c", "online"] and len(st["rows"]) <= 5
        assert st["n_nodes"] == 13 and 0 <= st["mesh"]["G"] <= 1
        for bad in ("nope", "[]", '{"subscribe": {"fields": ["secret"]}}',
                    '{"subscribe": {"max_hz": 0}}', '{"subscribe": {"nodes": 5}}',
                    '{"subscribe": {"color": 1}}', '{"hack": 1}', "x" * 70000):
            ws.send_text(bad)
            assert _until(ws, "error")["error"]
        ws.send_json({"subscribe": {"nodes": ["sim-0002", "ghost"], "fields": ["channels"],
                                    "max_hz": 2}})
        sub = _until(ws, "subscribed")
        assert sub["max_hz"] == 2
        st = _until(ws, "state")
        assert st["n_nodes"] == 1 and all(r[0] == "sim-0002" for r in st["rows"])
        ws.send_json({"ping": 7})
        assert _until(ws, "pong")["ping"] == 7
    assert wait_for(lambda: not local.app.state.feed.clients, 3)
    assert local.app.state.feed.on_hub not in hub.subscribers  # no client: no per-node cost


def test_ws_forwards_rule_broadcasts_and_events(local, hub):
    with local.websocket_connect("/ws") as ws:
        ws.receive_json()
        m = _until(ws, "rule", 100)  # "tell the page" fires once a second
        assert m["rule"] == "tell the page" and m["message"] == "hello page"
        local.post("/api/nodes/sim-0007/commands", json={"op": "ping"}, headers=AUTH)
        for _ in range(100):
            st = _until(ws, "state")
            if any(e["kind"] == "ack" and e["node"] == "sim-0007" for e in st.get("events", [])):
                break
        else:
            raise AssertionError("the ack never came over the feed")


def test_ws_off_loopback_needs_the_token(remote):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as e, remote.websocket_connect("/ws") as ws:
        ws.receive_json()
    assert e.value.code == 4401
    with remote.websocket_connect(f"/ws?token={TOKEN}") as ws:
        assert ws.receive_json()["type"] == "hello"


# -- many readers at once (last: it adds 300 nodes to the module's hub) -----------------

HAMMERED = ["/api/nodes", "/api/nodes/sim-0003", "/api/nodes/sim-0003/spectrum", "/api/mesh",
            "/api/events?limit=500", "/api/memories/similar", "/api/metrics", "/api/health",
            "/api/rules", "/api/outputs"]


def test_many_threads_read_while_new_nodes_arrive_and_never_get_a_500(app, local, hub):
    """Four client threads read every view, and fire a rule, while 300 new
    nodes arrive (the core's dicts grow under them) and a WebSocket takes
    the feed: no error from a dict changing size, no 500, no feed error."""
    from support.frames import Frames

    frames = Frames(boot=11)
    web_errors, feed_errors = hub.log.counts.get("web", 0), app.state.feed.stats["errors"]
    known = hub.registry.count()
    done, bad, reads = threading.Event(), [], [0] * 4

    def newcomers():
        for i in range(300):
            node = f"input-hammer-{i:03d}"  # (input-*: the core does not ping these)
            now = time.time()
            for f in (frames.hello(0, node=node), frames.report(1, node=node),
                      frames.event(2, node=node), frames.report(3, node=node)):
                hub.sink(f, "input", now, None)
            time.sleep(0.002)

    def reader(k):
        with TestClient(app, client=("127.0.0.1", 51000 + k),
                        raise_server_exceptions=False) as c:  # (a 500 is an answer here)
            while not done.is_set():
                try:
                    for path in HAMMERED:
                        r = c.get(path)
                        if r.status_code not in ((200, 409) if "similar" in path else (200,)):
                            bad.append((path, r.status_code, r.text[:200]))
                    r = c.post("/api/rules/never/fire", headers=AUTH)
                    if r.status_code != 200:
                        bad.append(("fire", r.status_code, r.text[:200]))
                except Exception as e:  # noqa: BLE001 - any is the failure
                    bad.append(repr(e))
                    return
                reads[k] += 1

    writer = threading.Thread(target=newcomers)
    readers = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    states, interval = 0, sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    with local.websocket_connect("/ws") as ws:
        ws.receive_json()
        writer.start()
        for r in readers:
            r.start()
        try:
            for _ in range(3000):  # (10 messages a second at most: bounded by the writer)
                states += ws.receive_json()["type"] == "state"
                if not writer.is_alive() and min(reads) >= 3:
                    break
        finally:
            writer.join(30)
            done.set()
            for r in readers:
                r.join(30)
            sys.setswitchinterval(interval)
    assert not bad, bad[:5]
    assert states > 0 and min(reads) >= 3, (states, reads)
    assert wait_for(lambda: hub.registry.count() == known + 300, 10)
    assert wait_for(lambda: len(local.get("/api/nodes").json()["nodes"]) == known + 300, 10)
    assert hub.log.counts.get("web", 0) == web_errors  # the 500 handler logs as "web"
    assert app.state.feed.stats["errors"] == feed_errors
