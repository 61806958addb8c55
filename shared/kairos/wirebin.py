"""Compact binary encoding of wire messages, and BLE fragments.

A frame is  version (u8) | type code (u8) | fields | CRC-16 (u16 LE)  with
the fields of kairos.wire.FIELDS in table order, little-endian, driven by
their specs: B H h I i fixed width, "v" an unsigned LEB128 varint, strings
a u8 length and ASCII, lists a u8 count and items, report rows their ints
with the bit fields (k, coll) packed into one trailing byte, cmd args a u8
count of (key, tag, value) with tag 0 int (i32), 1 str, 2 list of i32.

fragments() cuts a frame into BLE notifications of at most mtu bytes, each
with a 2-byte header: message counter (u8) and index (7 bits) | 0x80 on
the last one.  Reassembler puts them back together.
"""
import struct

from .crc16 import crc16
from .wire import (
    _ARG_KEY,
    _ARG_LIST,
    _ARG_STR,
    _S30,
    CRC,
    FIELDS,
    FRAGMENT,
    MALFORMED,
    OVERSIZE,
    TRUNCATED,
    TYPE,
    TYPES,
    VERSION,
    WRONG_VERSION,
    _arg_spec,
    _bump,
    _checked,
    validate,
)

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


MAX_BIN = const(1024)  # the largest valid frame is < 800 bytes
MTU_MIN = const(20)
MTU_MAX = const(244)  # the usual ceiling (LE data length 251 - 7); larger works too
_HDR = const(2)  # fragment header: counter, index | last
_LAST = const(0x80)
_TAG = const(8)  # a signed frame's MAC (kairos.mac.TAG)
_MAX_FRAGS = const(128)  # 7-bit index; 128 * 18 bytes > MAX_BIN at the smallest MTU

_SIZE = {"B": 1, "H": 2, "h": 2, "I": 4, "i": 4}
_CODES = {}
_NAMES = {}
for _t in TYPES:
    _CODES[_t[0]] = _t[1]
    _NAMES[_t[1]] = _t[0]
_ARG_SPECS = (_S30, _ARG_STR, _ARG_LIST)  # indexed by the tag byte


# -- encoder ------------------------------------------------------------------
def _put(out, v, spec):
    k = spec[0]
    if k in _SIZE:
        out.extend(struct.pack("<" + k, v))
    elif k == "v":
        while v > 0x7F:
            out.append(0x80 | (v & 0x7F))
            v >>= 7
        out.append(v)
    elif k == "s" or k == "n":
        out.append(len(v))
        out.extend(v.encode())
    elif k == "L":
        out.append(len(v))
        for x in v:
            _put(out, x, spec[3])
    elif k == "R":
        bits = nb = 0
        for i in range(len(v)):
            e = spec[1][i]
            if e[0] in _SIZE:
                _put(out, v[i], e)
            else:  # a bit field, width = the digit
                bits |= v[i] << nb
                nb += int(e[0])
        for _ in range((nb + 7) >> 3):
            out.append(bits & 0xFF)
            bits >>= 8
    elif k == "D":
        for name, e in spec[1]:
            _put(out, v[name], e)
    else:  # "A"
        out.append(len(v))
        for key in sorted(v):
            e = _arg_spec(v[key])
            _put(out, key, _ARG_KEY)
            out.append(_ARG_SPECS.index(e))
            _put(out, v[key], e)


def encode_bin(msg, mac=None):
    """The binary frame of msg (bytes); ValueError if msg is invalid.  mac:
    a kairos.mac.Mac signs it (its MAC after the fields, before the CRC)."""
    fields = _checked(msg)
    out = bytearray((VERSION, _CODES[msg["t"]]))
    for name, spec in fields:
        _put(out, msg[name], spec)
    if mac is not None:
        out.extend(memoryview(mac.digest(out))[:_TAG])
    out.extend(struct.pack("<H", crc16(out)))
    return bytes(out)


# -- decoder ------------------------------------------------------------------
def _take(data, pos, n):
    if pos + n > len(data):
        raise ValueError("short")
    return pos + n


def _get(data, pos, spec):
    """(value, new pos); raises on short or bad data (caught by decode_bin)."""
    k = spec[0]
    if k in _SIZE:
        end = _take(data, pos, _SIZE[k])
        return struct.unpack_from("<" + k, data, pos)[0], end
    if k == "v":
        v = sh = 0
        while True:
            b = data[pos]
            pos += 1
            if sh == 28 and b > 3:
                raise ValueError("varint")  # would pass 2**30: no big ints
            v |= (b & 0x7F) << sh
            if b < 0x80:
                return v, pos
            sh += 7
    if k == "s" or k == "n":
        n = data[pos]
        end = _take(data, pos + 1, n)
        return bytes(data[pos + 1 : end]).decode(), end
    if k == "L" or k == "A":
        n = data[pos]
        pos += 1
        out = [] if k == "L" else {}
        for _ in range(n):
            if k == "L":
                v, pos = _get(data, pos, spec[3])
                out.append(v)
            else:
                key, pos = _get(data, pos, _ARG_KEY)
                e = _ARG_SPECS[data[pos]]
                out[key], pos = _get(data, pos + 1, e)
        return out, pos
    if k == "R":
        row = []
        nb = 0
        for e in spec[1]:
            if e[0] in _SIZE:
                v, pos = _get(data, pos, e)
                row.append(v)
            else:
                row.append(None)
                nb += int(e[0])
        bits = 0
        for i in range((nb + 7) >> 3):
            bits |= data[pos + i] << (8 * i)
        pos = _take(data, pos, (nb + 7) >> 3)
        for i in range(len(row)):
            if row[i] is None:
                w = int(spec[1][i][0])
                row[i] = bits & ((1 << w) - 1)
                bits >>= w
        return row, pos
    # "D"
    d = {}
    for name, e in spec[1]:
        d[name], pos = _get(data, pos, e)
    return d, pos


