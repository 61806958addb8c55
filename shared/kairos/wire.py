"""The BecomingONE wire protocol, version 1 (see docs/protocol.md).

Messages are plain dicts: "t" (type) plus the common fields node, boot, seq,
tick, plus the fields of their type (the table TYPES below).  This module
holds the message model (validate), the JSON and serial line decoders
(the line is  @K1 <json> <crc16 hex>, newline) with the streaming
LineDecoder; kairos.wireenc holds the encoders (re-exported here),
kairos.dedup the hub's duplicate filter (wire.Dedup, loaded on first use)
and kairos.wirebin the binary encoding and BLE fragments.  Runs unmodified
on MicroPython and CPython; every int stays inside +-2**30.

Strings are printable ASCII (0x20..0x7E): the JSON is then identical on
both interpreters and byte counts equal character counts.  Use text() to
clean arbitrary text (e.g. an exception message) before sending it.
"""
import json

from .crc16 import crc16

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


VERSION = const(1)
MARKER = b"@K1 "
MAX_LINE = const(4096)  # bytes from the marker to the CRC; the largest valid frame is < 3700
M30 = const(0x3FFFFFFF)  # ints are 30-bit: small ints on every MicroPython port

# Reject reasons: the keys of the counts dicts.
TRUNCATED, CRC, WRONG_VERSION, OVERSIZE = "truncated", "crc", "version", "oversize"
MALFORMED, TYPE, DUPLICATE = "malformed", "type", "duplicate"
REPLAY, FRAGMENT = "replay", "fragment"
NOHELLO, AHEAD = "nohello", "ahead"  # Dedup: a boot not announced yet; a seq too far ahead
REASONS = (TRUNCATED, CRC, WRONG_VERSION, OVERSIZE, MALFORMED, TYPE, DUPLICATE, REPLAY, FRAGMENT,
           NOHELLO, AHEAD)
# Also counted, but not rejects: skipped non-frame lines, and Dedup's
# missing (gap) and late-but-accepted (late) sequence numbers.
NOISE, GAP, LATE = "noise", "gap", "late"

# Field specs.  One table drives validation, JSON and binary: the first
# item names the binary kind.
#   (k, lo, hi)         int; k = struct code B H h I i, "v" varint, or a
#                       digit: a bit field of that width (rows only)
#   ("s", lo, hi)       printable ASCII str of lo..hi chars
#   ("n", lo, hi)       node id: lo..hi chars of [A-Za-z0-9_.-]
#   ("L", lo, hi, e)    list of lo..hi items of spec e
#   ("R", (e, ...))     fixed-length list of ints, one spec per item
#   ("D", fields)       dict with exactly these (name, spec) fields
#   ("A", hi)           cmd args: <= hi str keys -> int | str | list of ints
_U30 = ("I", 0, M30)
_S30 = ("i", -M30, M30)
_CNT = ("v", 0, M30)  # counters that are usually small: 1..5 bytes in binary
_ID = ("H", 0, 65535)
_Q15 = ("H", 0, 32767)
_ARG_KEY = ("s", 1, 16)
_ARG_STR = ("s", 0, 32)
_ARG_LIST = ("L", 0, 16, _S30)

HEAD = (("node", ("n", 1, 32)), ("boot", _U30), ("seq", _CNT), ("tick", _U30))
_NODE_ID = HEAD[0][1]  # node_ok(): the node id rule, everywhere

_CH_CFG = (("name", ("s", 0, 16)), ("lags", ("L", 1, 8, ("H", 1, 1024))),
           ("s", ("B", 0, 255)), ("s0", ("B", 0, 255)), ("ic", _Q15))
# A report row: mean, e, k, c, t_re, t_im, coll (k and coll share a byte).
_ROW = ("R", (("h", -16384, 16384), _U30, ("3", 0, 7), _Q15, _S30, _S30, ("1", 0, 1)))
# A report's per-lag spectrum: per channel (as many as rows), c of each lag.
_COH = ("L", 0, 8, ("L", 1, 8, _Q15))

