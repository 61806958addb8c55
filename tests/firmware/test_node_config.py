"""node.json is checked key by key: a wrong type never crashes the node
(no crash loop on a board), says one line, and only that key is ignored."""
import json

import pytest
from support.mp import ROOT
from support.nodeharness import decode_lines, run_cpython, sim_board, stage

from node import config  # noqa: E402
from node.app import Node  # noqa: E402
from node.hal_sim import SimHal  # noqa: E402

BAD = [
    ({"mqtt": "x"}, "mqtt must be an object, got 'x'"),
    ({"serial": 5}, "serial must be an object, got 5"),
    ({"seed": "x"}, "seed must be an int"),
    ({"seed": True}, "seed must be an int"),
    ({"wifi": ["ssid"]}, "wifi must be an object"),
    ({"wifi": {"ssid": "home", "password": 12345678}}, "wifi.password must be a string"),
    ({"mqtt": {"host": "h", "port": "1883"}}, "mqtt.port must be an int in 1..65535"),
    ({"mqtt": {"host": "h", "password": 7}}, "mqtt.password must be a string or null"),
    ({"mqtt": {"hots": "h"}}, "mqtt.hots is not a setting"),
    ({"serial": {"baud": "fast"}}, "serial.baud must be an int"),
    ({"spool": {"slots": 0}}, "spool.slots must be an int in 2..1024"),
    ({"spool": []}, "spool must be an object"),
    ({"node": 42}, "node must be 1..32 characters"),
    ({"node": "kitchen 1"}, "node must be 1..32 characters"),
    ({"transport": 3}, "transport must be a string"),
    ({"transport": "lora"}, "transport 'lora' is not one of the board's"),
    ({"realtime": "yes"}, "realtime must be true or false"),
    ({"clock_start": -1}, "clock_start must be an int"),
    ({"watchdog_ms": "8s"}, "watchdog_ms must be an int"),
    ({"hal": "esp"}, "hal must be one of machine, pi, sim"),
    ({"period_ms": "20"}, "period_ms must be an int in 1..60000"),
    ({"sensors": {}}, "sensors must be a list"),
    ({"colour": "red"}, "'colour' is not a node setting"),
]


@pytest.mark.parametrize("bad,said", BAD, ids=[next(iter(b)) for b, _ in BAD])
def test_a_bad_key_is_said_once_ignored_and_the_node_runs(bad, said):
    lines = []
    node = dict({"node": "cfg-1", "seed": 3}, **bad)
    board = sim_board()
    problems = []
    cfg = config.merge(board, node, problems)
    assert len(problems) == 1 and said in problems[0], problems
    assert "12345678" not in problems[0]  # a password is never echoed
    for k in bad:
        # The bad value is gone: the board's value or the default stands.
        assert cfg.get(k) == board.get(k) or (k == "wifi" and cfg[k] is None) \
            or (k == "transport" and cfg[k] == "serial")
    n = Node(cfg, SimHal(cfg), say=lines.append)
    n.link._out = _Sink()
    n.run(60)  # and it runs: hello, reports
    frames = [f["t"] for f in decode_lines(n.link._out.data)[0]]
    assert frames[0] == "hello" and "report" in frames


class _Sink:
    """The serial link's output (a BytesIO would do; this keeps it bytes)."""

    def __init__(self):
        self.data = b""

    def write(self, b):
        self.data += bytes(b)


def test_several_bad_keys_make_one_console_line(tmp_path):
    fs = stage(tmp_path, sim_board(), {"node": "cfg-2", "mqtt": "x", "serial": 5, "seed": "x",
                                       "spool": {"slots": 8}})
    out = run_cpython(fs, 60).decode()
    lines = [ln for ln in out.splitlines() if ln.startswith("config:")]
    assert len(lines) == 1, lines
    for part in ("mqtt must be", "serial must be", "seed must be"):
        assert part in lines[0]
    frames, _ = decode_lines(out.encode())
    assert frames[0]["t"] == "hello" and frames[0]["node"] == "cfg-2"  # good keys kept


def test_spool_from_node_json_is_used():
    cfg = config.merge(sim_board(), {"node": "cfg-3", "spool": {"slots": 5, "size": 1500}})
    n = Node(cfg, SimHal(cfg), say=lambda *_: None)
    assert n.link.spool.slots == 5 and n.link.spool.size == 1500
    # A size below the largest frame is raised to it: nothing is ever oversize.
    cfg = config.merge(sim_board(), {"node": "cfg-3", "spool": {"slots": 5, "size": 10}})
    n = Node(cfg, SimHal(cfg), say=lambda *_: None)
    assert n.link.spool.size == n.link.frame_max("cfg-3", 3) > 10


def test_board_capability_flag_is_not_taken_for_wifi_credentials():
    # boards/*.json say "wifi": true (the board has it); only node.json's
    # object is credentials.  An MQTT node without them must not try to join.
    board = json.loads((ROOT / "boards" / "pico-w.json").read_text())
    cfg = config.merge(board, {"node": "cfg-4", "transport": "mqtt"})
    assert board["wifi"] is True and cfg["wifi"] is None


def test_node_json_from_the_flash_tool_is_clean():
    problems = []
    config.merge(json.loads((ROOT / "boards" / "pico-w.json").read_text()),
                 {"node": "kitchen-1", "board": "pico-w", "transport": "mqtt",
                  "mqtt": {"host": "hub.local", "port": 1883},
                  "wifi": {"ssid": "home", "password": "secret"}}, problems)
    assert problems == []
