"""hub.outputs and hub.mapping: the §8 mappings, the Router, and each adapter —
MQTT against a real Mosquitto, webhooks against a real http.server, the
speaker's WAV content, display colours, node commands.  Network: 127.0.0.1 only,
every wait bounded."""
import http.server
import json
import math
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import wave

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from broker import mosquitto  # noqa: F401 (fixture)

from hub import mapping
from hub.outputs import Adapter, OutputContext, Router, make_adapter
from hub.outputs.speaker import RATE
from hub.rules import Rule, RuleError, parse_rules


def state(t=0.0, G=0.9, psi=complex(0.6, -0.2), **kw):
    s = {"t": t, "G": G, "R": 0.8, "psi": psi, "emerged": True, "since": 1.5,
         "participants": ["kitchen-1", "hall-2"], "surprise": 0.1, "witness_event": False,
         "nodes": {"kitchen-1": {"online": True, "c": 0.7, "tau": 0.25, "collapsed": False,
                                 "aligned": True, "caps": ["led", "neopixel"],
                                 "channels": [{"name": "mic", "c": 0.9, "k": 2,
                                               "collapsed": False}]}}}
    s.update(kw)
    return s


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def rule_toml(action, params="", name="r", when="G > 0.5", extra=""):
    return (f'[[rules]]\nname = "{name}"\nwhen = "{when}"\naction = "{action}"\n{extra}\n'
            f"[rules.with]\n{params}\n")


class Recorder:
    """A send_command / broadcast / node_caps stand-in that records calls."""

    def __init__(self, caps=None):
        self.commands, self.messages = [], []
        self.caps = caps if caps is not None else {"kitchen-1": ["led", "neopixel", "mqtt"]}

    def send_command(self, node, op, args):
        if node not in self.caps:
            raise KeyError(f"unknown node {node!r}")
        self.commands.append((node, op, args))
        return len(self.commands)

    def node_caps(self, node):
        if node not in self.caps:
            raise KeyError(f"unknown node {node!r}")
        return self.caps[node]

    def broadcast(self, msg):
        json.dumps(msg)  # must be JSON-able
        self.messages.append(msg)

    def ctx(self, tmp_path=None, **kw):
        base = dict(send_command=self.send_command, node_caps=self.node_caps,
                    broadcast=self.broadcast)
        if tmp_path is not None:
            base["sound_dir"] = tmp_path
        base.update(kw)
        return OutputContext(**base)


# --- §8 mappings ------------------------------------------------------------------------

def test_mapping_values_by_hand():
    assert mapping.x_of(complex(0.6, 0.3)) == pytest.approx(0.8)
    assert mapping.x_of(-1) == 0.0 and mapping.x_of(1) == 1.0
    assert mapping.x_of(complex(3, 0)) == 1.0  # clamped
    assert mapping.x_of(complex(math.nan, 0)) == 0.5  # non-finite counts as 0
    assert mapping.speaker(complex(0.6, 0), 0.5) == pytest.approx((792.0, 0.5))
    assert mapping.speaker(-1, 1.7) == (440.0, 1.0)
    assert mapping.speaker(1, -0.1) == (880.0, 0.0)
    assert mapping.motor(complex(0.6, -0.25)) == pytest.approx((0.6, -0.25))
    assert mapping.motor(complex(-1, 2)) == (-1.0, 1.0)


@pytest.mark.parametrize("psi_re, G, hue, rgb", [
    (0.0, 1.0, 180.0, (0, 255, 255)),                 # x = 1/2: cyan
    (-1.0, 1.0, 0.0, (255, 0, 0)),                    # x = 0: red
    (1.0, 0.2, 360.0, (51, 0, 0)),                    # x = 1: red again, 0.2·255 = 51
    (-1 / 3, 0.4, 120.0, (0, 102, 0)),                # x = 1/3: green, 0.4·255 = 102
    (-2 / 3, 0.6, 60.0, (153, 153, 0)),               # x = 1/6: yellow
    (-5 / 6, 0.8, 30.0, (204, 102, 0)),               # hue 30: g = v/2 = 102
    (1 / 3, 1.0, 240.0, (0, 0, 255)),                 # x = 2/3: blue
    (0.5, 0.0, 270.0, (0, 0, 0)),                     # dark
])
def test_display_colours_by_hand(psi_re, G, hue, rgb):
    h, b, c = mapping.display(complex(psi_re, 0.4), G)
    assert h == pytest.approx(hue) and b == G and c == rgb


