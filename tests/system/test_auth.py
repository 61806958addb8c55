"""Nobody speaks as a node but the node (issue 11 item 6), with real parts:
Mosquitto, the firmware under CPython in its own process, a pty for serial,
the hub built from its config.

Before: the hub's MQTT defaults were anonymous and every frame was taken on
its word; the boot id (all a forger needs) is readable by subscribing.  Now a
node flashed with a key signs every frame (kairos.mac) and the hub checks
that MAC before the dedup; `becomingone broker-config` makes the broker's
logins and ACL, in which a node may publish only under its own topics."""
import json
import os
import re
import subprocess
import sys
import threading

import paho.mqtt.client as paho
import pytest
from support.broker import Mosquitto
from support.nodeharness import sim_board, stage
from support.rigs import Cable, free_port, needs_socat, wait_for

from becomingone import cli, config, run
from becomingone.logs import Log
from becomingone.transports import keys as K
from kairos import wire
from kairos.mac import AUTH, Mac, key_from_hex

pytestmark = pytest.mark.faults  # the fault suite: pytest -m faults (docs/hub.md)

QUIET = ("collapse", "hello", "transport", "clock", "memory", "status", "witness", "reject",
         "emergence", "hub", "ack")  # the routine lines of a running mesh


def start_node(tmp_path, name, samples, node_cfg, tag="fs"):
    """A sim-board firmware node under CPython (10 ms samples, a report every 10)."""
    cfg = dict({"node": name, "seed": 3, "realtime": True}, **node_cfg)
    fs = stage(tmp_path / tag, sim_board(period_ms=10, report_every=10), cfg)
    return subprocess.Popen([sys.executable, str(fs / "main.py"), "--board",
                             str(fs / "board.json"), "--config", str(fs / "node.json"),
                             "--samples", str(samples)], cwd=fs,
                            env=dict(os.environ, PYTHONPATH=str(fs)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def start_hub(tmp_path, extra):
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\nkeys = "{tmp_path / "nodes.keys"}"\n'
                       + extra)
    hub = run.build(cfg, Log(quiet=QUIET))
    hub.start()
    return hub


def client(broker, user=None, password=None, name=""):
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name or f"t-{user}")
    if user:
        c.username_pw_set(user, password)
    got, refused = [], []
    c.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    c.on_connect = lambda _c, _u, _f, rc, _p: refused.append(rc) if rc.is_failure else None
    c.connect(broker.host, broker.port, 10)
    c.loop_start()
    return c, got, refused


def stop(*things):
    for x in things:
        if isinstance(x, subprocess.Popen):
            if x.poll() is None:
                x.kill()
            x.wait(5)
        elif isinstance(x, paho.Client):
            x.loop_stop()
            x.disconnect()
        elif x is not None:
            x.stop()


def stored(hub, node):
    return hub.store.reports(node, 0, limit=10**6)


def test_a_forger_on_the_broker_cannot_speak_as_a_keyed_node(tmp_path, mosquitto):
    # The broker is open (anonymous, as the hub's defaults were); what stands
    # guard is the node's key.  The forger reads the node's boot id off the
    # broker, then publishes valid frames under its name: unsigned, signed
    # with a key of its own, and a hello of a new boot (which, taken, would
    # switch the node's boot and silence it).
    key, _ = K.ensure_key(tmp_path / "nodes.keys", "k1")
    hub = start_hub(tmp_path, f'[mqtt]\nenabled = true\nhost = "{mosquitto.host}"\n'
                              f"port = {mosquitto.port}\n")
    sniff, heard, _ = client(mosquitto, name="sniffer")
    sniff.subscribe("becomingone/k1/report", 1)
    forger, _, _ = client(mosquitto, name="forger")
    node = start_node(tmp_path, "k1", 1500, {"transport": "mqtt", "key": key, "mqtt": {
        "host": mosquitto.host, "port": mosquitto.port, "keepalive": 5}})
    try:
        assert wait_for(lambda: len(stored(hub, "k1")) >= 5, 30)
        real = wire.decode_json(heard[0][1], {})
        boot, forged = real["boot"], 0
        mine = Mac(bytes(16))
        for i in range(60):
            fake = dict(real, seq=real["seq"] + 1 + i, n=999_000 + i)
            payload = wire.encode_json(fake, mine if i % 2 else None)
            forger.publish("becomingone/k1/report", payload, 1).wait_for_publish(5)
            forged += 1
        hello = {"t": "hello", "node": "k1", "boot": boot ^ 1, "seq": 0, "tick": 0,
                 "board": "sim", "fw": "x", "period": 10, "every": 10, "weight": 1, "caps": [],
                 "ch": [{"name": "wave", "lags": [2, 4], "s": 6, "s0": 2, "ic": 16384}]}
        forger.publish("becomingone/k1/hello", wire.encode_json(hello), 1).wait_for_publish(5)
        forged += 1
        out, err = node.communicate(timeout=120)
        assert node.returncode == 0, err.decode()
        want = list(range(10, 1501, 10))  # every report the node made, and no other
        assert wait_for(lambda: sorted(r["n"] for r in stored(hub, "k1")) == want, 30), \
            sorted(r["n"] for r in stored(hub, "k1"))[-5:]
        assert {r["boot"] for r in stored(hub, "k1")} == {boot}
        view = hub.registry.node_json("k1", hub.clock())
        assert view["rejects"].get(AUTH) == forged and view["boot"] == boot
        assert hub.keys.status()["rejected"] == {"k1": forged}
        print(f"\nforged {forged} frames for k1: stored 0, refused and counted "
              f"{view['rejects'][AUTH]}; the node's {len(want)} reports all stored")
    finally:
        stop(node, sniff, forger, hub)


