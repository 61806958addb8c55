"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
xor; check value 0x29B1 for b"123456789"), for the wire codecs.

Pure ints and a 256-entry table, because not every MicroPython port has
binascii.crc32 and none has a CRC-16.  Every value stays below 2**16.
"""
from array import array

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


INIT = const(0xFFFF)
_POLY = const(0x1021)

_TABLE = None


def _table():
    # Built on first use (256 * 8 shifts, a few ms on a board) rather than
    # shipped as a literal: it is derived, so it cannot drift from _POLY.
    global _TABLE
    if _TABLE is None:
        t = array("H", bytes(512))
        for i in range(256):
            c = i << 8
            for _ in range(8):
                c = ((c << 1) ^ _POLY) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
            t[i] = c
        _TABLE = t
    return _TABLE


def crc16(data, crc=INIT, start=0, end=None):
    """CRC of data[start:end] (bytes, bytearray or memoryview) without
    slicing it (a slice would be a heap object); pass a previous result as
    crc to continue over a second buffer."""
    t = _table()
    if start == 0 and end is None:
        for b in data:
            crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
        return crc
    for i in range(start, len(data) if end is None else end):
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ data[i]]
    return crc