def test_state_json_is_the_spec_body_and_json_safe():
    body = mapping.state_json(state(t=12.5))
    assert body == {"coherence": 0.9, "phase": {"real": 0.6, "imag": -0.2}, "R": 0.8,
                    "emerged": True, "since": 1.5, "participants": ["kitchen-1", "hall-2"],
                    "t": 12.5}
    odd = mapping.state_json({"t": 1.0, "G": math.nan, "psi": complex(math.inf, 0),
                              "since": None})
    assert odd["coherence"] is None and odd["phase"]["real"] is None and odd["since"] is None
    assert odd["R"] is None and odd["emerged"] is False and odd["participants"] == []
    json.loads(json.dumps(odd, allow_nan=False))


# --- Router ------------------------------------------------------------------------------

class Flaky(Adapter):
    name = "flaky"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.calls = []

    def fire(self, rule, state, params):
        self.calls.append((rule.name, state["t"]))
        if state["G"] > 0.95:
            raise RuntimeError("boom")
        self.count("sent")


def test_router_tick_records_stats_and_never_raises():
    rules = [Rule("always", "G > 0", "websocket", edge=False),
             Rule("high", "G > 0.95", "websocket")]
    flaky = Flaky(OutputContext())
    router = Router(rules, {"websocket": flaky})
    assert router.tick(state(0.0, G=0.5)) == [
        {"rule": "always", "action": "websocket", "t": 0.0, "ok": True, "error": None}]
    recs = router.tick(state(0.1, G=0.99))
    assert [(r["rule"], r["ok"], r["error"]) for r in recs] == [
        ("always", False, "boom"), ("high", False, "boom")]
    # a malformed state is counted on the rules, never raised
    assert router.tick({"G": 0.5}) == []
    assert router.tick({"t": 0.3, "G": "x"}) == []
    for i in range(150):
        router.tick(state(1.0 + i * 0.1, G=0.5))
    assert len(router.recent) == 100 and router.recent[-1]["t"] == pytest.approx(15.9)
    st = router.stats()
    assert st["rules"]["always"]["fired"] == 152 and st["rules"]["high"]["fired"] == 1
    assert st["rules"]["high"]["last_fired"] == 0.1
    assert st["rules"]["always"]["errors"] == 2  # no "t"; G not a number
    assert "EvalError" not in st["rules"]["always"]["last_error"]
    a = st["adapters"]["websocket"]
    assert (a["sent"], a["failed"], a["queued"]) == (151, 2, 0)
    assert "boom" in a["last_error"]
    router.close()


def test_router_needs_an_adapter_for_every_action():
    with pytest.raises(RuleError, match="no adapter for action"):
        Router([Rule("r", "G > 0", "mqtt")], {})


