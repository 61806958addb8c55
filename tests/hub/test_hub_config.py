"""The hub's config and start-up errors: every setting has a default, the
whole file (sections, rules, inputs) is checked before the hub creates
anything, a bad file says file:line: where key: why in one line, and hub-side
inputs become virtual nodes over the MQTT transport's own connection."""
import io
import json

import paho.mqtt.client as mqtt
import pytest
from support.broker import Mosquitto
from support.cli import becomingone
from support.rigs import wait_for

from becomingone import config, run, transports
from becomingone.errors import BecomingOneError
from becomingone.logs import Log
from becomingone.tomllines import LineIndex
from becomingone.transports.inputs import InputError, Inputs, parse_numbers


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


# A file with a fault in each part; (what replaces "FAULT", the line, the key, the words).
FILE = """\
# a hub.toml
[hub]
tick_hz = 10

[mqtt]
enabled = false
FAULT_MQTT

[nodes.k1]
FAULT_NODE

[[inputs]]
name = "door"
FAULT_INPUT

[[rules]]
name = "ok"
when = "G > 0.5"
action = "websocket"

[[rules]]
name = "bad"
FAULT_RULE
action = "mqtt"
[rules.with]
topic = "house/state"
FAULT_WITH
"""
FAULTS = [
    ("FAULT_MQTT", "port = 70000", 7, "mqtt.port", "[mqtt] port: must be 1..65535, got 70000"),
    ("FAULT_MQTT", "backoff_max = 0.1", 7, "mqtt.backoff_max",
     "[mqtt] backoff_max: must be backoff_min..3600 seconds"),
    ("FAULT_MQTT", "prot = 1", 7, "mqtt.prot", "[mqtt] prot: unknown key"),
    ("FAULT_MQTT", "[meshh]", 7, "meshh", "[meshh]: unknown section"),
    ("FAULT_NODE", "weight = -1", 10, "nodes.k1.weight", "[nodes.k1] weight: must be a finite"),
    ("FAULT_INPUT", "s = 99", 14, "inputs.0.s", "inputs[0] s: must be an int in"),
    ("FAULT_INPUT", "every = 0", 14, "inputs.0.every", "inputs[0] every: must be 1..65535"),
    ("FAULT_INPUT", "colour = 1", 14, "inputs.0.colour", "inputs[0] colour: unknown key"),
    ("FAULT_RULE", 'when = "G >"', 23, "rules.1.when", "rules[1] when: syntax error"),
    ("FAULT_RULE", 'when = "G > 0"\nfor = -1', 24, "rules.1.for", "rules[1] for: must be a number"),
    # a missing key: the line of its table's header
    ("FAULT_RULE", "", 21, "rules.1.when", "rules[1] when: required"),
    ("FAULT_WITH", "qos = 3", 27, "rules.1.with.qos", "rules[1] with.qos: must be an integer"),
]


def _file(token, fault):
    text = FILE.replace(token, fault)
    if token != "FAULT_RULE":
        text = text.replace("FAULT_RULE", 'when = "G > 0"')
    for other in ("FAULT_MQTT", "FAULT_NODE", "FAULT_INPUT", "FAULT_WITH"):
        text = text.replace(other, "")
    return text


def test_the_fault_free_file_parses():
    cfg = config.parse(_file("FAULT_RULE", 'when = "R > 0"'))
    assert [(r.name, r.line) for r in cfg.rules] == [("ok", 16), ("bad", 21)]
    assert cfg.inputs == [{"name": "door"}]


@pytest.mark.parametrize("token,fault,line,key,said", FAULTS)
def test_each_error_names_file_line_and_key(token, fault, line, key, said):
    with pytest.raises(config.HubConfigError) as e:
        config.parse(_file(token, fault), "site/hub.toml")
    assert str(e.value).startswith(f"site/hub.toml:{line}: {said}"), str(e.value)
    assert (e.value.file, e.value.line, e.value.key) == ("site/hub.toml", line, key)
    assert isinstance(e.value, BecomingOneError)


def test_invalid_toml_names_the_line():
    with pytest.raises(config.HubConfigError, match=r"^x\.toml:3: invalid TOML: .*line 3"):
        config.parse("[hub]\ntick_hz = 10\ndb = \n", "x.toml")


