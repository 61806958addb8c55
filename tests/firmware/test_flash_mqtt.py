"""The issue's own example, `flash --transport mqtt --wifi SSID --broker HOST`,
on the virtual board with a real Mosquitto: the board is reset, the node
reports over MQTT (the vboard has TCP sockets, no Wi-Fi), the flash tool
sees it on the broker and a running `becomingone hub` ingests it.  And the
console fallback when this machine can't reach the broker."""
import time

import pytest
from support.flash import flash, one_line_error
from support.hub import RunningHub
from support.rigs import free_port, wait_for
from support.vboard import needs_node

from becomingone.flash.watch import MqttWatch
from becomingone.vboard import VBoard

pytestmark = needs_node


@pytest.fixture(autouse=True)
def wifi_password(monkeypatch):
    monkeypatch.setenv("BECOMINGONE_WIFI_PASSWORD", "hunter2-secret")


def mqtt_flash(port, broker_port, *extra):
    return flash(port, "--transport", "mqtt", "--wifi", "HomeNet", "--broker", "127.0.0.1",
                 "--broker-port", str(broker_port), *extra)


def test_mqtt_node_reports_on_the_broker_and_into_the_hub(tmp_path, mosquitto):
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = mqtt_flash(vb.port, mosquitto.port)
        assert rc == 0, out + err
        assert f"hello and first report on MQTT at 127.0.0.1:{mosquitto.port}" in out
        assert out.strip().splitlines()[-1].startswith("vb-1 is reporting: c=")
        assert "hunter2" not in out + err
        assert "becomingone-flash-" in mosquitto.logs()  # it watched on the broker
        (tmp_path / "hub.toml").write_text(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mesh]
dwell = 0.0
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mosquitto.port}
client_id = "hub-under-test"
""")
        with RunningHub(tmp_path / "hub.toml") as hub:  # the retained hello, then reports
            assert wait_for(lambda: hub.live("vb-1"), 30, 0.2), hub.log()
            row = hub.node("vb-1")
            assert row["board"] == "sim" and row["transport"].startswith("mqtt"), row
            assert 0.5 < row["c"] <= 1.0, row


def test_broker_unreachable_from_here_watches_the_console(tmp_path, mosquitto):
    """The board reaches a broker this machine can't (--net-map): the tool
    says so, watches the console, and takes the node's `link mqtt up` line
    as running."""
    hidden = free_port()  # nothing listens here; the board's connections go to mosquitto
    with VBoard(fs=tmp_path / "fs",
                net_map={f"127.0.0.1:{hidden}": f"127.0.0.1:{mosquitto.port}"}) as vb:
        rc, out, err, _ = mqtt_flash(vb.port, hidden, "--watch-timeout", "6")
        assert rc == 0, out + err
        assert f"the broker 127.0.0.1:{hidden} can't be reached from here" in out
        assert "watching the board's console instead" in out
        assert out.strip().splitlines()[-1] == (
            "vb-1 is running: its mqtt link is up (its reports can't be seen from here: "
            "check them with becomingone hub)")
        # ... and it really does report, on the broker behind the map.
        w = MqttWatch("127.0.0.1", mosquitto.port, "vb-1").start()
        try:
            got = []
            assert wait_for(lambda: got.extend(w.frames()) or any(
                f["t"] == "report" for f in got), 15)
        finally:
            w.stop()


def test_a_node_that_cannot_reach_the_broker_says_why(tmp_path):
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, t = mqtt_flash(vb.port, free_port())
        line = one_line_error(rc, out, err, "flashed, but vb-1 can't report: link mqtt down "
                              "(cannot connect to 127.0.0.1:")
        assert "ECONNREFUSED" in line and f"becomingone console {vb.port}" in line


def test_no_hello_on_the_broker_in_time(tmp_path, mosquitto):
    """This machine reaches the broker, the board doesn't (--net-map to a
    closed port): the tool waits on the broker, then says what the node said."""
    closed = free_port()
    with VBoard(fs=tmp_path / "fs",
                net_map={f"127.0.0.1:{mosquitto.port}": f"127.0.0.1:{closed}"}) as vb:
        rc, out, err, _ = mqtt_flash(vb.port, mosquitto.port, "--watch-timeout", "5")
        line = one_line_error(rc, out, err, "flashed, but no hello from vb-1 on MQTT in 5 s")
        assert "the board said: link mqtt down (cannot connect" in line, line


def test_a_crash_on_boot_is_reported_with_its_exception(tmp_path):
    # The vboard has no `bluetooth`: a BLE node crashes on boot, and the
    # firmware restarts it every 5 s.  The tool resets, reads the console
    # and reports the exception; the crash-looping board can be re-flashed.
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--transport", "ble")
        line = one_line_error(rc, out, err, "flashed, but vb-1 crashed on boot: ImportError")
        assert "bluetooth" in line
        time.sleep(1)  # the node is in its 5 s restart wait: a Ctrl-C must still get through
        rc, out, err, _ = flash(vb.port)
        assert rc == 0, out + err
        assert "vb-1 is reporting" in out