def test_from_config_builds_only_the_adapters_used_and_imports_lazily():
    code = (
        "import sys\n"
        "from hub.outputs import Router, OutputContext\n"
        "r = Router.from_config('[[rules]]\\nname=\"a\"\\nwhen=\"G>0\"\\naction=\"websocket\"\\n',"
        " OutputContext())\n"
        "print(sorted(r.adapters), sorted(m for m in sys.modules if m.startswith('hub.outputs.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "['websocket'] ['hub.outputs.websocket']"


def test_from_config_rejects_bad_rules_with_line():
    text = rule_toml("websocket") + "\n" + rule_toml("mqtt", 'topic = "a/cmd"\nretain = true',
                                                      name="b")
    with pytest.raises(RuleError, match=r"^rules\[1\] \(line 9\): 'with.retain': .*never"):
        Router.from_config(text, OutputContext())


# --- websocket / node / display ---------------------------------------------------------------

def test_websocket_broadcasts_a_rule_message():
    rec = Recorder()
    router = Router.from_config(rule_toml("websocket", 'message = "hello"', name="w"), rec.ctx())
    assert router.tick(state(3.0))[0]["ok"]
    assert rec.messages == [{"type": "rule", "rule": "w", "message": "hello",
                             **mapping.state_json(state(3.0))}]
    none = Router.from_config(rule_toml("websocket"), OutputContext())
    assert none.tick(state(0.0))[0]["error"] == "no WebSocket broadcast"


def test_node_adapter_sends_out_commands_and_counts_failures():
    rec = Recorder(caps={"kitchen-1": ["led", "mqtt"], "hall-2": ["neopixel"]})
    text = (rule_toml("node", 'node = "kitchen-1"\nname = "led"\non = true', name="led")
            + rule_toml("node", 'node = "hall-2"\nname = "px"\nrgb = [1, 2, 3]\ni = 2',
                        name="px")
            + rule_toml("node", 'node = "garage"\nname = "led"', name="unknown")
            + rule_toml("node", 'node = "kitchen-1"\nname = "m"\nduty = 30000', name="motor"))
    router = Router.from_config(text, rec.ctx())
    recs = {r["rule"]: r for r in router.tick(state(0.0))}
    assert rec.commands == [("kitchen-1", "out", {"name": "led", "on": 1}),
                            ("hall-2", "out", {"name": "px", "rgb": [1, 2, 3], "i": 2})]
    assert recs["led"]["ok"] and recs["px"]["ok"]
    assert not recs["unknown"]["ok"] and "unknown node" in recs["unknown"]["error"]
    assert not recs["motor"]["ok"]
    assert "no motor or buzzer output (caps: led, mqtt)" in recs["motor"]["error"]
    st = router.stats()["adapters"]["node"]
    assert (st["sent"], st["failed"]) == (2, 2)
    # without caps (None) nothing is checked: send_command decides
    plain = Router.from_config(rule_toml("node", 'node = "kitchen-1"\nname = "m"\nduty = 1'),
                               rec.ctx(node_caps=None))
    assert plain.tick(state(0.0))[0]["ok"] and rec.commands[-1][2] == {"name": "m", "duty": 1}
    nolink = Router.from_config(rule_toml("node", 'node = "kitchen-1"\nname = "led"'),
                                OutputContext())
    assert nolink.tick(state(0.0))[0]["error"] == "no command link to nodes"


def test_display_sends_the_colour_to_the_pixel_and_broadcasts():
    rec = Recorder(caps={"kitchen-1": ["neopixel"], "hall-2": ["led"]})
    router = Router.from_config(rule_toml("display", 'node = "kitchen-1"', name="d"), rec.ctx())
    # hue 30 (x = 1/12, Re psi = -5/6), brightness 0.8 -> (204, 102, 0)
    recs = router.tick(state(0.0, G=0.8, psi=complex(-5 / 6, 0.1)))
    assert recs[0]["ok"], recs
    assert rec.commands == [("kitchen-1", "out", {"name": "pixel", "rgb": [204, 102, 0]})]
    (msg,) = rec.messages
    assert msg["type"] == "display" and msg["rgb"] == [204, 102, 0]
    assert msg["hue"] == pytest.approx(30.0) and msg["brightness"] == 0.8

    # output name and pixel index; a node without a neopixel fails but the page still gets it
    rec2 = Recorder(caps={"kitchen-1": ["neopixel"], "hall-2": ["led"]})
    text = (rule_toml("display", 'node = "kitchen-1"\noutput = "ring"\ni = 3', name="a")
            + rule_toml("display", 'node = "hall-2"', name="b"))
    recs = Router.from_config(text, rec2.ctx()).tick(state(0.0, G=1.0, psi=0j))
    assert rec2.commands == [("kitchen-1", "out", {"name": "ring", "rgb": [0, 255, 255],
                                                   "i": 3})]
    assert recs[0]["ok"] and not recs[1]["ok"] and "no neopixel output" in recs[1]["error"]
    assert len(rec2.messages) == 2

    # page only; and nowhere at all
    rec3 = Recorder()
    assert Router.from_config(rule_toml("display"), rec3.ctx()).tick(state(0.0))[0]["ok"]
    assert rec3.commands == [] and rec3.messages[0]["rgb"] == list(
        mapping.display(state()["psi"], 0.9)[2])
    nowhere = Router.from_config(rule_toml("display"), OutputContext()).tick(state(0.0))
    assert "nowhere to display" in nowhere[0]["error"]


# --- speaker ------------------------------------------------------------------------------------

def read_wav(path):
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)