def decode_bin(data, counts, max_size=MAX_BIN, auth=None):
    """The message in a binary frame, or None with counts[reason] += 1.
    Order of checks: length (over max_size: "oversize"), CRC, version,
    type, fields, then auth(msg, signed, tag) as in wire.decode_json (a
    frame with 8 bytes after its fields is signed: they are its MAC).
    Never raises."""
    try:
        n = len(data)
    except Exception:
        n = 0
    if n > max_size:
        _bump(counts, OVERSIZE)
        return None
    try:
        data = bytes(data)
    except Exception:
        data = b""
    n = len(data)
    if n < 5:
        _bump(counts, TRUNCATED)
        return None
    if crc16(data[:-2]) != data[-2] | (data[-1] << 8):
        _bump(counts, CRC)
        return None
    if data[0] != VERSION:
        _bump(counts, WRONG_VERSION)
        return None
    t = _NAMES.get(data[1])
    if t is None:
        _bump(counts, TYPE)
        return None
    msg = {"t": t}
    body = data[:-2]
    try:
        pos = 2
        for name, spec in FIELDS[t]:
            msg[name], pos = _get(body, pos, spec)
        r = None if len(body) - pos in (0, _TAG) else MALFORMED
    except Exception:  # short data, bad tag, bad UTF-8, ...
        r = MALFORMED
    if r is None:
        r = validate(msg)
    if r is not None:
        _bump(counts, r)
        return None
    signed = tag = None
    if pos < len(body):  # signed (kairos.mac)
        signed, tag = body[:pos], body[pos:]
    if auth is not None and not auth(msg, signed, tag):
        return None
    return msg


# -- BLE fragments --------------------------------------------------------------
_counter = 0


def fragments(data, mtu, counter=None):
    """data cut into notifications of <= mtu bytes, mtu >= 20 being the
    usable notification payload (ATT MTU - 3; 20..244 in practice).
    counter: the message counter (0..255); by default a module-wide
    counter that advances once per call."""
    global _counter
    if type(mtu) is not int or mtu < MTU_MIN:
        raise ValueError("mtu must be an int >= %d, got %r" % (MTU_MIN, mtu))
    if counter is None:
        counter = _counter
        _counter = (_counter + 1) & 0xFF
    size = mtu - _HDR
    count = (len(data) + size - 1) // size or 1
    if count > _MAX_FRAGS:
        raise ValueError("%d bytes need more than %d fragments" % (len(data), _MAX_FRAGS))
    out = []
    for i in range(count):
        hdr = bytes((counter & 0xFF, i | (_LAST if i == count - 1 else 0)))
        out.append(hdr + bytes(data[i * size : (i + 1) * size]))
    return out


class Reassembler:
    """Binary frames back from fragments, decoded with decode_bin.

    An unexpected fragment (lost, out of order, from another message, or a
    partial message growing past max_size) drops the partial message and
    counts "fragment" once; the stream resyncs at the next index-0
    fragment.  An immediate repeat of the last fragment is ignored (also
    after its message completed), so use a new Reassembler per connection:
    a rebooted sender restarts its counter.  Non-first fragments of a
    message whose start was never seen count "fragment" once per message.
    Memory: one partial message of at most max_size bytes.  auth: as
    decode_bin's (the hub's check of the nodes' MACs).
    """

    def __init__(self, max_size=MAX_BIN, auth=None):
        self.max_size = max_size
        self.auth = auth
        self.counts = {}
        self._buf = None  # the partial message, or None
        self._ctr = -1  # counter of the current or last message
        self._next = 0  # index expected next

    def _drop(self):
        if self._buf is None:
            return False
        self._buf = None
        _bump(self.counts, FRAGMENT)
        return True

    def feed(self, frag):
        """The decoded message if frag completed one, else None."""
        try:
            frag = bytes(frag)
        except Exception:
            frag = b""
        if len(frag) < _HDR:
            if not self._drop():
                _bump(self.counts, FRAGMENT)
            return None
        ctr, idx, last = frag[0], frag[1] & 0x7F, frag[1] & _LAST
        if ctr == self._ctr and idx == self._next - 1:
            return None  # a repeated notification
        if idx == 0:
            self._drop()
            self._buf = bytearray()
        elif self._buf is None or ctr != self._ctr or idx != self._next:
            self._drop()
            if ctr != self._ctr:
                _bump(self.counts, FRAGMENT)  # a message whose start was lost
            self._ctr = ctr
            self._next = idx + 1
            return None
        self._ctr = ctr
        self._next = idx + 1
        self._buf.extend(frag[_HDR:])
        if len(self._buf) > self.max_size:
            self._drop()
            return None
        if not last:
            return None
        buf = self._buf
        self._buf = None
        return decode_bin(buf, self.counts, auth=self.auth)
