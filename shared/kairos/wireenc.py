"""The wire encoders: a message to its JSON (the MQTT payload) or its serial
line, written into a caller's buffer by encode_into() (reports and events
then allocate nothing on MicroPython: digits go straight into the buffer,
field names are encoded once per type, the node id once per node), or as
new bytes by encode_json() / encode_line().  Part of kairos.wire, which
re-exports all three; docs/protocol.md has the format.
"""
from .crc16 import crc16

_KEYS = {}  # type -> (b'{"v":1,"t":"<type>"', b',"<field>":' per field), on first use
_last = [None, b""]  # the last string written and its JSON bytes (a node's id)


def _keys(t):
    ks = _KEYS.get(t)
    if ks is None:
        ks = [('{"v":%d,"t":%s' % (VERSION, _jstr(t))).encode()]
        for name, _spec in FIELDS[t]:
            ks.append((',"%s":' % name).encode())
        ks = _KEYS[t] = tuple(ks)
    return ks


def _put(buf, i, b):
    n = len(b)
    if i + n > len(buf):
        raise IndexError  # caught by encode_into: does not fit
    buf[i : i + n] = b
    return i + n


def _wint(buf, i, v):
    # Decimal digits straight into buf: str(v) would be a heap object.
    if v < 0:
        buf[i] = 45  # "-"
        i += 1
        v = -v
    n = 1
    t = v
    while t >= 10:
        t //= 10
        n += 1
    end = i + n
    if end > len(buf):
        raise IndexError
    while n:
        n -= 1
        buf[i + n] = 48 + v % 10
        v //= 10
    return end


def _wval(buf, i, v, spec):
    k = spec[0]
    if k == "s" or k == "n":
        if v is not _last[0]:
            _last[1] = _jstr(v).encode()
            _last[0] = v
        return _put(buf, i, _last[1])
    if k == "L" or k == "R":
        buf[i] = 91  # "["
        i += 1
        for j in range(len(v)):
            if j:
                buf[i] = 44  # ","
                i += 1
            i = _wval(buf, i, v[j], spec[3] if k == "L" else spec[1][j])
        buf[i] = 93  # "]"
        return i + 1
    if k == "D" or k == "A":  # hello channels, cmd args: rare, built as text
        out = []
        _jval(v, spec, out)
        return _put(buf, i, "".join(out).encode())
    return _wint(buf, i, v)


def encode_into(msg, buf, line=False, mac=None):
    """Encode msg into buf (a bytearray or memoryview) from its start: the
    JSON, or with line=True the whole serial line.  Returns the length, or
    -1 if buf is too small.  ValueError if msg is invalid.  Reports and
    events allocate nothing on the heap (MicroPython).  mac: a kairos.mac.Mac
    signs the frame (its MAC member last); a "mac" in msg is never written."""
    fields = _checked(msg)
    keys = _keys(msg["t"])
    try:
        i = _put(buf, 0, MARKER) if line else 0
        start = i
        i = _put(buf, i, keys[0])
        for j in range(len(fields)):
            i = _put(buf, i, keys[j + 1])
            i = _wval(buf, i, msg[fields[j][0]], fields[j][1])
        if mac is not None:
            i = mac.put_json(buf, start, i)
        buf[i] = 125  # "}"
        i += 1
        if line:
            c = crc16(buf, start=start, end=i)
            buf[i] = 32
            for j in range(4):
                d = (c >> (12 - 4 * j)) & 15
                buf[i + 1 + j] = 48 + d if d < 10 else 55 + d  # 0-9, A-F
            buf[i + 5] = 10
            i += 6
    except IndexError:
        return -1
    return i


def _encoded(msg, line, mac=None):
    for size in (1024, MAX_LINE + 16):
        buf = bytearray(size)
        n = encode_into(msg, buf, line, mac)
        if n >= 0:
            return bytes(memoryview(buf)[:n])
    raise ValueError("message too big to encode")


def encode_json(msg, mac=None):
    """Compact JSON bytes: {"v":1,"t":...,"node":...,<fields in table order>}
    (and ,"mac":"..." last when signed by mac, a kairos.mac.Mac)."""
    return _encoded(msg, False, mac)


def encode_line(msg, mac=None):
    """One serial line: @K1 <json> <CRC-16 of the json, 4 hex digits>\\n."""
    return _encoded(msg, True, mac)


# Last, not first: kairos.wire ends by importing the encoders above from here, so
# whichever of the two is imported first, the other finds what it needs already
# defined (at the top, `import kairos.wireenc` alone failed: wire asked a
# half-initialised wireenc for encode_into).  The functions read these at call time.
from .wire import FIELDS, MARKER, MAX_LINE, VERSION, _checked, _jstr, _jval  # noqa: E402
