"""Node configuration: the board definition (board.json) with the node's own
settings (node.json, written by the flash tool) merged over it.

A missing or bad file never stops the node: we print one line saying what
was wrong and carry on with safe defaults (the sim board's behaviour on the
serial console), so a board can't crash-loop out of reach of mpremote.
The full validator lives on the hub side (hub/boards.py); this is the small
check a board can afford.
"""
import json

# What a node runs with when it has nothing usable: one simulated channel on
# the serial console.  Touches no pin, so it is safe on any board.
DEFAULT_BOARD = {
    "board": "sim",
    "hal": "sim",
    "weight": 1,
    "period_ms": 20,
    "report_every": 50,
    "watchdog_ms": 0,
    "transports": ["serial"],
    "sensors": [{"name": "wave", "kind": "sim", "period": 32, "amp": 8000, "noise": 300}],
    "outputs": [],
}

# Node keys that may override the board definition.
_OVERRIDES = ("period_ms", "report_every", "weight", "sensors", "outputs", "watchdog_ms", "hal")
_KINDS = ("adc", "mcu_temp", "bme280", "mic", "digital", "sim")
FW_VERSION = "0.1.0"


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except OSError:
        return None, "%s: not found" % path
    except ValueError as e:
        return None, "%s: bad JSON (%s)" % (path, e)


def _int_in(d, key, lo, hi):
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        return "%s must be an int in %d..%d, got %r" % (key, lo, hi, v)
    return None


def check_board(b):
    """Return None if the board dict is usable, else a one-line reason."""
    if not isinstance(b, dict):
        return "board definition must be a JSON object"
    for key, lo, hi in (("period_ms", 1, 60000), ("report_every", 1, 65535), ("weight", 1, 255)):
        err = _int_in(b, key, lo, hi)
        if err:
            return err
    sensors = b.get("sensors")
    if not isinstance(sensors, list) or not 1 <= len(sensors) <= 8:
        return "sensors must be a list of 1..8 sensors"
    i = 0
    for s in sensors:
        if not isinstance(s, dict) or s.get("kind") not in _KINDS:
            return "sensors[%d].kind must be one of %s" % (i, ", ".join(_KINDS))
        if not isinstance(s.get("name"), str) or not s["name"]:
            return "sensors[%d].name must be a non-empty string" % i
        i += 1
    if not isinstance(b.get("outputs", []), list):
        return "outputs must be a list"
    if not isinstance(b.get("transports"), list) or not b["transports"]:
        return "transports must be a non-empty list"
    return None


def merge(board, node):
    """The effective config: node settings over the board definition."""
    cfg = {}
    for k in board:
        cfg[k] = board[k]
    for k in _OVERRIDES:
        if k in node:
            cfg[k] = node[k]
    for k in ("node", "transport", "wifi", "mqtt", "serial", "seed", "realtime", "clock_start"):
        if k in node:
            cfg[k] = node[k]
    cfg.setdefault("outputs", [])
    cfg.setdefault("watchdog_ms", 0)
    cfg.setdefault("hal", "sim")
    if cfg.get("transport") not in cfg["transports"]:
        cfg["transport"] = cfg["transports"][0]
    return cfg


def load(board_path="board.json", node_path="node.json", say=print):
    """Load and merge; each problem is said once, then defaults are used."""
    board, err = _read_json(board_path)
    if err is None:
        err = check_board(board)
        if err:
            err = "%s: %s" % (board_path, err)
    if err:
        say("config: %s; using the built-in sim board" % err)
        board = DEFAULT_BOARD
    node, err = _read_json(node_path)
    if err is None and not isinstance(node, dict):
        err = "%s: must be a JSON object" % node_path
    if err:
        say("config: %s; using defaults" % err)
        node = {}
    cfg = merge(board, node)
    err = check_board(cfg)
    if err:
        say("config: %s: %s; using the board's own settings" % (node_path, err))
        cfg = merge(board, {})
    name = cfg.get("node")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        cfg["node"] = None  # the HAL's unique id names it (see app.start)
    return cfg