@pytest.mark.parametrize("psi_re, G, seconds", [(0.6, 0.5, 0.5), (-1.0, 1.0, 0.25),
                                                 (1.0, 0.1, 1.0)])
def test_speaker_wav_has_the_mapped_frequency_and_volume(tmp_path, monkeypatch, psi_re, G,
                                                        seconds):
    monkeypatch.setattr("hub.outputs.speaker.shutil.which", lambda name: None)
    params = "play = true" + (f"\nseconds = {seconds}" if seconds != 0.5 else "")
    router = Router.from_config(rule_toml("speaker", params, name="chime / one", when="G >= 0"),
                                OutputContext(sound_dir=tmp_path / "snd"))
    assert router.tick(state(0.0, G=G, psi=complex(psi_re, 0.3)))[0]["ok"]
    freq = 440 + 440 * (1 + psi_re) / 2
    files = list((tmp_path / "snd").iterdir())
    assert len(files) == 1 and files[0].suffix == ".wav" and "/" not in files[0].name
    y = read_wav(files[0])
    assert len(y) == round(seconds * RATE)
    # frequency from zero crossings (rising) over the steady part, and from the FFT peak
    mid = y[len(y) // 10: -len(y) // 10]
    rising = np.flatnonzero((mid[:-1] < 0) & (mid[1:] >= 0))
    f_zc = (len(rising) - 1) / ((rising[-1] - rising[0]) / RATE)
    assert f_zc == pytest.approx(freq, rel=0.005)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
    f_fft = np.argmax(spec) * RATE / (8 * len(y))
    assert f_fft == pytest.approx(freq, abs=RATE / len(y) / 4)
    # amplitude: peak = G * 32767 (within the rounding of a sampled sine), fades at the ends
    assert np.max(np.abs(mid)) == pytest.approx(G * 32767, rel=0.01)
    assert np.max(np.abs(mid)) <= G * 32767 + 0.5
    assert abs(y[0]) < 0.05 * 32767 * G + 1 and abs(y[-1]) < 0.05 * 32767 * G + 1
    st = router.stats()["adapters"]["speaker"]
    assert (st["sent"], st["no_player"]) == (1, 1)


def test_speaker_plays_with_aplay_in_the_background(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "aplay.log"
    aplay = bindir / "aplay"
    aplay.write_text(f'#!/bin/sh\necho "$@" >> {log}\nsleep 0.2\n')
    aplay.chmod(aplay.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    router = Router.from_config(rule_toml("speaker", "seconds = 0.1", extra="edge = false"),
                                OutputContext(sound_dir=tmp_path / "snd"))
    sp = router.adapters["speaker"]
    for i in range(3):  # third one finds two players still running: skipped as busy
        assert router.tick(state(i * 0.1))[0]["ok"]
    assert len(sp.players) == 2 and sp.stats()["busy"] == 1
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2)
    assert log.read_text().splitlines()[0] == f"-q {sp.last_file}"
    router.close()
    assert sp.players == []


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


def test_mqtt_publishes_the_state_json_retained_only_where_allowed(mosquitto):  # noqa: F811
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
        t0 = time.monotonic()
        router.close()
        assert time.monotonic() - t0 < 3.0  # close is bounded (one POST timeout)
    assert wh.stats()["discarded"] == 1


def test_make_adapter_unknown_action():
    with pytest.raises(RuleError, match="unknown action"):
        make_adapter("email", OutputContext())
    assert parse_rules(rule_toml("webhook", 'url = "http://10.0.0.1:8080"'))[0].params == {
        "url": "http://10.0.0.1:8080", "timeout": 2.0, "retries": 3, "backoff": 0.5,
        "queue": 100}
