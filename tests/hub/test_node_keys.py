"""Node keys on the hub (issue 11 item 6): the keys file (written 0600,
read with line numbers, never showing a key), NodeKeys' check of each frame's
MAC before the dedup (keyed nodes need their MAC, unkeyed ones pass unless
keys are required, refusals counted per node and per source), the file read
again when it changes, the CLI (`becomingone keys`, `broker-config`) and the
node configs it and `flash` write."""
import hashlib
import json
import os
import stat

import pytest
from support.frames import Frames
from support.rigs import FakeClock

from becomingone import cli
from becomingone.nodes.registry import Registry
from becomingone.transports import keys as K
from becomingone.transports import mosquitto
from kairos import wire
from kairos.mac import AUTH, Mac, key_from_hex

F = Frames()
KEY = "00112233445566778899aabbccddeeff"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def signed(msg, key=KEY):
    return wire.encode_json(msg, Mac(key_from_hex(key)))


def test_keys_file_round_trip_is_private(tmp_path):
    path = tmp_path / "nodes.keys"
    assert K.read_keys(path) == {}
    key, new = K.ensure_key(path, "kitchen-1")
    assert new and len(key) == 32 and mode(path) == 0o600
    assert K.ensure_key(path, "kitchen-1") == (key, False)  # kept
    other, new = K.ensure_key(path, "kitchen-1", renew=True)
    assert new and other != key
    K.ensure_key(path, "hall")
    assert set(K.read_keys(path)) == {"kitchen-1", "hall"} and mode(path) == 0o600
    assert path.read_text().startswith("# BecomingONE node keys")
    with pytest.raises(K.KeysError, match="not a node id"):
        K.ensure_key(path, "a/b")


@pytest.mark.parametrize("line,why", [
    ("kitchen-1", "expected '<node id> <key>'"),
    ("a/b " + KEY, "expected '<node id> <key>'"),
    ("kitchen-1 " + KEY[:-2], "the key must be 32..128 hex digits"),
    ("kitchen-1 " + KEY + " extra", "expected '<node id> <key>'"),
])
def test_a_bad_line_is_named_and_the_key_never_shown(tmp_path, line, why):
    path = tmp_path / "nodes.keys"
    path.write_text(f"# comment\n\nhall {KEY}\n{line}\n")
    with pytest.raises(K.KeysError) as e:
        K.read_keys(path)
    assert f"{path}:4:" in str(e.value) and why in str(e.value)
    assert KEY[:-2] not in str(e.value)
    path.write_text(f"hall {KEY}\nhall {KEY}\n")
    with pytest.raises(K.KeysError, match=":2: hall is given twice"):
        K.read_keys(path)


def keyed(tmp_path, require=False, clock=None):
    path = tmp_path / "nodes.keys"
    K.write_keys(path, {"n1": KEY})
    seen, logs = [], []
    nk = K.NodeKeys(path, require=require, log=logs.append,
                    reject=lambda *a: seen.append(a), clock=clock or FakeClock())
    return nk, seen, logs


def test_a_keyed_node_needs_its_mac(tmp_path):
    nk, seen, logs = keyed(tmp_path)
    auth = nk.auth("mqtt")
    rep = F.report(1)
    assert wire.decode_json(signed(rep), {}, auth=auth) == rep
    assert wire.decode_json(wire.encode_json(rep), {}, auth=auth) is None  # no MAC
    assert wire.decode_json(signed(rep, "ff" * 16), {}, auth=auth) is None  # another key
    forged = signed(rep).replace(b'"seq":1,', b'"seq":2,')
    assert wire.decode_json(forged, {}, auth=auth) is None  # changed after signing
    assert nk.rejected == {"n1": 3} and seen == [("mqtt", AUTH, "n1")] * 3
    # An unkeyed node passes (as before keys), a keyed one never does unsigned.
    other = F.report(1, node="n2")
    assert wire.decode_json(wire.encode_json(other), {}, auth=auth) == other
    assert wire.decode_json(signed(other), {}, auth=auth) == other
    assert logs[-1] == f"keys: n2 signs its frames but has no key in {nk.path}: taken unchecked"
    assert nk.status() == {"file": str(nk.path), "nodes": 1, "require": False,
                           "rejected": {"n1": 3}}


