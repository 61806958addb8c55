"""becomingone.outputs over the network: the mqtt adapter against a real Mosquitto,
webhooks against a real http.server (retries, timeouts, a full queue).
127.0.0.1 only, every wait bounded.  The rest: tests/hub/test_outputs.py."""
import http.server
import json
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from support.rigs import wait_for
from support.rules import rule_toml, state

from becomingone.outputs import OutputContext, mapping
from becomingone.rules.router import Router

# --- mqtt against a real Mosquitto -------------------------------------------------------------

class Sub:
    def __init__(self, broker, topic="becomingone/#"):
        self.msgs, self.ready = [], threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda c, u, m: self.msgs.append((m.topic, m.payload, m.retain))
        c.connect(broker.host, broker.port, keepalive=5)
        c.loop_start()
        assert self.ready.wait(5)
        self.c = c

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def test_mqtt_publishes_the_state_json_retained_only_where_allowed(mosquitto):
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect(mosquitto.host, mosquitto.port, keepalive=5)
    pub.loop_start()
    infos = []

    def publish(topic, payload, qos, retain):
        infos.append(pub.publish(topic, payload, qos, retain))

    live = Sub(mosquitto)
    try:
        text = (rule_toml("mqtt", "retain = true\nqos = 1", name="state")
                + rule_toml("mqtt", 'topic = "becomingone/hub/event"\nqos = 1', name="event"))
        router = Router.from_config(text, OutputContext(mqtt_publish=publish))
        recs = router.tick(state(42.0))
        assert [r["ok"] for r in recs] == [True, True]
        for info in infos:
            info.wait_for_publish(5)
        assert wait_for(lambda: len(live.msgs) == 2)
        by_topic = {t: (json.loads(p), r) for t, p, r in live.msgs}
        body, retained = by_topic["becomingone/hub/state"]
        assert body == mapping.state_json(state(42.0)) and retained is False  # live delivery
        assert by_topic["becomingone/hub/event"][0]["coherence"] == 0.9

        late = Sub(mosquitto)  # a new subscriber gets only the retained state, flagged
        try:
            assert wait_for(lambda: len(late.msgs) >= 1)
            time.sleep(0.2)  # anything else the broker would send has arrived by now
            assert [(t, r) for t, _, r in late.msgs] == [("becomingone/hub/state", True)]
            assert json.loads(late.msgs[0][1])["t"] == 42.0
        finally:
            late.close()
        assert router.stats()["adapters"]["mqtt"]["sent"] == 2
    finally:
        live.close()
        pub.disconnect()
        pub.loop_stop()
    nolink = Router.from_config(rule_toml("mqtt"), OutputContext())
    assert nolink.tick(state(0.0))[0]["error"] == "no MQTT connection"


# --- webhook against a real http.server ---------------------------------------------------------

class Hook:
    """An http.server on 127.0.0.1 answering each POST with the next status."""

    def __init__(self, statuses=(200,)):
        self.statuses, self.bodies = list(statuses), []
        hook = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers["Content-Length"])
                hook.bodies.append((self.path, self.headers["Content-Type"],
                                    json.loads(self.rfile.read(n))))
                code = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook?x=1"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def hook():
    made = []

    def make(statuses=(200,)):
        made.append(Hook(statuses))
        return made[-1]

    yield make
    for h in made:
        h.close()


def webhook_router(url, params="", when="G > 0.5", edge=""):
    text = rule_toml("webhook", f'url = "{url}"\n{params}', name="hook", when=when, extra=edge)
    return Router.from_config(text, OutputContext())


def test_webhook_posts_the_state_json_with_the_rule_name(hook):
    h = hook()
    router = webhook_router(h.url)
    try:
        assert router.tick(state(7.0))[0]["ok"]
        wh = router.adapters["webhook"]
        assert wait_for(lambda: wh.stats()["sent"] == 1)
        ((path, ctype, body),) = h.bodies
        assert path == "/hook?x=1" and ctype == "application/json"
        assert body == {**mapping.state_json(state(7.0)), "rule": "hook"}
        assert wh.stats()["failed"] == 0 and wh.queued() == 0
    finally:
        router.close()


def test_webhook_retries_a_500_then_succeeds_and_gives_up_on_a_404(hook):
    h = hook([500, 500, 200])
    router = webhook_router(h.url, "retries = 3\nbackoff = 0.01")
    try:
        router.tick(state(0.0))
        wh = router.adapters["webhook"]
        assert wait_for(lambda: wh.stats()["sent"] == 1)
        st = wh.stats()
        assert len(h.bodies) == 3 and st["retries"] == 2 and st["failed"] == 0
    finally:
        router.close()
    h404 = hook([404])
    router = webhook_router(h404.url, "retries = 3\nbackoff = 0.01")
    try:
        router.tick(state(0.0))
        wh = router.adapters["webhook"]
        assert wait_for(lambda: wh.stats()["failed"] == 1)
        assert len(h404.bodies) == 1 and "HTTP 404" in wh.last_error
    finally:
        router.close()
    h500 = hook([500])
    router = webhook_router(h500.url, "retries = 2\nbackoff = 0.01")
    try:
        router.tick(state(0.0))
        wh = router.adapters["webhook"]
        assert wait_for(lambda: wh.stats()["failed"] == 1)
        assert len(h500.bodies) == 3 and wh.stats()["sent"] == 0
    finally:
        router.close()


@pytest.fixture
def silent():
    """A TCP port that accepts connections (backlog) but never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}/"
    s.close()


def test_webhook_never_answering_times_out_counted_and_tick_does_not_wait(silent):
    router = webhook_router(silent, "timeout = 0.3\nretries = 1\nbackoff = 0.01")
    wh = router.adapters["webhook"]
    try:
        recs = router.tick(state(0.0))
        # tick has returned with the POST accepted but not finished: it did not wait for it
        assert recs[0]["ok"] and wh.queued() == 1
        assert wh.stats()["sent"] == 0 and wh.stats()["failed"] == 0
        assert wait_for(lambda: wh.stats()["failed"] == 1)
        st = wh.stats()
        assert st["timeouts"] == 2 and st["retries"] == 1 and st["queued"] == 0
        assert "timeout" in st["last_error"]
    finally:
        router.close()


def test_webhook_queue_full_drops_and_counts(silent):
    router = webhook_router(silent, "timeout = 0.5\nretries = 0\nqueue = 1", edge="edge = false")
    wh = router.adapters["webhook"]
    try:
        assert router.tick(state(0.0))[0]["ok"]
        (w,) = wh.workers.values()
        assert wait_for(lambda: w.busy == 1)  # the first POST is in flight
        assert router.tick(state(0.1))[0]["ok"]  # the second waits in the queue
        rec = router.tick(state(0.2))[0]  # no room for the third
        assert not rec["ok"] and "queue full" in rec["error"]
        st = wh.stats()
        assert (st["dropped"], st["failed"], st["queued"]) == (1, 1, 2)
    finally:
        # close() is bounded (one POST timeout): it returns while the server
        # still holds the first POST.
        closer = threading.Thread(target=router.close)
        closer.start()
        closer.join(30)
        assert not closer.is_alive()
    assert wh.stats()["discarded"] == 1