@pytest.mark.parametrize("text,said", [
    ("[mesh]\nenter = 'high'\n", ":2: [mesh] enter: must be float"),
    ("[[rules]]\nname = 'x'\nwhen = 'G >'\naction = 'mqtt'\n", ":3: rules[0] when:"),
    ("[[rules]]\nname = 'x'\nwhen = '__import__(\"os\")'\naction = 'mqtt'\n",
     ":3: rules[0] when: __import__(...) is not allowed"),
    ("[[inputs]]\nname = 'a b'\n", ":2: inputs[0] name"),
    ("[[inputs]]\nname = 'door'\ns = 99\n", ":3: inputs[0] s: must be"),
    ("[[inputs]]\nname = 'door'\nscale = 'abc'\n", ":3: inputs[0] scale: must be a finite"),
    ("[[inputs]]\nname = 'door'\nevery = 2.5\n", ":3: inputs[0] every: must be an int"),
    ("[[inputs]]\nname = 'door'\nmqtt_topic = 'a/#'\n", ":3: inputs[0] mqtt_topic"),
    ("[nodes.k1]\nweight = 'heavy'\n", ":2: [nodes.k1] weight"),
    ("[memory]\nraw_days = 90.0\n", ":2: [memory] raw_days: must satisfy"),
])
def test_hub_refuses_a_bad_config_in_one_line_and_creates_nothing(tmp_path, text, said):
    f = tmp_path / "hub.toml"
    f.write_text(text)
    # Run where the default database (becomingone.db) would appear.
    r = becomingone("hub", "--config", str(f), "--seconds", "1", "--no-web", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"becomingone: {f}{said}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub.toml"]


def test_a_bad_rule_leaves_no_database_file(tmp_path):
    # The config's only fault is a rule; the database it names must not be made.
    db = tmp_path / "data" / "hub.db"
    db.parent.mkdir()
    f = tmp_path / "hub.toml"
    f.write_text(f'[hub]\ndb = "{db}"\n\n[[rules]]\nname = "r"\nwhen = "G > 0.5"\n'
                 'action = "webhook"\n[rules.with]\nurl = "ftp://x/"\n')
    r = becomingone("hub", "--config", str(f), "--seconds", "1", "--no-web")
    assert r.returncode == 1 and f"{f}:9: rules[0] with.url: only http://" in r.stderr, r.stderr
    assert list(db.parent.iterdir()) == []
    # The same file without the fault runs, and makes it.
    f.write_text(f.read_text().replace("ftp://x/", "http://127.0.0.1:9/"))
    r = becomingone("hub", "--config", str(f), "--seconds", "1", "--no-web", "--status", "0")
    assert r.returncode == 0, r.stderr
    assert db.exists()


def test_a_hub_with_no_transport_says_so(tmp_path):
    r = becomingone("hub", "--db", str(tmp_path / "hub.db"), "--seconds", "1", "--no-web",
                    "--status", "0")
    assert r.returncode == 0, r.stderr
    assert "no transport enabled" in r.stderr and "[mqtt]" in r.stderr, r.stderr
    f = tmp_path / "hub.toml"
    f.write_text("[sim]\nnodes = 2\n")
    r = becomingone("hub", "--config", str(f), "--db", str(tmp_path / "hub.db"), "--seconds",
                    "1", "--no-web", "--status", "0")
    assert r.returncode == 0 and "no transport enabled" not in r.stderr, r.stderr


def test_line_index_asks_the_parser_not_a_regex():
    text = ('[hub]\nnote = """\n[[rules]]\nname = "x"\n"""\n\n'  # a "header" in a string
            'taus = [\n  1,\n  2,\n]\n'  # a multi-line array: its first line
            "[[rules]]\r\nname = 'a'\r\n"  # CRLF lines
            "rules.x = 1\n"  # (a dotted key inside the table)
            "[nodes.k1]\nweight = 2\n")
    lines = LineIndex(text)
    assert lines.line("hub", "note") == 2 and lines.line("hub", "taus") == 7
    assert lines.line("rules", 0) == 11 and lines.line("rules", 0, "name") == 12
    assert lines.line("rules", 0, "rules", "x") == 13
    assert lines.line("nodes", "k1") == 14 and lines.line("nodes", "k1", "weight") == 15
    assert lines.line("nodes", "k1", "nope") == 14  # missing: its table
    assert lines.line("rules", 5) == 11 and lines.line("nope") is None
    inline = LineIndex('a = 1\nrules = [\n  {name = "a"},\n  {name = "b"},\n]\n')
    assert inline.line("rules", 1) == 2  # an inline array: the line it starts on


def test_backoff_keys_are_accepted_and_reach_the_transports():
    cfg = config.parse("[serial]\nbackoff_min = 0.05\nbackoff_max = 0.4\n"
                       "[mqtt]\nbackoff_min = 1\nbackoff_max = 8\n")
    assert (cfg["serial"]["backoff_min"], cfg["serial"]["backoff_max"]) == (0.05, 0.4)
    ser = transports.make("serial", cfg["serial"], lambda *a: None, lambda line: None)
    assert ser.backoff == (0.05, 0.4)
    assert cfg["mqtt"]["backoff_min"] == 1.0 and cfg["mqtt"]["backoff_max"] == 8.0
    # (that MQTT waits backoff_min before reconnecting: test_transport_mqtt.py)