def test_require_keys_refuses_the_unkeyed(tmp_path):
    nk, seen, _ = keyed(tmp_path, require=True)
    other = F.report(1, node="n2")
    assert wire.decode_json(signed(other), {}, auth=nk.auth("serial:x")) is None
    assert nk.rejected == {"*": 1} and seen == [("serial:x", AUTH, "n2")]


def test_the_file_is_read_again_when_it_changes(tmp_path):
    clock = FakeClock()
    nk, _, logs = keyed(tmp_path, clock=clock)
    auth = nk.auth("mqtt")
    rep2 = F.report(1, node="n2")
    assert wire.decode_json(wire.encode_json(rep2), {}, auth=auth) == rep2  # n2: no key yet
    K.write_keys(nk.path, {"n1": KEY, "n2": "ab" * 16})
    clock.t += K.RELOAD_EVERY
    assert wire.decode_json(wire.encode_json(rep2), {}, auth=auth) is None  # now it has one
    assert wire.decode_json(signed(rep2, "ab" * 16), {}, auth=auth) == rep2
    assert "keys: 2 node keys from" in logs[-1] and "(the file changed)" in logs[-1]
    # A bad edit keeps the keys read before (it must not open the door) ...
    nk.path.write_text("n1 nothex\n")
    clock.t += K.RELOAD_EVERY
    assert wire.decode_json(wire.encode_json(rep2), {}, auth=auth) is None
    assert "keeping the 2 keys read before" in logs[-1]
    # ... and at start it stops the hub (one line), as a loose mode is said.
    with pytest.raises(K.KeysError, match="nodes.keys:1: n1: the key must be"):
        K.NodeKeys(nk.path)
    K.write_keys(nk.path, {"n1": KEY})
    os.chmod(nk.path, 0o644)
    logs = []
    K.NodeKeys(nk.path, log=logs.append)
    assert logs[-1] == f"keys: {nk.path} may be read by others (mode 0644): chmod 600 {nk.path}"


def test_refusals_show_in_the_nodes_view(tmp_path):
    reg = Registry()
    nk, _, _ = keyed(tmp_path)
    nk.reject = reg.reject
    auth = nk.auth("mqtt")
    # Before the node's first valid frame: counted per source only (no node is made).
    assert wire.decode_json(wire.encode_json(F.hello(0)), {}, auth=auth) is None
    assert "n1" not in reg.nodes and reg.rejects == {"mqtt": {AUTH: 1}}
    msg = wire.decode_json(signed(F.hello(0)), {}, auth=auth)
    assert reg.accept(msg, "mqtt", 1.0, validated=True)
    for seq in (1, 2):
        assert wire.decode_json(wire.encode_json(F.report(seq)), {}, auth=auth) is None
    view = reg.node_json("n1", 2.0)
    assert view["rejects"] == {AUTH: 2} and view["frames"] == {"hello": 1}
    assert reg.reject_totals()[("mqtt", AUTH)] == 3


def test_mqtt_password_is_derived_not_the_key():
    pw = K.mqtt_password(KEY)
    assert pw == K.mqtt_password(KEY) and len(pw) == 32 and KEY not in pw
    assert pw != K.mqtt_password("ab" * 16)