# (name, binary type code, fields after the common ones)
TYPES = (
    ("hello", 1, (("board", ("s", 0, 32)), ("fw", ("s", 0, 16)), ("period", ("H", 1, 60000)),
                  ("every", ("H", 1, 65535)), ("weight", ("B", 1, 255)),
                  ("caps", ("L", 0, 16, ("s", 0, 16))), ("ch", ("L", 0, 8, ("D", _CH_CFG))))),
    ("report", 2, (("n", _U30), ("drop", _CNT), ("miss", _CNT), ("ch", ("L", 0, 8, _ROW)),
                   ("coh", _COH))),
    ("event", 3, (("i", ("B", 0, 7)), ("on", ("B", 0, 1)), ("c", _Q15), ("n", _U30))),
    ("ping", 4, (("id", _ID), ("t0", _U30))),
    ("pong", 5, (("id", _ID), ("t0", _U30), ("t1", _U30), ("t2", _U30))),
    ("cmd", 6, (("id", _ID), ("op", ("s", 1, 16)), ("args", ("A", 8)))),
    ("ack", 7, (("id", _ID), ("ok", ("B", 0, 1)), ("err", ("s", 0, 64)))),
    # hub -> node: these seqs of the node's boot b are stored (lo..hi ranges);
    # the node lets them go from its spool (docs/protocol.md §8).
    ("got", 8, (("b", _U30), ("s", ("L", 1, 16, ("R", (_U30, _U30)))))),
)
FIELDS = {}
for _t in TYPES:
    FIELDS[_t[0]] = HEAD + _t[2]

_NODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
_SEQ = (list, tuple)  # tuples are accepted on encode; decoders return lists
_node_ok = [None]  # the last node id found valid (the same str object: no re-check)


def _bump(counts, reason, n=1):
    counts[reason] = counts.get(reason, 0) + n


# -- the message model ------------------------------------------------------
def _printable(s):
    b = s.encode()
    # len(b) == len(s) rules out non-ASCII (MicroPython has no str.isascii).
    return len(b) == len(s) and (not b or (min(b) >= 0x20 and max(b) <= 0x7E))


def _ok(v, spec):
    k = spec[0]
    if k == "s" or k == "n":
        if type(v) is not str or not spec[1] <= len(v) <= spec[2]:
            return False
        if k == "s":
            return _printable(v)
        if v is _node_ok[0]:
            return True  # the node id of every frame a node sends: checked once
        for ch in v:
            if ch not in _NODE_CHARS:
                return False
        _node_ok[0] = v
        return True
    # Loops, not all(<generator>): a generator is a heap object, and the node
    # validates every frame it sends.
    if k == "L":
        if type(v) not in _SEQ or not spec[1] <= len(v) <= spec[2]:
            return False
        for x in v:  # noqa: SIM110
            if not _ok(x, spec[3]):
                return False
        return True
    if k == "R":
        if type(v) not in _SEQ or len(v) != len(spec[1]):
            return False
        for i in range(len(v)):  # noqa: SIM110
            if not _ok(v[i], spec[1][i]):
                return False
        return True
    if k == "D":
        return type(v) is dict and _fields_ok(v, spec[1], 0)
    if k == "A":
        if type(v) is not dict or len(v) > spec[1]:
            return False
        for key in v:  # noqa: SIM110
            if not _ok(key, _ARG_KEY) or _arg_spec(v[key]) is None:
                return False
        return True
    # An int.  `type(v) is int` also refuses bool (an int subclass on CPython).
    return type(v) is int and spec[1] <= v <= spec[2]


def node_ok(node):
    """Whether node is a node id: 1..32 characters of [A-Za-z0-9_.-].  The
    one rule, wherever a name enters: frames, MQTT topics (status and last
    will too), node configs, the hub's registry."""
    return _ok(node, _NODE_ID)


def _arg_spec(v):
    """The spec a cmd argument value matches, or None."""
    for spec in (_S30, _ARG_STR, _ARG_LIST):
        if _ok(v, spec):
            return spec
    return None


def _fields_ok(d, fields, extra):
    if len(d) != len(fields) + extra:
        return False  # a missing or an unknown key
    for name, spec in fields:  # noqa: SIM110
        if name not in d or not _ok(d[name], spec):
            return False
    return True