def test_broker_config_lets_each_node_publish_only_under_its_own_topic(tmp_path):
    # `becomingone broker-config` on a keys file of two nodes, a real
    # Mosquitto run with what it wrote: k1 (the firmware, logged in with the
    # password its node.json got from `keys add --node-json`) reaches the hub;
    # k2's login cannot publish under k1's topics nor read k1's commands;
    # anonymous clients are refused.
    keys = tmp_path / "nodes.keys"
    port = free_port()
    (tmp_path / "n1.json").write_text(json.dumps({"node": "k1", "transport": "mqtt", "mqtt": {
        "host": "127.0.0.1", "port": port, "keepalive": 5}}))
    assert cli.main(["keys", "add", "k1", "--keys", str(keys), "--node-json",
                     str(tmp_path / "n1.json")]) == 0
    k2_key, _ = K.ensure_key(keys, "k2")
    toml = tmp_path / "hub.toml"
    toml.write_text(f'[hub]\nkeys = "{keys}"\n')
    out = tmp_path / "broker"
    assert cli.main(["broker-config", "--out", str(out), "--config", str(toml),
                     "--listener", str(port)]) == 0
    (tmp_path / "mosq").mkdir()
    broker = Mosquitto(port=port, workdir=tmp_path / "mosq")
    conf = (out / "mosquitto.conf").read_text()
    # The generated file as it is, plus the test's own log and (as root) user.
    broker.conf.write_text(conf.replace(f"listener {port}", f"listener {port} 127.0.0.1")
                           + f"log_dest file {broker.log}\nlog_type all\n"
                           + ("user root\n" if os.geteuid() == 0 else ""))
    broker.start()
    login = (out / "hub-login.toml").read_text()
    hub_pw = login.split('password = "')[1].split('"')[0]
    hub = node = k2 = anon = spy = None
    try:
        hub = start_hub(tmp_path, f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
                                  f'username = "becomingone-hub"\npassword = "{hub_pw}"\n')
        mq = next(t for t in hub.transports if t.kind == "mqtt")
        assert mq.ready.wait(10), broker.logs()
        n1 = json.loads((tmp_path / "n1.json").read_text())
        node = start_node(tmp_path, "k1", 100000, {k: n1[k] for k in ("transport", "key",
                                                                       "mqtt")})
        assert wait_for(lambda: len(stored(hub, "k1")) >= 5, 30), broker.logs()[-3000:]
        # k2, logged in, signs a k1 report with its own key and tries k1's topic.
        k2, k2_got, refused = client(broker, "k2", K.mqtt_password(k2_key))
        assert wait_for(lambda: k2.is_connected(), 10) and not refused
        k2.subscribe("becomingone/k1/cmd", 1)
        spy, spied, _ = client(broker, "becomingone-hub", hub_pw, name="spy")
        spy.subscribe("becomingone/+/report", 1)
        assert wait_for(lambda: any(t == "becomingone/k1/report" for t, _ in spied), 10)
        fake = {"t": "report", "node": "k1", "boot": 1, "seq": 1, "tick": 0, "n": 424242,
                "drop": 0, "miss": 0, "ch": [[1, 2, 1, 3, 4, 5, 0]], "coh": [[1, 2]]}
        k2.publish("becomingone/k1/report", wire.encode_json(fake, Mac(key_from_hex(k2_key))),
                   1).wait_for_publish(5)
        mine = dict(fake, node="k2")
        k2.publish("becomingone/k2/report", wire.encode_json(mine, Mac(key_from_hex(k2_key))),
                   1).wait_for_publish(5)
        assert wait_for(lambda: any(t == "becomingone/k2/report" for t, _ in spied), 10)
        assert not [p for t, p in spied if t == "becomingone/k1/report" and b"424242" in p]
        # The hub's commands to k1 (its gots, its pings) are not k2's to read.
        hub.send_command("k1", "ping", {})
        assert wait_for(lambda: any(ev.get("kind") == "ack" for ev in hub.recent), 10)
        assert k2_got == []
        assert [r for r in stored(hub, "k2") if r["n"] == 424242]  # its own, signed: taken
        assert not [r for r in stored(hub, "k1") if r["n"] == 424242]
        # No login, no entry.
        anon, _, anon_refused = client(broker, name="anon")
        assert wait_for(lambda: anon_refused, 10) and not anon.is_connected()
        denied = broker.logs()  # (client id t-k2, logged in as k2)
        assert re.search(r"Denied PUBLISH from t-k2 \(.*'becomingone/k1/report'", denied), \
            denied[-3000:]
    finally:
        stop(node, k2, anon, spy, hub)
        broker.cleanup()