def test_keys_cli_and_node_json(tmp_path, capsys):
    path, node_json = tmp_path / "nodes.keys", tmp_path / "node.json"
    node_json.write_text(json.dumps({"node": "pi-1", "transport": "mqtt",
                                     "mqtt": {"host": "10.0.0.2"}}))
    assert cli.main(["keys", "add", "pi-1", "--keys", str(path), "--node-json",
                     str(node_json)]) == 0
    key = K.read_keys(path)["pi-1"]
    cfg = json.loads(node_json.read_text())
    assert cfg["key"] == key and mode(node_json) == 0o600
    assert cfg["mqtt"] == {"host": "10.0.0.2", "user": "pi-1", "password": K.mqtt_password(key)}
    assert cli.main(["keys", "add", "pi-1", "--keys", str(path)]) == 0  # kept
    assert cli.main(["keys", "list", "--keys", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pi-1: a new key in" in out and "pi-1: its key in" in out and key not in out
    assert out.strip().splitlines()[-1] == "pi-1"
    # The hub's board checks take the node config as written.
    from becomingone.boards import validate_node_config

    validate_node_config(dict(cfg, board="pi-zero-w", wifi={"ssid": "x", "password": "y"}))
    assert cli.main(["keys", "add", "pi-2", "--keys", str(path), "--node-json",
                     str(node_json)]) == 1
    assert "is the config of node 'pi-1', not 'pi-2'" in capsys.readouterr().err


def test_broker_config_files(tmp_path, capsys):
    keys = tmp_path / "nodes.keys"
    K.write_keys(keys, {"kitchen-1": KEY, "hall": "ab" * 16})
    toml = tmp_path / "hub.toml"
    toml.write_text(f"""
[hub]
keys = "{keys}"
[[rules]]
name = "out"
when = "G > 0.5"
action = "mqtt"
with = {{ topic = "home/one" }}
[[inputs]]
name = "door"
mqtt_topic = "zigbee/door"
""")
    out = tmp_path / "broker"
    assert cli.main(["broker-config", "--out", str(out), "--config", str(toml)]) == 0
    said = capsys.readouterr().out
    assert "the hub and 2 node(s)" in said and "hub-login.toml" in said
    login = (out / "hub-login.toml").read_text()
    assert mode(out / "hub-login.toml") == 0o600 and mode(out / "passwd") == 0o600
    hub_pw = login.split('password = "')[1].split('"')[0]
    lines = dict(ln.split(":", 1) for ln in (out / "passwd").read_text().splitlines())
    assert set(lines) == {"becomingone-hub", "kitchen-1", "hall"}
    for user, pw in (("becomingone-hub", hub_pw), ("kitchen-1", K.mqtt_password(KEY))):
        _, v, n, salt, digest = lines[user].split("$")
        import base64

        want = hashlib.pbkdf2_hmac("sha512", pw.encode(), base64.b64decode(salt), int(n), 64)
        assert v == "7" and base64.b64decode(digest) == want
    acl = (out / "acl").read_text()
    assert "user kitchen-1\ntopic write becomingone/kitchen-1/hello\n" in acl
    assert "topic read becomingone/kitchen-1/cmd\n" in acl
    assert "topic write home/one\n" in acl and "topic read zigbee/door\n" in acl
    assert "becomingone/hall/" in acl and "becomingone/+/report" not in acl
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and f"acl_file {(out / 'acl').resolve()}" in conf
    # A node named like the hub's login is refused.
    K.write_keys(keys, {"becomingone-hub": KEY})
    assert cli.main(["broker-config", "--out", str(out), "--config", str(toml)]) == 1
    assert "is the hub's broker login and a node id" in capsys.readouterr().err


def test_password_line_is_mosquitto_passwd_form():
    line = mosquitto.password_line("u", "secret", salt=bytes(12))
    assert line.startswith("u:$7$101$AAAAAAAAAAAAAAAA$") and len(line.split("$")[-1]) == 88


def test_every_transport_decoder_checks_the_mac(tmp_path):
    # The serial, MQTT and BLE receive paths with the hub's keys set, driven
    # with frames (the full links run in tests/system/test_auth.py).
    from becomingone import config
    from becomingone.transports import make
    from kairos import wirebin

    nk, seen, _ = keyed(tmp_path)
    got = []
    t = make("ble", config.section("ble"), lambda msg, *a: got.append(msg), print)
    t.keys = nk
    rep = F.report(1)
    for frame in (wirebin.encode_bin(rep, Mac(key_from_hex(KEY))), wirebin.encode_bin(rep)):
        for frag in wirebin.fragments(frame, 20):
            t.on_notify("AA:BB", frag)
    assert got == [rep] and seen == [("ble:AA:BB", AUTH, "n1")]
    mq = make("mqtt", config.section("mqtt"), lambda msg, *a: got.append(msg), print)
    mq.keys = nk

    class Msg:
        qos, mid = 0, 1

        def __init__(self, topic, payload):
            self.topic, self.payload = topic, payload

    mq._on_message(None, None, Msg("becomingone/n1/report", signed(F.report(2))))
    mq._on_message(None, None, Msg("becomingone/n1/report", wire.encode_json(F.report(3))))
    assert [m["seq"] for m in got] == [1, 2] and seen[-1] == ("mqtt", AUTH, "n1")
    assert mq._auth("serial:/dev/x") is not None  # (the serial reader's decoder takes this)
