"""The BecomingONE wire protocol, version 1 (see docs/protocol.md).

Messages are plain dicts: "t" (type) plus the common fields node, boot, seq,
tick, plus the fields of their type (the table TYPES below).  This module
holds the message model (validate), the JSON encoding (the MQTT payload),
the serial line encoding  @K1 <json> <crc16 hex>\\n  with its streaming
decoder, and the hub's duplicate filter.  kairos.wirebin adds the binary
encoding and BLE fragments.  Runs unmodified on MicroPython and CPython;
every int stays inside +-2**30.

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
REASONS = (TRUNCATED, CRC, WRONG_VERSION, OVERSIZE, MALFORMED, TYPE, DUPLICATE, REPLAY, FRAGMENT)
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

_CH_CFG = (("name", ("s", 0, 16)), ("lags", ("L", 1, 8, ("H", 1, 1024))),
           ("s", ("B", 0, 255)), ("s0", ("B", 0, 255)), ("ic", _Q15))
# A report row: mean, e, k, c, t_re, t_im, coll (k and coll share a byte).
_ROW = ("R", (("h", -16384, 16384), _U30, ("3", 0, 7), _Q15, _S30, _S30, ("1", 0, 1)))

# (name, binary type code, fields after the common ones)
TYPES = (
    ("hello", 1, (("board", ("s", 0, 32)), ("fw", ("s", 0, 16)), ("period", ("H", 1, 60000)),
                  ("every", ("H", 1, 65535)), ("weight", ("B", 1, 255)),
                  ("caps", ("L", 0, 16, ("s", 0, 16))), ("ch", ("L", 0, 8, ("D", _CH_CFG))))),
    ("report", 2, (("n", _U30), ("drop", _CNT), ("miss", _CNT), ("ch", ("L", 0, 8, _ROW)))),
    ("event", 3, (("i", ("B", 0, 7)), ("on", ("B", 0, 1)), ("c", _Q15), ("n", _U30))),
    ("ping", 4, (("id", _ID), ("t0", _U30))),
    ("pong", 5, (("id", _ID), ("t0", _U30), ("t1", _U30), ("t2", _U30))),
    ("cmd", 6, (("id", _ID), ("op", ("s", 1, 16)), ("args", ("A", 8)))),
    ("ack", 7, (("id", _ID), ("ok", ("B", 0, 1)), ("err", ("s", 0, 64)))),
)
FIELDS = {}
for _t in TYPES:
    FIELDS[_t[0]] = HEAD + _t[2]

_NODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
_SEQ = (list, tuple)  # tuples are accepted on encode; decoders return lists


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
        return _printable(v) if k == "s" else all(ch in _NODE_CHARS for ch in v)
    if k == "L":
        ok = type(v) in _SEQ and spec[1] <= len(v) <= spec[2]
        return ok and all(_ok(x, spec[3]) for x in v)
    if k == "R":
        ok = type(v) in _SEQ and len(v) == len(spec[1])
        return ok and all(_ok(v[i], spec[1][i]) for i in range(len(v)))
    if k == "D":
        return type(v) is dict and _fields_ok(v, spec[1], 0)
    if k == "A":
        ok = type(v) is dict and len(v) <= spec[1]
        return ok and all(_ok(key, _ARG_KEY) and _arg_spec(v[key]) for key in v)
    # An int.  `type(v) is int` also refuses bool (an int subclass on CPython).
    return type(v) is int and spec[1] <= v <= spec[2]


def _arg_spec(v):
    """The spec a cmd argument value matches, or None."""
    for spec in (_S30, _ARG_STR, _ARG_LIST):
        if _ok(v, spec):
            return spec
    return None


def _fields_ok(d, fields, extra):
    if len(d) != len(fields) + extra:
        return False  # a missing or an unknown key
    return all(name in d and _ok(d[name], spec) for name, spec in fields)


def validate(msg):
    """None if msg is a valid message, else the reason: "type" for an
    unknown "t", "malformed" for anything else."""
    if type(msg) is not dict or type(msg.get("t")) is not str:
        return MALFORMED
    fields = FIELDS.get(msg["t"])
    if fields is None:
        return TYPE
    return None if _fields_ok(msg, fields, 1) else MALFORMED


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


def encode_json(msg):
    """Compact JSON bytes: {"v":1,"t":...,"node":...,<fields in table order>}."""
    fields = _checked(msg)
    out = ['{"v":%d,"t":' % VERSION, _jstr(msg["t"])]
    _jobj(msg, fields, out, ",")
    return "".join(out).encode()


MAX_JSON = const(MAX_LINE - 9)  # a frame's JSON: the line less marker and CRC


def decode_json(payload, counts, max_size=MAX_JSON):
    """The message in a JSON payload, or None with counts[reason] += 1.
    A payload over max_size bytes is "oversize", before any parsing."""
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
    r = validate(msg)
    if r is not None:
        _bump(counts, r)
        return None
    return msg


# -- serial lines -------------------------------------------------------------
def encode_line(msg):
    """One serial line: @K1 <json> <CRC-16 of the json, 4 hex digits>\\n."""
    j = encode_json(msg)
    return MARKER + j + (" %04X\n" % crc16(j)).encode()


def _hex4(b):
    # int() alone would also take " 1f", "+1f" or "1_f"
    for c in b:
        if c not in b"0123456789ABCDEFabcdef":
            return -1
    return int(bytes(b), 16)


def _frame(f, counts):
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
    return decode_json(j, counts)  # a good CRC over bad JSON: "malformed"


_IDLE = const(0)  # no marker on this line yet
_FRAME = const(1)  # buffering a frame from its marker
_SKIP = const(2)  # an oversize frame: dropping until the newline


class LineDecoder:
    """Frames from a byte stream cut into arbitrary chunks.

    Lines without a marker are skipped (counted as "noise"); a frame cut by
    a new marker counts "truncated" and the new frame is decoded; a frame
    longer than max_line counts "oversize" and the rest of its line is
    dropped.  Memory: max_line + 2 bytes, plus the chunk.  Never raises.
    """

    def __init__(self, max_line=MAX_LINE):
        self.max_line = max_line
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
            msg = _frame(buf, self.counts)
            if msg is not None:
                out.append(msg)
        elif mode == _IDLE and (text or buf.strip()):
            _bump(self.counts, NOISE)


# -- duplicates (hub side) -----------------------------------------------------
class Dedup:
    """Accept each (node, boot, seq) once.

    Per node: the current boot, the highest seq seen and a bitmap of the
    last `window` seqs, so a frame arriving late but inside the window is
    still accepted once ("late"); a frame older than the window, or from
    one of the node's previous `boots` boot ids, is refused ("replay").
    A forward jump adds the skipped seqs to counts["gap"].
    """

    def __init__(self, window=128, boots=4):
        self.window = (window + 7) & ~7
        self.boots = boots
        self.counts = {}
        self._nodes = {}  # node -> [boot, top seq, bitmap, previous boots]

    def _bit(self, bits, seq, on):
        """Set (on) or clear the bit of seq; return whether it was set."""
        i = seq % self.window
        m = 1 << (i & 7)
        old = bits[i >> 3] & m
        bits[i >> 3] = bits[i >> 3] | m if on else bits[i >> 3] & ~m & 0xFF
        return old

    def accept(self, msg):
        """True if msg is new; False (and a count) for a repeat or replay."""
        node, boot, seq = msg["node"], msg["boot"], msg["seq"]
        st = self._nodes.get(node)
        if st is None or st[0] != boot:
            if st is not None:
                if boot in st[3]:
                    _bump(self.counts, REPLAY)
                    return False
                st[3].append(st[0])
                if len(st[3]) > self.boots:
                    st[3].pop(0)
            st = self._nodes[node] = [boot, seq, bytearray(self.window >> 3), st[3] if st else []]
            self._bit(st[2], seq, True)
            return True
        bits, top = st[2], st[1]
        if seq > top:
            if seq - top > 1:
                _bump(self.counts, GAP, seq - top - 1)
            if seq - top >= self.window:
                for i in range(len(bits)):
                    bits[i] = 0
            else:
                for s in range(top + 1, seq):
                    self._bit(bits, s, False)
            self._bit(bits, seq, True)
            st[1] = seq
            return True
        if top - seq >= self.window:
            _bump(self.counts, REPLAY)  # too old to tell: assume a replay
            return False
        if self._bit(bits, seq, True):
            _bump(self.counts, DUPLICATE)
            return False
        _bump(self.counts, LATE)
        return True
