"""Frame authentication: a per-node key and a short MAC on every frame
(docs/protocol.md §9).

The MAC is the first 8 bytes of HMAC-SHA256(key, signed), "signed" being the
frame's own bytes up to the MAC:

  JSON (MQTT payloads, serial lines)   {"v":1,...,"coh":[...],"mac":"<16 hex>"}
      signed = from the "{" to just before `,"mac":` (the MAC is the last
      member, always written as exactly these 26 closing bytes)
  binary (BLE)                         version | type | fields | MAC (8) | CRC
      signed = from the version byte to the end of the fields

A key is 16..64 bytes (node.json "key": its hex, written by `becomingone
flash` or `becomingone keys add`).  HMAC is written here over hashlib.sha256
(RFC 2104): every MicroPython port we run on has sha256, none of the board
ports ships the `hmac` module.  A node builds one Mac at start and signs each
frame with it: two hash objects and two digests per frame, nothing else.
Integers only, no I/O: shared code (kairos).
"""
import hashlib
import sys

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


TAG = const(8)  # bytes of MAC per frame
JSON_HEAD = b',"mac":"'
JSON_TAIL = const(26)  # len(',"mac":"') + 16 hex digits + len('"}')
KEY_MIN = const(16)
KEY_MAX = const(64)  # one SHA-256 block
AUTH = "auth"  # the reject reason of a frame that fails its node's key
_BLOCK = const(64)
_HEX = b"0123456789abcdef"
_CPYTHON = sys.implementation.name == "cpython"
if _CPYTHON:
    import hmac as _hmac  # CPython's one-shot HMAC is in C


def key_from_hex(text):
    """The key bytes of a hex string of 32..128 digits; ValueError if it is not one."""
    if type(text) is not str or not 2 * KEY_MIN <= len(text) <= 2 * KEY_MAX or len(text) % 2:
        raise ValueError("a key is 32..128 hex digits")
    out = bytearray(len(text) // 2)
    for i in range(len(out)):
        hi, lo = _nibble(text[2 * i]), _nibble(text[2 * i + 1])
        if hi < 0 or lo < 0:
            raise ValueError("a key is 32..128 hex digits")
        out[i] = hi << 4 | lo
    return bytes(out)


def _nibble(c):
    o = ord(c)
    if 48 <= o <= 57:
        return o - 48
    if 97 <= o <= 102:
        return o - 87
    if 65 <= o <= 70:
        return o - 55
    return -1


class Mac:
    """HMAC-SHA256 with one key, truncated to TAG bytes."""

    def __init__(self, key):
        # Any length, as RFC 2104 says (a node key is KEY_MIN..KEY_MAX bytes:
        # key_from_hex checks that); a key longer than a block is hashed.
        self.key = bytes(key)
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        k = bytearray(_BLOCK)
        k[: len(key)] = key
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            ipad[i] = k[i] ^ 0x36
            opad[i] = k[i] ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def digest(self, data):
        """The full 32-byte HMAC of data (bytes, bytearray or memoryview);
        a MAC is its first TAG bytes."""
        if _CPYTHON:
            return _hmac.digest(self.key, data, "sha256")
        h = hashlib.sha256(self._ipad)
        h.update(data)
        inner = h.digest()
        h = hashlib.sha256(self._opad)
        h.update(inner)
        return h.digest()

    def verify(self, data, tag):
        """Whether tag (TAG bytes) is data's MAC, in time that does not
        depend on where they differ."""
        if tag is None or len(tag) != TAG:
            return False
        d = self.digest(data)
        diff = 0
        for i in range(TAG):
            diff |= d[i] ^ tag[i]
        return diff == 0

    def put_json(self, buf, start, i):
        """Sign buf[start:i] (a JSON object's bytes, its closing brace not yet
        written) and write the MAC member at i; the new end.  IndexError if
        it does not fit (encode_into's own signal)."""
        if i + JSON_TAIL - 1 > len(buf):
            raise IndexError
        d = self.digest(memoryview(buf)[start:i])
        buf[i : i + 8] = JSON_HEAD
        i += 8
        for j in range(TAG):
            buf[i] = _HEX[d[j] >> 4]
            buf[i + 1] = _HEX[d[j] & 15]
            i += 2
        buf[i] = 34  # the closing quote; encode_into writes the brace
        return i + 1


def json_tag(payload):
    """(signed bytes, TAG-byte MAC) of a JSON frame (bytes) whose last member
    is its MAC in the one form a signer writes (`,"mac":"<16 lowercase hex
    digits>"}`), or None."""
    n = len(payload)
    p = n - JSON_TAIL + 8
    if n < JSON_TAIL + 2 or payload[p - 8 : p] != JSON_HEAD or payload[n - 2 :] != b'"}':
        return None
    tag = bytearray(TAG)
    for j in range(TAG):
        hi, lo = _lower(payload[p + 2 * j]), _lower(payload[p + 2 * j + 1])
        if hi < 0 or lo < 0:
            return None
        tag[j] = hi << 4 | lo
    return payload[: n - JSON_TAIL], bytes(tag)


def _lower(b):
    # A MAC's digits: 0-9 a-f only, so that each MAC has one spelling.
    if 48 <= b <= 57:
        return b - 48
    if 97 <= b <= 102:
        return b - 87
    return -1
