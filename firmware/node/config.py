"""Node configuration: the board definition (board.json) with the node's own
settings (node.json, written by the flash tool) merged over it.

A missing or bad file never stops the node: we print one line saying what
was wrong and carry on with safe defaults (the sim board's behaviour on the
serial console), so a board can't crash-loop out of reach of mpremote.
The full validator lives on the hub side (becomingone.boards, hub/boards/); this is the small
check a board can afford.
"""
import json

from kairos.defaults import SENSOR_KINDS as _KINDS
from kairos.wire import node_ok

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

# Node keys that may override the board definition (checked as the merged
# board), and the node's own keys with their checks (_NODE below).
_OVERRIDES = ("period_ms", "report_every", "weight", "sensors", "outputs", "watchdog_ms", "hal")
_HALS = ("machine", "pi", "sim")
_M30 = 0x3FFFFFFF
_HEX = "0123456789abcdefABCDEF"
# Board keys for people and the hub only: not kept in a node's memory.
_DOC_KEYS = ("title", "notes", "chip", "runtime", "adc_bits")


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


def _is_int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _str_ok(v, lo, hi):
    return isinstance(v, str) and lo <= len(v) <= hi


def _why(key, v, want):
    return "%s must be %s, got %r" % (key, want, v)


def _check_node_id(v):
    if not node_ok(v):  # the one rule (kairos.wire)
        return _why("node", v, "1..32 characters [A-Za-z0-9_.-]")
    return None


def _check_key(v):
    # The node's key (kairos.mac, which reads it), checked here without
    # importing that module: a node without a key never loads it.  Never
    # echoed, like a password.
    if not _str_ok(v, 32, 128) or len(v) % 2 or [c for c in v if c not in _HEX]:
        return "key must be 32..128 hex digits (the node's key)"
    return None


def _check_sub(key, v, fields):
    """A dict whose items pass their (check, want) pair; None if it does."""
    if not isinstance(v, dict):
        return _why(key, v, "an object")
    for k in v:
        f = fields.get(k)
        if f is None:
            return "%s.%s is not a setting (%s)" % (key, k, ", ".join(sorted(fields)))
        if not f[0](v[k]):
            if k == "password":  # never echoed
                return "%s.password must be %s" % (key, f[1])
            return _why(key + "." + k, v[k], f[1])
    return None


def _opt_str(v):
    return v is None or _str_ok(v, 0, 128)


_HOST = (lambda v: _str_ok(v, 1, 253) and " " not in v, "a host name")
_MQTT = {"host": _HOST, "port": (lambda v: _is_int(v, 1, 65535), "an int in 1..65535"),
         "user": (_opt_str, "a string or null"), "password": (_opt_str, "a string or null"),
         "keepalive": (lambda v: _is_int(v, 1, 65535), "an int in 1..65535"),
         "prefix": (lambda v: _str_ok(v, 1, 64) and "+" not in v and "#" not in v,
                    "a topic without wildcards")}
_WIFI = {"ssid": (lambda v: _str_ok(v, 1, 32), "1..32 characters"),
         "password": (lambda v: _str_ok(v, 0, 64), "a string of at most 64 characters")}
_SERIAL = {"port": (_opt_str, "a device path or null"),
           "baud": (lambda v: _is_int(v, 300, 4000000), "an int in 300..4000000")}
_SPOOL = {"slots": (lambda v: _is_int(v, 2, 1024), "an int in 2..1024"),
          "size": (lambda v: _is_int(v, 0, 4096), "an int in 0..4096"),
          "file": (lambda v: _str_ok(v, 0, 200), "a path of at most 200 chars (\"\": RAM only)"),
          "file_slots": (lambda v: _is_int(v, 0, 100000), "an int in 0..100000")}
# The node's own keys: a check returning None or the reason.
_NODE = {
    "node": _check_node_id,
    "key": _check_key,
    "transport": lambda v: None if _str_ok(v, 1, 16) else _why("transport", v, "a string"),
    "wifi": lambda v: _check_sub("wifi", v, _WIFI),
    "mqtt": lambda v: _check_sub("mqtt", v, _MQTT),
    "serial": lambda v: _check_sub("serial", v, _SERIAL),
    "spool": lambda v: _check_sub("spool", v, _SPOOL),
    "seed": lambda v: None if _is_int(v, 0, _M30) else _why("seed", v, "an int in 0..2**30-1"),
    "realtime": lambda v: None if v in (True, False) else _why("realtime", v, "true or false"),
    "clock_start": lambda v: None if _is_int(v, 0, _M30)
    else _why("clock_start", v, "an int in 0..2**30-1"),
}
# Keys the flash tool writes that the node itself doesn't use.
_IGNORED = ("board",)


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
    if not _is_int(b.get("watchdog_ms", 0), 0, 600000):
        return _why("watchdog_ms", b["watchdog_ms"], "an int in 0..600000 (0: none)")
    if b.get("hal", "sim") not in _HALS:
        return _why("hal", b["hal"], "one of " + ", ".join(_HALS))
    if not isinstance(b.get("transports"), list) or not b["transports"]:
        return "transports must be a non-empty list"
    return None


def merge(board, node, problems=None):
    """The effective config: node settings over the board definition.  A
    node setting that fails its check is left out (the board's value or the
    default stays) and its reason appended to problems."""
    if problems is None:
        problems = []
    cfg = {}
    for k in board:
        if k not in _DOC_KEYS:
            cfg[k] = board[k]
    # The board's "wifi"/"ble" are capability flags; the node's "wifi" is
    # its credentials.
    cfg["wifi"] = None
    for k in _OVERRIDES:
        if k in node:
            trial = {}
            for j in cfg:
                trial[j] = cfg[j]
            trial[k] = node[k]
            err = check_board(trial)
            if err:
                problems.append(err)
            else:
                cfg[k] = node[k]
    for k in node:
        check = _NODE.get(k)
        if check is None:
            if k not in _OVERRIDES and k not in _IGNORED:
                problems.append("%r is not a node setting" % (k,))
            continue
        err = check(node[k])
        if err:
            problems.append(err)
        else:
            cfg[k] = node[k]
    cfg.setdefault("outputs", [])
    cfg.setdefault("watchdog_ms", 0)
    cfg.setdefault("hal", "sim")
    if cfg.get("transport") not in cfg["transports"]:
        if "transport" in cfg:
            problems.append("transport %r is not one of the board's (%s)"
                            % (cfg["transport"], ", ".join(cfg["transports"])))
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
    problems = []
    cfg = merge(board, node, problems)
    if problems:
        say("config: %s: %s; ignored (the board's values or defaults instead)"
            % (node_path, "; ".join(problems)))
    if "node" not in cfg:
        cfg["node"] = None  # the HAL's unique id names it (see app.Node)
    return cfg
