"""The hub's config and start-up errors: every setting has a default, a bad
file says where and why in one line, hub-side inputs become virtual nodes."""
import json
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from support.broker import mosquitto  # noqa: F401 (fixture)
from support.rigs import wait_for

from becomingone import config, run
from becomingone.logs import Log
from becomingone.transports.inputs import InputError, Inputs, parse_numbers


def becomingone(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "becomingone", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_no_file_means_defaults():
    cfg = config.load(None)
    assert cfg["mesh"] == {"enter": 0.75, "leave": 0.70, "dwell": 3.0, "stale_periods": 3.0}
    assert cfg["web"]["host"] == "127.0.0.1" and not cfg["mqtt"]["enabled"]


@pytest.mark.parametrize("text,said", [
    ('[mqtt]\nport = "1883"', "[mqtt] port: must be int"),
    ("[mqtt]\nport = 70000", "[mqtt] port: must be 1..65535"),
    ("[mesh]\nenter = 0.6", "[mesh] leave: must satisfy 0 < leave <= enter <= 1"),
    ("[mesh]\nentre = 0.8", "[mesh] entre: unknown key"),
    ("[meshh]\nenter = 0.8", "[meshh]: unknown section"),
    ("[witness]\nbeta = 1.5", "[witness] beta: must be in (0, 1)"),
    ('[mqtt]\npassword = 5', "[mqtt] password: must be str, got ***"),
    ("[hub\n", "hub.toml:"),
    ("[master]\ntaus = []", "[master] taus: must be a non-empty list"),
    ('[nodes.k1]\nweight = "heavy"', "[nodes.k1] weight: must be a finite number > 0"),
    ("[nodes.k1]\nweight = 0", "[nodes.k1] weight: must be a finite number > 0"),
    ("[nodes.k1]\nweight = -2.0", "[nodes.k1] weight: must be a finite number > 0"),
    ("[nodes.k1]\nweight = inf", "[nodes.k1] weight: must be a finite number > 0"),
    ("[nodes.k1]\nweight = true", "[nodes.k1] weight: must be a finite number > 0"),
    ("[nodes.k1]\nwieght = 2", "[nodes.k1] wieght: unknown key (known: weight)"),
    ('[ble]\nnames = "n1"', "[ble] names: must be list"),
    ("[ble]\ndevices = [1]", "[ble] devices: must be a list of strings"),
    ("[ble]\nscan = 0", "[ble] scan: must be in (0, 600]"),
    ("[serial]\nports = [3]", "[serial] ports: must be a list of strings"),
    ("[witness]\nrefractory = -1", "[witness] refractory: must be >= 0"),
])
def test_bad_config_names_section_and_key(text, said):
    with pytest.raises(config.HubConfigError) as e:
        config.parse(text)
    assert said in str(e.value)


@pytest.mark.parametrize("text,said", [
    ("[mesh]\nenter = 'high'\n", "[mesh] enter: must be float"),
    ("[[rules]]\nname = 'x'\nwhen = 'G >'\naction = 'mqtt'\n", "rules[0] (line 1)"),
    ("[[rules]]\nname = 'x'\nwhen = '__import__(\"os\")'\naction = 'mqtt'\n", "rules[0]"),
    ("[[inputs]]\nname = 'a b'\n", "inputs[0] name"),
    ("[[inputs]]\nname = 'door'\ns = 99\n", "inputs[0] s must be"),
    ("[[inputs]]\nname = 'door'\nscale = 'abc'\n", "inputs[0] scale: must be a finite"),
    ("[[inputs]]\nname = 'door'\nevery = 2.5\n", "inputs[0] every: must be an int"),
    ("[[inputs]]\nname = 'door'\nmqtt_topic = 'a/#'\n", "inputs[0] mqtt_topic"),
    ("[nodes.k1]\nweight = 'heavy'\n", "[nodes.k1] weight"),
])
def test_hub_refuses_a_bad_config_in_one_line(tmp_path, text, said):
    f = tmp_path / "hub.toml"
    f.write_text(text)
    r = becomingone("hub", "--config", str(f), "--seconds", "1", "--no-web")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("becomingone: ") and said in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_json_logs_are_json_lines(tmp_path):
    r = becomingone("demo", "--nodes", "3", "--seconds", "3", "--status", "1", "--json-logs",
                    "--no-web")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stderr.splitlines() if ln.strip()]
    kinds = {rec["kind"] for rec in lines}
    assert {"hello", "status"} <= kinds
    assert all({"t", "kind", "msg"} <= set(rec) for rec in lines)


def test_parse_numbers():
    assert parse_numbers(b"12.5") == [12.5]
    assert parse_numbers(b"[1, 2, 3]") == [1.0, 2.0, 3.0]
    assert parse_numbers(b'{"value": -4}') == [-4.0]
    assert parse_numbers(b"t=1 v=2e3") == [1.0, 2000.0]
    assert parse_numbers(b"garbage") == []


def test_inputs_reject_bad_entries():
    with pytest.raises(InputError, match="inputs\\[1\\] name: 'door' is used twice"):
        Inputs([{"name": "door"}, {"name": "door"}], lambda *a: None)
    with pytest.raises(InputError, match="inputs\\[0\\] lags must"):
        Inputs([{"name": "door", "lags": [4, 2]}], lambda *a: None)


def test_a_mqtt_topic_becomes_a_virtual_node(tmp_path, mosquitto):  # noqa: F811
    cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mqtt]
enabled = true
host = "{mosquitto.host}"
port = {mosquitto.port}
[[inputs]]
name = "door"
mqtt_topic = "house/door/level"
scale = 1000.0
every = 16
lags = [4, 8, 16]
s = 6
""")
    log = Log(quiet=("transport", "collapse", "hello", "witness"))
    hub = run.build(cfg, log)
    hub.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="door-sensor")
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    try:
        time.sleep(0.5)  # the inputs client subscribes
        import math

        for blk in range(40):  # a period-16 rhythm, 16 numbers a message
            vals = [round(math.sin(2 * math.pi * (blk * 16 + j) / 16), 4) for j in range(16)]
            pub.publish("house/door/level", json.dumps(vals), qos=1).wait_for_publish(5)
        pub.publish("house/door/level", b"not a number", qos=1).wait_for_publish(5)
        inputs = next(t for t in hub.transports if t.kind == "input")
        # The bad message comes after the 40th report: wait for both.
        assert wait_for(lambda: len(hub.store.reports("input-door", 0)) >= 40
                        and inputs.counts.get("malformed") == 1, 10)
        rows = hub.store.reports("input-door", 0)
        assert len(rows) == 40
        assert rows[-1]["c"] > 0.9 * 32768
        assert hub.registry.nodes["input-door"].hello["board"] == "hub-input"
        assert inputs.counts.get("malformed") == 1
    finally:
        pub.loop_stop()
        pub.disconnect()
        hub.stop()


def test_ble_and_node_settings_are_taken():
    cfg = config.parse('[ble]\nnames = ["n1"]\ndevices = ["AA:BB"]\nscan = 2\n'
                       "[nodes.k1]\nweight = 3\n")
    assert cfg["ble"] == {"enabled": False, "names": ["n1"], "devices": ["AA:BB"], "scan": 2.0,
                          "rescan": 5.0}
    assert cfg.weight("k1", 1) == 3.0 and cfg.weight("other", 1) == 1.0