def validate(msg):
    """None if msg is a valid message, else the reason: "type" for an
    unknown "t", "malformed" for anything else."""
    if type(msg) is not dict or type(msg.get("t")) is not str:
        return MALFORMED
    fields = FIELDS.get(msg["t"])
    if fields is None:
        return TYPE
    if not _fields_ok(msg, fields, 1):
        return MALFORMED
    if msg["t"] == "report":  # a spectrum per row, and each row's k one of its lags
        rows, coh = msg["ch"], msg["coh"]
        if len(coh) != len(rows):
            return MALFORMED
        for i in range(len(rows)):  # noqa: SIM110
            if rows[i][2] >= len(coh[i]):
                return MALFORMED
    elif msg["t"] == "got":  # ranges lo..hi, lo <= hi
        for r in msg["s"]:  # noqa: SIM110
            if r[0] > r[1]:
                return MALFORMED
    return None


def text(s, n=64):
    """s as printable ASCII of at most n chars (others become "?"), for
    free text such as the "err" of an ack."""
    s = str(s)[:n]
    if _printable(s):
        return s
    return "".join(c if " " <= c <= "~" else "?" for c in s)


# -- JSON (MQTT payloads) -----------------------------------------------------
def _jstr(s):
    # "@" is escaped so that "@K" can never occur inside a serial frame: a
    # marker in the middle of a frame then always means a new frame began.
    if '"' in s or "\\" in s or "@" in s:
        s = s.replace("\\", "\\\\").replace('"', '\\"').replace("@", "\\u0040")
    return '"' + s + '"'


def _jval(v, spec, out):
    k = spec[0]
    if k == "s" or k == "n":
        out.append(_jstr(v))
    elif k == "L" or k == "R":
        out.append("[")
        for i in range(len(v)):
            if i:
                out.append(",")
            _jval(v[i], spec[3] if k == "L" else spec[1][i], out)
        out.append("]")
    elif k == "D":
        _jobj(v, spec[1], out, "{")
    elif k == "A":
        sep = "{"
        for key in sorted(v):  # sorted: the same bytes on every interpreter
            out.append(sep + _jstr(key) + ":")
            _jval(v[key], _arg_spec(v[key]), out)
            sep = ","
        out.append("}" if v else "{}")
    else:
        out.append(str(v))


def _jobj(d, fields, out, sep):
    for name, spec in fields:
        out.append(sep + '"' + name + '":')
        _jval(d[name], spec, out)
        sep = ","
    out.append("}")


def _checked(msg):
    r = validate(msg)
    if r is not None:
        raise ValueError("invalid message (%s): %r" % (r, msg))
    return FIELDS[msg["t"]]


MAX_JSON = const(MAX_LINE - 9)  # a frame's JSON: the line less marker and CRC


def decode_json(payload, counts, max_size=MAX_JSON, auth=None):
    """The message in a JSON payload, or None with counts[reason] += 1.
    A payload over max_size bytes is "oversize", before any parsing.

    A frame may end in a MAC member (kairos.mac): it is taken off the
    message, and auth(msg, signed, tag), when given, says whether the frame
    stands (signed and tag are None for a frame without a MAC); a frame it
    refuses is None, counted by auth itself.  Without auth a MAC is ignored."""
    try:
        n = len(payload)
    except Exception:
        n = -1
    if n > max_size:
        _bump(counts, OVERSIZE)
        return None
    try:
        msg = json.loads(payload)
    except Exception:  # ValueError, TypeError, UnicodeError, RecursionError, ...
        _bump(counts, MALFORMED)
        return None
    if type(msg) is not dict or type(msg.get("v")) is not int:
        _bump(counts, MALFORMED)
        return None
    if msg.pop("v") != VERSION:
        _bump(counts, WRONG_VERSION)
        return None
    signed = tag = None
    if "mac" in msg:
        del msg["mac"]
        from .mac import json_tag

        st = json_tag(payload.encode() if type(payload) is str else payload)
        if st is None:  # a MAC anywhere but last, or not in its one form
            _bump(counts, MALFORMED)
            return None
        signed, tag = st
    r = validate(msg)
    if r is not None:
        _bump(counts, r)
        return None
    if auth is not None and not auth(msg, signed, tag):
        return None
    return msg


# -- serial lines -------------------------------------------------------------
def _hex4(b):
    # int() alone would also take " 1f", "+1f" or "1_f"
    for c in b:
        if c not in b"0123456789ABCDEFabcdef":
            return -1
    return int(bytes(b), 16)