class _Spy(dict):
    """A config section that notes every key read from it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = set()

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


def test_every_setting_a_transport_reads_is_a_config_key(monkeypatch):
    from becomingone.transports import Disabled, base

    init = base.Transport.__init__

    def keep_the_spy(self, cfg, *a, **kw):
        init(self, cfg, *a, **kw)
        self.cfg = cfg  # (the base class keeps a copy: keep the spy, to see each read)

    monkeypatch.setattr(base.Transport, "__init__", keep_the_spy)
    for kind in transports.KINDS:
        # (with a username, so that MQTT reads the password too)
        spy = _Spy(config.DEFAULTS[kind], **({"username": "u"} if kind == "mqtt" else {}))
        t = transports.make(kind, spy, lambda *a: None, lambda line: None)
        assert not isinstance(t, Disabled), t.reason
        # all its section's keys (but "enabled", which run.build reads), and nothing else
        assert spy.seen == set(config.DEFAULTS[kind]) - {"enabled"}, (kind, spy.seen)


def test_section_fills_the_defaults_and_checks():
    assert config.section("serial", ports=["/dev/ttyACM0"])["backoff_max"] == 5.0
    with pytest.raises(config.HubConfigError, match=r"\[serial\] baud: must be int"):
        config.section("serial", baud="fast")
    with pytest.raises(config.HubConfigError, match="unknown section"):
        config.section("carrier-pigeon")


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
    with pytest.raises(InputError, match="inputs\\[0\\] lags: must"):
        Inputs([{"name": "door", "lags": [4, 2]}], lambda *a: None)


def _connect(broker, client_id, **login):
    """A paho client, connected (or refused): (client, the CONNACK's reason)."""
    got = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if login:
        c.username_pw_set(login["username"], login["password"])
    c.on_connect = lambda cl, u, f, rc, p: got.append(rc)
    c.connect(broker.host, broker.port)
    c.loop_start()
    assert wait_for(lambda: got, 10)
    return c, got[0]


def test_a_mqtt_topic_becomes_a_virtual_node_through_a_password_protected_broker(tmp_path):
    """The inputs subscribe over the MQTT transport's own connection, with its
    login: on a broker that refuses anonymous clients they still get data,
    and the hub holds one connection, not two."""
    with Mosquitto(users={"hub": "hub-secret", "door": "door-secret"}) as broker:
        anon, rc = _connect(broker, "anonymous")
        anon.loop_stop()
        assert rc.is_failure  # the broker does refuse a client without a login
        cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mqtt]
enabled = true
host = "{broker.host}"
port = {broker.port}
username = "hub"
password = "hub-secret"
[[inputs]]
name = "door"
mqtt_topic = "house/door/level"
scale = 1000.0
every = 16
lags = [4, 8, 16]
s = 6
""")
        log = Log(stream=io.StringIO(), quiet=("collapse", "hello", "witness"))
        hub = run.build(cfg, log)
        hub.start()
        pub, rc = _connect(broker, "door-sensor", username="door", password="door-secret")
        try:
            assert not rc.is_failure, rc
            # subscribed (by the hub's one client) before anything is published
            assert wait_for(lambda: "\thouse/door/level (QoS 1)" in broker.logs(), 10), \
                broker.logs()
            import math

            for blk in range(40):  # a period-16 rhythm, 16 numbers a message
                vals = [round(math.sin(2 * math.pi * (blk * 16 + j) / 16), 4) for j in range(16)]
                pub.publish("house/door/level", json.dumps(vals), qos=1).wait_for_publish(5)
            pub.publish("house/door/level", b"not a number", qos=1).wait_for_publish(5)
            inputs = next(t for t in hub.transports if t.kind == "input")
            # The bad message comes after the 40th report: wait for both.
            assert wait_for(lambda: len(hub.store.reports("input-door", 0)) >= 40
                            and inputs.counts.get("malformed") == 1, 10), log.stream.getvalue()
            rows = hub.store.reports("input-door", 0)
            assert len(rows) == 40
            assert rows[-1]["c"] > 0.9 * 32768
            assert hub.registry.nodes["input-door"].hello["board"] == "hub-input"
            assert inputs.counts.get("malformed") == 1
        finally:
            pub.loop_stop()
            pub.disconnect()
            hub.stop()
        connects = [ln for ln in broker.logs().splitlines() if "New client connected" in ln]
        hub_lines = [ln for ln in connects if " as becomingone" in ln]
        assert len(hub_lines) == 1 and "u'hub'" in hub_lines[0], connects


def test_inputs_without_mqtt_say_they_take_posts_only(tmp_path):
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n'
                       '[[inputs]]\nname = "door"\nmqtt_topic = "house/door/level"\n')
    log = Log(stream=io.StringIO())
    hub = run.build(cfg, log)
    hub.start()
    try:
        inputs = next(t for t in hub.transports if t.kind == "input")
        assert inputs.feed("door", [1.0] * 10) == 10
    finally:
        hub.stop()
    said = log.stream.getvalue()
    assert "house/door/level: [mqtt] is not enabled, so these inputs take numbers by POST" \
        in said, said


def test_ble_and_node_settings_are_taken():
    cfg = config.parse('[ble]\nnames = ["n1"]\ndevices = ["AA:BB"]\nscan = 2\n'
                       "[nodes.k1]\nweight = 3\n")
    assert cfg["ble"] == {"enabled": False, "names": ["n1"], "devices": ["AA:BB"], "scan": 2.0,
                          "rescan": 5.0}
    assert cfg.weight("k1", 1) == 3.0 and cfg.weight("other", 1) == 1.0