@needs_socat
def test_a_forged_serial_line_is_refused(tmp_path):
    # Serial: a keyed firmware node on a pty; a second writer on the node's
    # end of the line (another program on the board's port) sends valid
    # @K1 lines under the node's name, unsigned: refused, counted, not stored.
    cable = Cable(tmp_path)
    cable.plug()
    key, _ = K.ensure_key(tmp_path / "nodes.keys", "s1")
    hub = node = None
    try:
        hub = start_hub(tmp_path, f'[serial]\nenabled = true\nports = ["{cable.host}"]\n')
        ser = next(t for t in hub.transports if t.kind == "serial")
        assert wait_for(lambda: ser.status()["connected"], 10)
        node = start_node(tmp_path, "s1", 100000, {"transport": "serial", "key": key,
                                                   "serial": {"port": cable.node}})
        assert wait_for(lambda: len(stored(hub, "s1")) >= 3, 30)
        boot = stored(hub, "s1")[0]["boot"]
        lock = threading.Lock()
        with lock, open(cable.node, "wb", buffering=0) as f:
            for i in range(20):
                f.write(wire.encode_line({"t": "report", "node": "s1", "boot": boot,
                                          "seq": 10**6 + i, "tick": 0, "n": 777_000 + i,
                                          "drop": 0, "miss": 0, "ch": [[1, 2, 1, 3, 4, 5, 0]],
                                          "coh": [[1, 2]]}))
        assert wait_for(lambda: hub.registry.node_json("s1", 0)["rejects"].get(AUTH, 0) >= 15,
                        20), hub.registry.node_json("s1", 0)
        n = len(stored(hub, "s1"))
        assert wait_for(lambda: len(stored(hub, "s1")) > n, 20)  # the node goes on
        assert not [r for r in stored(hub, "s1") if r["n"] >= 777_000]
    finally:
        stop(node, hub)
        cable.close()


@pytest.mark.parametrize("require", [False, True], ids=["keys-optional", "keys-required"])
def test_a_node_without_a_key_works_unless_keys_are_required(tmp_path, mosquitto, require):
    # Keys are per node: a hub with a keys file still takes a node that has
    # none (a mesh moving to keys node by node); [hub] require_keys = true
    # refuses it.
    K.ensure_key(tmp_path / "nodes.keys", "other")
    hub = start_hub(tmp_path, f"require_keys = {str(require).lower()}\n[mqtt]\nenabled = true\n"
                              f'host = "{mosquitto.host}"\nport = {mosquitto.port}\n')
    node = start_node(tmp_path, "u1", 400, {"transport": "mqtt", "mqtt": {
        "host": mosquitto.host, "port": mosquitto.port, "keepalive": 5}})
    try:
        node.communicate(timeout=120)
        if require:
            assert wait_for(lambda: hub.registry.rejects.get("mqtt", {}).get(AUTH, 0) >= 10, 20)
            assert stored(hub, "u1") == [] and not hub.registry.known("u1")
        else:
            assert wait_for(lambda: len(stored(hub, "u1")) == 40, 30)
            assert hub.registry.rejects.get("mqtt", {}).get(AUTH, 0) == 0
    finally:
        stop(node, hub)