def _frame(f, counts, auth=None):
    """Decode one complete line that starts with "@K" (CR already removed)."""
    if f[:4] != MARKER:
        i = 2
        while i < len(f) and 48 <= f[i] <= 57:
            i += 1
        if i == len(f):
            _bump(counts, TRUNCATED)  # cut inside the marker
        elif i > 2 and f[i] == 32:
            _bump(counts, WRONG_VERSION)  # @K<n> : another protocol version
        else:
            _bump(counts, NOISE)  # text that merely contains "@K"
        return None
    if len(f) < 11 or f[-5] != 32 or _hex4(f[-4:]) < 0:
        _bump(counts, TRUNCATED)  # no " XXXX" CRC at the end: the line was cut
        return None
    j = f[4:-5]
    if crc16(j) != _hex4(f[-4:]):
        _bump(counts, CRC)
        return None
    return decode_json(j, counts, auth=auth)  # a good CRC over bad JSON: "malformed"


_IDLE = const(0)  # no marker on this line yet
_FRAME = const(1)  # buffering a frame from its marker
_SKIP = const(2)  # an oversize frame: dropping until the newline


class LineDecoder:
    """Frames from a byte stream cut into arbitrary chunks.

    Lines without a marker are skipped (counted as "noise"); a frame cut by
    a new marker counts "truncated" and the new frame is decoded; a frame
    longer than max_line counts "oversize" and the rest of its line is
    dropped.  Memory: max_line + 2 bytes, plus the chunk.  Never raises.
    auth: as decode_json's (the hub's check of the nodes' MACs).
    """

    def __init__(self, max_line=MAX_LINE, auth=None):
        self.max_line = max_line
        self.auth = auth
        self.counts = {}
        self._buf = bytearray()
        self._mode = _IDLE
        self._text = False  # the line had non-blank bytes before any marker

    def feed(self, data):
        """Decoded messages completed by this chunk, oldest first."""
        out = []
        if type(data) is not bytes and type(data) is not bytearray:
            try:
                data = bytes(data)
            except Exception:
                return out
        pos = 0
        n = len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            end = n if nl < 0 else nl
            if end > pos:
                self._add(data[pos:end])
            if nl < 0:
                break
            self._eol(out)
            pos = nl + 1
        return out

    def _add(self, seg):
        if self._mode == _SKIP:
            return
        buf = self._buf
        start = len(buf)
        buf.extend(seg)
        if self._mode == _IDLE:
            p = buf.find(b"@K")
            if p < 0:
                if buf.strip():
                    self._text = True
                # Keep a trailing "@": the marker may continue in the next chunk.
                self._buf = bytearray(b"@") if buf[-1] == 64 else bytearray()
                return
            buf = self._buf = buf[p:]
            self._mode = _FRAME
            start = 1
        while True:
            # A later marker cuts this frame short.  Without one, the frame
            # reaches at least len - 1 (the last byte may be a marker's "@").
            # The same outcome for any chunking of the line.
            p = buf.find(b"@K", start - 1 if start > 1 else 1)
            if (p if p >= 0 else len(buf) - 1) > self.max_line + 1:  # + 1: a CR
                _bump(self.counts, OVERSIZE)
                self._mode = _SKIP
                self._buf = bytearray()
                return
            if p < 0:
                return
            _bump(self.counts, TRUNCATED)
            buf = self._buf = buf[p:]
            start = 1

    def _eol(self, out):
        mode, buf, text = self._mode, bytes(self._buf), self._text
        self._mode, self._buf, self._text = _IDLE, bytearray(), False
        if mode == _FRAME:
            if buf[-1] == 13:
                buf = buf[:-1]
            if len(buf) > self.max_line:
                _bump(self.counts, OVERSIZE)
                return
            msg = _frame(buf, self.counts, self.auth)
            if msg is not None:
                out.append(msg)
        elif mode == _IDLE and (text or buf.strip()):
            _bump(self.counts, NOISE)


# -- duplicates (hub side): kairos.dedup, loaded on first use -----------------
def __getattr__(name):
    # wire.Dedup without its code on a node (MicroPython and CPython both
    # call a module's __getattr__ for a missing name).
    if name == "Dedup":
        from .dedup import Dedup

        return Dedup
    raise AttributeError(name)


# The encoders (into a caller's buffer; allocation-free for reports/events).
from .wireenc import encode_into, encode_json, encode_line  # noqa: E402, F401
