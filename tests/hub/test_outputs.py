"""becomingone.outputs (adapters, the docs/kairos.md §8 mappings) and becomingone.rules.router
(the Router that fires them): the adapters that need no network — the
speaker's WAV content, display colours, node commands, websocket broadcasts.
MQTT and webhooks: tests/hub/test_outputs_net.py."""
import json
import math
import os
import stat
import subprocess
import sys
import wave

import numpy as np
import pytest
from support.rigs import wait_for
from support.rules import rule_toml, state

from becomingone.outputs import Adapter, OutputContext, ParamError, make_adapter, mapping
from becomingone.outputs.speaker import RATE
from becomingone.rules.parser import Rule, RuleError, parse_rules
from becomingone.rules.router import Router


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


# --- docs/kairos.md §8 mappings --------------------------------------------------------

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

    def fire(self, rule_name, state, params):
        self.calls.append((rule_name, state["t"]))
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
        "from becomingone.outputs import OutputContext\n"
        "from becomingone.rules.router import Router\n"
        "r = Router.from_config('[[rules]]\\nname=\"a\"\\nwhen=\"G>0\"\\naction=\"websocket\"\\n',"
        " OutputContext())\n"
        "print(sorted(r.adapters),"
        " sorted(m for m in sys.modules if m.startswith('becomingone.outputs.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    # mapping is the state -> JSON helper the websocket adapter uses; no other adapter loads
    assert out.strip() == ("['websocket'] ['becomingone.outputs.mapping', "
                           "'becomingone.outputs.websocket']")


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
    monkeypatch.setattr("becomingone.outputs.speaker.shutil.which", lambda name: None)
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


def test_make_adapter_unknown_action():
    with pytest.raises(ParamError, match="unknown action") as e:
        make_adapter("email", OutputContext())
    assert e.value.key == "action"
    assert parse_rules(rule_toml("webhook", 'url = "http://10.0.0.1:8080"'))[0].params == {
        "url": "http://10.0.0.1:8080", "timeout": 2.0, "retries": 3, "backoff": 0.5,
        "queue": 100}
