"""The wire protocol (kairos.wire, kairos.wirebin): exact round trips of
every message type in JSON, serial lines and binary; BLE fragments at every
MTU; a garbage corpus with exact reject counts; decoders never raise."""
import binascii
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kairos import wire, wirebin
from kairos.crc16 import crc16

M30 = 2**30 - 1
HEAD = {"node": "node-01", "boot": 123456789, "seq": 42, "tick": 987654321}

# One fixed message of every type (also used by test_wire_micropython.py).
EXAMPLES = [
    dict(HEAD, t="hello", board="esp32s3", fw="0.1.0", period=10, every=100, weight=1,
         caps=["led", "neopixel", "ble"],
         ch=[{"name": "acc_x", "lags": [2, 4, 8, 16], "s": 8, "s0": 2, "ic": 22938},
             {"name": "mic", "lags": [1], "s": 6, "s0": 0, "ic": 0}]),
    dict(HEAD, t="report", n=4096, drop=0, miss=3,
         ch=[[-1234, 5678, 2, 30000, -100000, 99999, 1], [16384, M30, 7, 32767, M30, -M30, 0],
             [-16384, 0, 0, 0, 0, 0, 0], [0, 1, 3, 1, -1, 1, 1]]),
    dict(HEAD, t="event", i=2, on=1, c=31000, n=4100),
    dict(HEAD, t="ping", node="node-01", id=7, t0=5000),
    dict(HEAD, t="pong", id=7, t0=5000, t1=100, t2=102),
    dict(HEAD, t="cmd", id=9, op="set", args={"led": [255, 0, 0], "mode": 'a@b"c\\', "x": -5}),
    dict(HEAD, t="cmd", id=10, op="reboot", args={}),
    dict(HEAD, t="ack", id=9, ok=0, err="bad arg: 'mode'"),
]


# -- strategies: valid messages, written from the spec, not from wire.TYPES ----
def ascii_text(lo, hi):
    return st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=lo, max_size=hi)


U30 = st.integers(0, M30)
S30 = st.integers(-M30, M30)
ID = st.integers(0, 65535)
Q15 = st.integers(0, 32767)
NODE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-",
               min_size=1, max_size=32)
COMMON = {"node": NODE, "boot": U30, "seq": U30, "tick": U30}
CH_CFG = st.fixed_dictionaries({
    "name": ascii_text(0, 16),
    "lags": st.lists(st.integers(1, 1024), min_size=1, max_size=8),
    "s": st.integers(0, 255), "s0": st.integers(0, 255), "ic": Q15,
})
ROW = st.tuples(st.integers(-16384, 16384), U30, st.integers(0, 7), Q15, S30, S30,
                st.integers(0, 1)).map(list)
ARG = st.one_of(S30, ascii_text(0, 32), st.lists(S30, max_size=16))


def msg_of(t, **fields):
    return st.fixed_dictionaries(dict(COMMON, t=st.just(t), **fields))


MESSAGES = {
    "hello": msg_of("hello", board=ascii_text(0, 32), fw=ascii_text(0, 16),
                    period=st.integers(1, 60000), every=st.integers(1, 65535),
                    weight=st.integers(1, 255), caps=st.lists(ascii_text(0, 16), max_size=16),
                    ch=st.lists(CH_CFG, max_size=8)),
    "report": msg_of("report", n=U30, drop=U30, miss=U30, ch=st.lists(ROW, max_size=8)),
    "event": msg_of("event", i=st.integers(0, 7), on=st.integers(0, 1), c=Q15, n=U30),
    "ping": msg_of("ping", id=ID, t0=U30),
    "pong": msg_of("pong", id=ID, t0=U30, t1=U30, t2=U30),
    "cmd": msg_of("cmd", id=ID, op=ascii_text(1, 16),
                  args=st.dictionaries(ascii_text(1, 16), ARG, max_size=8)),
    "ack": msg_of("ack", id=ID, ok=st.integers(0, 1), err=ascii_text(0, 64)),
}
ANY_MESSAGE = st.one_of(*MESSAGES.values())
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def line_frame(j):
    """A serial line around the JSON bytes j, with a correct CRC."""
    return wire.MARKER + j + b" %04X\n" % crc16(j)


# -- CRC --------------------------------------------------------------------
def test_crc16_check_value():
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


@given(st.binary(max_size=300), st.binary(max_size=50))
def test_crc16_matches_binascii_and_chains(a, b):
    assert crc16(a) == binascii.crc_hqx(a, 0xFFFF)  # crc_hqx with init 0xFFFF is CCITT-FALSE
    assert crc16(b, crc16(a)) == crc16(a + b)


# -- round trips --------------------------------------------------------------
@pytest.mark.parametrize("msg", EXAMPLES, ids=[m["t"] for m in EXAMPLES])
def test_examples_round_trip_in_every_encoding(msg):
    counts = {}
    assert wire.validate(msg) is None
    assert wire.decode_json(wire.encode_json(msg), counts) == msg
    assert wirebin.decode_bin(wirebin.encode_bin(msg), counts) == msg
    dec = wire.LineDecoder()
    assert dec.feed(wire.encode_line(msg)) == [msg]
    assert counts == {} and dec.counts == {}


@pytest.mark.parametrize("t", sorted(MESSAGES))
@SLOW
@given(data=st.data())
def test_every_type_round_trips(t, data):
    msg = data.draw(MESSAGES[t])
    assert wire.validate(msg) is None
    counts = {}
    payload = wire.encode_json(msg)
    assert json.loads(payload) == dict(msg, v=1)  # standard JSON, ints stay ints
    assert wire.decode_json(payload, counts) == msg
    line = wire.encode_line(msg)
    assert line.startswith(b"@K1 ") and line.endswith(b"\n") and line.count(b"\n") == 1
    assert len(line) <= wire.MAX_LINE + 1
    assert wire.LineDecoder().feed(line) == [msg]
    frame = wirebin.encode_bin(msg)
    assert len(frame) <= wirebin.MAX_BIN
    assert wirebin.decode_bin(frame, counts) == msg
    assert counts == {}


@SLOW
@given(st.lists(ANY_MESSAGE, min_size=1, max_size=6), st.booleans(), st.integers(0, 2**32))
def test_line_stream_in_random_chunks(msgs, crlf, seed):
    rnd = random.Random(seed)
    stream = b"".join(wire.encode_line(m) for m in msgs)
    if crlf:
        stream = stream.replace(b"\n", b"\r\n")
    dec = wire.LineDecoder()
    got = []
    i = 0
    while i < len(stream):
        n = rnd.choice((1, 2, 3, 7, 64, 500, 5000))
        got += dec.feed(stream[i : i + n])
        i += n
    assert got == msgs and dec.counts == {}


def largest(t):
    """The longest valid message of a type: longest strings (with "@", which
    JSON escapes to 6 bytes), most items, widest numbers."""
    at = lambda n: "@" * n  # noqa: E731
    head = {"node": "N" * 32, "boot": M30, "seq": M30, "tick": M30}
    row = [-16384, M30, 7, 32767, -M30, -M30, 1]
    cfg = {"name": at(16), "lags": [1024] * 8, "s": 255, "s0": 255, "ic": 32767}
    body = {
        "hello": dict(board=at(32), fw=at(16), period=60000, every=65535, weight=255,
                      caps=[at(16)] * 16, ch=[cfg] * 8),
        "report": dict(n=M30, drop=M30, miss=M30, ch=[row] * 8),
        "event": dict(i=7, on=1, c=32767, n=M30),
        "ping": dict(id=65535, t0=M30),
        "pong": dict(id=65535, t0=M30, t1=M30, t2=M30),
        "cmd": dict(id=65535, op=at(16),
                    args={"%s%02d" % (at(14), i): [-M30] * 16 for i in range(8)}),
        "ack": dict(id=65535, ok=1, err=at(64)),
    }[t]
    return dict(head, t=t, **body)


@pytest.mark.parametrize("t", sorted(MESSAGES))
def test_largest_message_fits_every_limit(t):
    msg = largest(t)
    assert wire.validate(msg) is None
    line = wire.encode_line(msg)
    assert len(line) - 1 <= wire.MAX_LINE
    frame = wirebin.encode_bin(msg)
    assert len(frame) <= wirebin.MAX_BIN
    assert len(wirebin.fragments(frame, 20)) <= 128
    assert wire.LineDecoder().feed(line) == [msg]
    assert wirebin.decode_bin(frame, {}) == msg


def test_sizes_of_a_four_channel_report():
    msg = EXAMPLES[1]
    assert len(msg["ch"]) == 4
    # version, type, node "node-01" (1 + 7), boot 4, seq 1 (varint 42), tick 4;
    # n 4, drop 1, miss 1, channel count 1; 17 per channel; CRC 2.
    assert len(wirebin.encode_bin(msg)) == 19 + 7 + 4 * 17 + 2 == 96
    assert len(wire.encode_json(msg)) < 300


def test_tuples_are_accepted_and_decode_as_lists():
    msg = dict(EXAMPLES[1], ch=[tuple(r) for r in EXAMPLES[1]["ch"]])
    assert wire.validate(msg) is None
    assert wirebin.decode_bin(wirebin.encode_bin(msg), {}) == EXAMPLES[1]
    assert wire.decode_json(wire.encode_json(msg), {}) == EXAMPLES[1]


def test_text_cleans_free_text():
    assert wire.text("caf\xe9\n\tok", 6) == "caf???"
    assert wire.text(OSError(5)) == "5"
    assert wire.validate(dict(EXAMPLES[-1], err=wire.text("x" * 100 + "\u20ac"))) is None


# -- validation -----------------------------------------------------------------
def bad(which, **change):
    msg = dict(EXAMPLES[which], **change)
    return {k: v for k, v in msg.items() if v is not DROP}


DROP = object()
INVALID = [
    ("not a dict", [1, 2], "malformed"),
    ("no t", bad(2, t=DROP), "malformed"),
    ("t not str", bad(2, t=3), "malformed"),
    ("unknown t", bad(2, t="status"), "type"),
    ("missing field", bad(2, c=DROP), "malformed"),
    ("extra field", bad(2, extra=1), "malformed"),
    ("v in the message", bad(2, v=1), "malformed"),
    ("bool for int", bad(2, on=True), "malformed"),
    ("float for int", bad(2, c=1.0), "malformed"),
    ("str for int", bad(2, n="1"), "malformed"),
    ("seq too big", bad(2, seq=2**30), "malformed"),
    ("negative tick", bad(2, tick=-1), "malformed"),
    ("channel 8", bad(2, i=8), "malformed"),
    ("empty node", bad(2, node=""), "malformed"),
    ("node too long", bad(2, node="n" * 33), "malformed"),
    ("node with space", bad(2, node="node 1"), "malformed"),
    ("node with /", bad(2, node="a/b"), "malformed"),
    ("period 0", bad(0, period=0), "malformed"),
    ("9 lags", bad(0, ch=[dict(EXAMPLES[0]["ch"][0], lags=list(range(1, 10)))]), "malformed"),
    ("lag 1025", bad(0, ch=[dict(EXAMPLES[0]["ch"][0], lags=[1025])]), "malformed"),
    ("ch cfg extra key", bad(0, ch=[dict(EXAMPLES[0]["ch"][0], x=1)]), "malformed"),
    ("17 caps", bad(0, caps=["led"] * 17), "malformed"),
    ("non-ASCII", bad(0, board="caf\xe9"), "malformed"),
    ("control char", bad(0, fw="a\nb"), "malformed"),
    ("9 channels", bad(1, ch=[[0] * 7] * 9), "malformed"),
    ("row of 6", bad(1, ch=[[0] * 6]), "malformed"),
    ("mean out of Q14", bad(1, ch=[[16385, 0, 0, 0, 0, 0, 0]]), "malformed"),
    ("k = 8", bad(1, ch=[[0, 0, 8, 0, 0, 0, 0]]), "malformed"),
    ("t_re = 2**30", bad(1, ch=[[0, 0, 0, 0, 2**30, 0, 0]]), "malformed"),
    ("coll = 2", bad(1, ch=[[0, 0, 0, 0, 0, 0, 2]]), "malformed"),
    ("empty op", bad(5, op=""), "malformed"),
    ("args not dict", bad(5, args=[]), "malformed"),
    ("float arg", bad(5, args={"x": 1.5}), "malformed"),
    ("list of str arg", bad(5, args={"x": ["a"]}), "malformed"),
    ("9 args", bad(5, args={str(i): i for i in range(9)}), "malformed"),
    ("empty arg key", bad(5, args={"": 1}), "malformed"),
    ("ok = 2", bad(7, ok=2), "malformed"),
    ("err too long", bad(7, err="e" * 65), "malformed"),
]


@pytest.mark.parametrize("msg,reason", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_messages_are_refused_with_a_reason(msg, reason):
    assert wire.validate(msg) == reason
    for encode in (wire.encode_json, wire.encode_line, wirebin.encode_bin):
        with pytest.raises(ValueError):
            encode(msg)


# -- the serial garbage corpus ---------------------------------------------------
def ev(seq, boot=123456789, node="node-01"):
    return dict(HEAD, t="event", node=node, boot=boot, seq=seq, i=1, on=1, c=30000, n=seq)


def corpus():
    """(stream, messages expected out of LineDecoder, its exact counts)."""
    L = lambda m: wire.encode_line(m)  # noqa: E731
    body = lambda m: L(m)[4:-6]  # noqa: E731  the JSON of a line
    corrupt = bytearray(L(ev(6)))
    corrupt[30] ^= 0x04  # one flipped bit inside the JSON
    parts = [
        (L(ev(1)), [ev(1)]),
        (b"MicroPython v1.27.0 on 2026-06-01; ESP32S3 module\r\n", []),  # noise
        (b">>> \r\n\r\n\n", []),  # noise, then two blank lines (not counted)
        (b'Traceback (most recent call last):\n  File "main.py", line 4\n', []),  # 2 noise
        (L(ev(2)), [ev(2)]),
        (L(ev(3))[:40] + L(ev(4)), [ev(4)]),  # truncated: cut by the next marker
        (L(ev(5))[:50] + b"\n", []),  # truncated: the line ends before the CRC
        (b"@K1\n", []),  # truncated inside the marker
        (bytes(corrupt), []),  # crc
        (b"@K1 " + b"x" * (wire.MAX_LINE + 10) + b"@K1 more\n", []),  # oversize
        (L(ev(7)).replace(b"@K1 ", b"@K2 "), []),  # version (marker)
        (line_frame(body(ev(8)).replace(b'"v":1', b'"v":2')), []),  # version (JSON field)
        (line_frame(b'{"v":1,"t":"event",'), []),  # malformed JSON with a good CRC
        (line_frame(body(ev(9)).replace(b'"event"', b'"eventx"')), []),  # type
        (line_frame(body(ev(10)).replace(b'"i":1', b'"i":9')), []),  # malformed: range
        (b"mail me @Kevin\n", []),  # noise that contains "@K"
        (b"\xff\xfe\x00garbage\x80\n", []),  # noise, binary
        (L(ev(11)), [ev(11)]),
        (L(ev(2)), [ev(2)]),  # a valid frame again: the line layer passes it
        (L(ev(12, boot=1)), [ev(12, boot=1)]),  # a new boot
        (L(ev(13)), [ev(13)]),  # the old boot again: a replay
        (L(ev(1, boot=1)), [ev(1, boot=1)]),
    ]
    stream = b"".join(p[0] for p in parts)
    msgs = [m for p in parts for m in p[1]]
    counts = {"noise": 6, "truncated": 3, "crc": 1, "oversize": 1, "version": 2,
              "malformed": 2, "type": 1}
    return stream, msgs, counts


def test_garbage_corpus_exact_counts_and_resync():
    stream, msgs, counts = corpus()
    dec = wire.LineDecoder()
    assert dec.feed(stream) == msgs
    assert dec.counts == counts
    dd = wire.Dedup()
    kept = [m for m in msgs if dd.accept(m)]
    assert [(m["boot"], m["seq"]) for m in kept] == [
        (123456789, 1), (123456789, 2), (123456789, 4), (123456789, 11), (1, 12), (1, 1)]
    # gap: 4 after 2 skips 3; 11 after 4 skips 5..10.  Seq 1 of boot 1 is late.
    assert dd.counts == {"gap": 7, "duplicate": 1, "replay": 1, "late": 1}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32))
def test_garbage_corpus_in_random_chunks(seed):
    rnd = random.Random(seed)
    stream, msgs, counts = corpus()
    dec = wire.LineDecoder()
    got = []
    i = 0
    while i < len(stream):
        n = rnd.choice((1, 2, 3, 5, 13, 100, 1000, 9000))
        got += dec.feed(stream[i : i + n])
        i += n
    assert got == msgs and dec.counts == counts


def test_oversize_line_uses_bounded_memory():
    dec = wire.LineDecoder(max_line=100)
    good = wire.encode_line(EXAMPLES[3])
    assert len(good) - 1 > 100  # too long for this decoder: oversize
    assert dec.feed(good) == [] and dec.counts == {"oversize": 1}
    dec.feed(b"@K1 ")
    for _ in range(1000):
        dec.feed(b"y" * 997 + b"@K1 ")  # markers after the limit: still one oversize line
        assert len(dec._buf) <= 102
    assert dec.feed(b"\n") == [] and dec.counts == {"oversize": 2}
    for _ in range(1000):  # a long noise line is skipped in O(1) memory
        dec.feed(b"z" * 997)
        assert len(dec._buf) <= 1
    assert dec.feed(b"\r\n") == [] and dec.counts == {"oversize": 2, "noise": 1}
    dec = wire.LineDecoder(max_line=len(good) - 1)  # exactly max_line fits
    assert dec.feed(good.replace(b"\n", b"\r\n")) == [EXAMPLES[3]]
    assert dec.feed(b"x" + good) == [EXAMPLES[3]]  # a prefix before the marker is ignored
    assert dec.feed(good[:-1] + b"0\n") == [] and dec.counts == {"oversize": 1}


def test_state_resets_after_an_oversize_line():
    # regression: text before the marker in an earlier chunk, then an
    # oversize frame, must not make the next (blank) line count as noise
    dec = wire.LineDecoder(max_line=50)
    dec.feed(b"junk ")
    dec.feed(b"@K1 " + b"y" * 48 + b"\n\n")
    assert dec.counts == {"oversize": 1}


def test_marker_split_across_chunks():
    line = wire.encode_line(EXAMPLES[2])
    dec = wire.LineDecoder()
    assert dec.feed(b"noise @") == []
    assert dec.feed(b"K") == []
    assert dec.feed(line[2:]) == [EXAMPLES[2]]
    assert dec.counts == {}


def test_json_decoder_reasons():
    counts = {}
    good = wire.encode_json(EXAMPLES[2])
    assert wire.decode_json(good, counts) == EXAMPLES[2]
    assert wire.decode_json(good.replace(b'"v":1', b'"v":2'), counts) is None
    assert wire.decode_json(good.replace(b'"v":1,', b""), counts) is None  # no v
    assert wire.decode_json(good[:-1], counts) is None
    assert wire.decode_json(b"[1,2]", counts) is None
    assert wire.decode_json(good.replace(b"event", b"evt"), counts) is None
    assert wire.decode_json(b"[" * 2000 + b"]" * 2000, counts) is None  # RecursionError
    assert wire.decode_json("not bytes", counts) is None
    assert counts == {"version": 1, "malformed": 5, "type": 1}


def test_oversize_payloads_are_refused_before_parsing():
    # The largest valid frame fits; one byte over the limit never reaches the
    # parser (a 100 kB payload costs a len(), not a parse).
    big = dict(EXAMPLES[2], node="n" * 32)
    good = wire.encode_json(big)
    counts = {}
    assert wire.decode_json(good, counts, max_size=len(good)) == big
    assert wire.decode_json(good, counts, max_size=len(good) - 1) is None
    assert wire.decode_json(b" " * (wire.MAX_JSON + 1), counts) is None
    assert wire.decode_json(b"[" * 50000 + b"]" * 50000, counts) is None
    assert counts == {"oversize": 3}
    frame = wirebin.encode_bin(big)
    c = {}
    assert wirebin.decode_bin(frame, c, max_size=len(frame)) == big
    assert wirebin.decode_bin(frame, c, max_size=len(frame) - 1) is None
    assert wirebin.decode_bin(bytes(wirebin.MAX_BIN + 1), c) is None
    assert wirebin.decode_bin(memoryview(bytes(5000)), c) is None
    assert c == {"oversize": 3}


def test_binary_decoder_reasons():
    counts = {}
    frame = wirebin.encode_bin(EXAMPLES[2])

    def sealed(body):
        return body + crc16(body).to_bytes(2, "little")

    flipped = bytearray(frame)
    flipped[10] ^= 1
    cases = [
        (b"", "truncated"),
        (frame[:4], "truncated"),
        (bytes(flipped), "crc"),
        (frame[:-3] + frame[-2:], "crc"),
        (sealed(b"\x02" + frame[1:-2]), "version"),
        (sealed(frame[:1] + b"\x63" + frame[2:-2]), "type"),
        (sealed(frame[:-2] + b"\x00"), "malformed"),  # a trailing byte
        (sealed(frame[:-3]), "malformed"),  # a missing byte
        (sealed(frame[:2] + b"\x40" + frame[3:-2]), "malformed"),  # node length past the end
        (sealed(frame[:2] + b"\x07node 01" + frame[10:-2]), "malformed"),  # bad node id
    ]
    for data, reason in cases:
        c = {}
        assert wirebin.decode_bin(data, c) is None, reason
        assert c == {reason: 1}, (data, reason)
        wirebin.decode_bin(data, counts)
    # an out-of-range field: event channel i = 9 (the byte after tick)
    i = 19  # version, type, node (1 + 7), boot 4, seq 1, tick 4
    assert frame[i : i + 2] == bytes([2, 1])  # i = 2, on = 1
    c = {}
    assert wirebin.decode_bin(sealed(frame[:i] + b"\x09" + frame[i + 1 : -2]), c) is None
    assert c == {"malformed": 1}
    # a varint that would pass 2**30 (seq, right after boot)
    j = 2 + 1 + 7 + 4
    assert wirebin.decode_bin(sealed(frame[:j] + b"\xff\xff\xff\xff\x04" + frame[j + 1 : -2]),
                              c) is None
    assert c == {"malformed": 2}


# -- Dedup ------------------------------------------------------------------------
def test_dedup_rules():
    dd = wire.Dedup(window=64)
    acc = lambda seq, boot=5, node="a": dd.accept(ev(seq, boot, node))  # noqa: E731
    assert acc(10) and not acc(10)  # duplicate
    assert acc(14)  # gap 3
    assert acc(12) and not acc(12)  # late once, then duplicate
    assert acc(10, node="b")  # nodes are independent
    assert acc(200)  # gap 185; 14..136 fall out of the window
    assert not acc(100)  # older than the window: replay
    assert acc(199)  # late, inside the window
    assert acc(0, boot=6)  # a new boot resets the sequence
    assert not acc(201, boot=5)  # the previous boot: replay
    assert acc(1, boot=6)
    assert dd.counts == {"duplicate": 2, "gap": 188, "late": 2, "replay": 2}


def test_dedup_memory_is_bounded():
    dd = wire.Dedup(window=128, boots=4)
    for boot in range(50):
        for seq in range(0, 5000, 7):
            dd.accept(ev(seq, boot))
    st_ = dd._nodes["node-01"]
    assert len(st_[2]) == 16 and len(st_[3]) == 4
    assert not dd.accept(ev(1, boot=48)) and dd.accept(ev(1, boot=40))  # only 4 boots kept


# -- BLE fragments ------------------------------------------------------------------
FRAMES = [wirebin.encode_bin(m) for m in (EXAMPLES[0], EXAMPLES[1], EXAMPLES[3])] + [
    wirebin.encode_bin(largest("hello"))]
FRAME_MSGS = [EXAMPLES[0], EXAMPLES[1], EXAMPLES[3], largest("hello")]


@pytest.mark.parametrize("mtu", range(20, 245))
def test_fragments_at_every_mtu(mtu):
    asm = wirebin.Reassembler()
    got = []
    for k, frame in enumerate(FRAMES):
        frags = wirebin.fragments(frame, mtu, counter=k)
        assert all(2 < len(f) <= mtu for f in frags)
        assert b"".join(f[2:] for f in frags) == frame
        assert [f[1] & 0x80 for f in frags] == [0] * (len(frags) - 1) + [0x80]
        got += [m for m in map(asm.feed, frags) if m is not None]
    assert got == FRAME_MSGS and asm.counts == {}
    # damaged: the 4-ch report loses a middle fragment, the hello repeats
    # every fragment, garbage arrives between messages
    rep = wirebin.fragments(FRAMES[1], mtu, counter=10)
    hello = wirebin.fragments(FRAMES[0], mtu, counter=11)
    ping = wirebin.fragments(FRAMES[2], mtu, counter=12)
    stream = rep[:1] + rep[2:] if len(rep) > 2 else rep[1:]
    stream += [f for f in hello for _ in (0, 1)] + [b"\x07"] + ping
    out = [m for m in map(asm.feed, stream) if m is not None]
    assert out == [EXAMPLES[0], EXAMPLES[3]]
    # the lost report (unless it was a single fragment, which leaves no
    # trace) and the short garbage
    assert asm.counts == {"fragment": 2 if len(rep) > 1 else 1}


def test_reassembler_exact_counts():
    asm = wirebin.Reassembler()
    a = wirebin.fragments(FRAMES[1], 20, counter=1)  # 6 fragments
    b = wirebin.fragments(FRAMES[2], 20, counter=2)  # 2 fragments
    c = wirebin.fragments(FRAMES[1], 20, counter=3)
    assert len(a) == 6 and len(b) == 2
    feed = lambda frags: [m for m in map(asm.feed, frags) if m is not None]  # noqa: E731
    assert feed(a[1:] + b) == [EXAMPLES[3]]  # first lost: counted once as an orphan
    assert asm.counts == {"fragment": 1}
    assert feed(a[:5] + b) == [EXAMPLES[3]]  # last lost: dropped when b starts
    assert feed(a[:3] + a[1:2] + a[3:] + b) == [EXAMPLES[3]]  # an old repeat: dropped
    assert feed(a[:2] + a[3:2:-1] + a[2:3] + a[4:] + b) == [EXAMPLES[3]]  # swapped
    assert asm.counts == {"fragment": 4}
    assert feed([a[0], a[0], a[1], a[1]] + a[2:] + a[-1:] + b) == [EXAMPLES[1], EXAMPLES[3]]
    assert asm.counts == {"fragment": 4}  # repeats of the last fragment are ignored
    junk = [b"", b"\x63\x05junk", b"\x63\x06more", b"\x64\x00start only"]
    assert feed(junk + c) == [EXAMPLES[1]]
    # short fragment, an orphan (its second fragment is not counted again),
    # the partial "start only" dropped when c starts
    assert asm.counts == {"fragment": 7}
    assert feed([b"\x65\x80" + b"not a frame"]) == []  # a whole garbage frame: bad CRC
    assert asm.counts == {"fragment": 7, "crc": 1}


def test_reassembler_memory_is_bounded():
    asm = wirebin.Reassembler()
    asm.feed(b"\x01\x00" + b"x" * 200)
    for i in range(1, 100):
        asm.feed(bytes((1, i)) + b"x" * 200)
        assert asm._buf is None or len(asm._buf) <= wirebin.MAX_BIN
    assert asm.counts == {"fragment": 1}


def test_fragments_counter_and_limits():
    f1 = wirebin.fragments(b"abc", 20)
    f2 = wirebin.fragments(b"abc", 20)
    assert (f1[0][0] + 1) % 256 == f2[0][0]
    assert wirebin.fragments(b"", 20, counter=300) == [b"\x2c\x80"]
    with pytest.raises(ValueError):
        wirebin.fragments(b"abc", 19)
    with pytest.raises(ValueError):
        wirebin.fragments(b"x" * (128 * 18 + 1), 20)
    assert len(wirebin.fragments(b"x" * 1000, 517)) == 2  # larger MTUs work too


@SLOW
@given(st.lists(st.tuples(ANY_MESSAGE, st.sampled_from(["ok", "drop", "dup"]),
                          st.integers(0, 1000)), min_size=1, max_size=8), st.integers(20, 244))
def test_fragment_faults_lose_only_the_damaged_messages(plan, mtu):
    asm = wirebin.Reassembler()
    expected, lost, stream = [], 0, []
    for k, (msg, fate, where) in enumerate(plan + [(EXAMPLES[3], "ok", 0)]):
        frags = wirebin.fragments(wirebin.encode_bin(msg), mtu, counter=k)
        i = where % len(frags)
        if fate == "drop":
            del frags[i]
            lost += len(frags) > 0  # a message of one fragment vanishes without a trace
        else:
            if fate == "dup":
                frags.insert(i, frags[i])
            expected.append(msg)
        stream += frags
    got = [m for m in map(asm.feed, stream) if m is not None]
    assert got == expected
    assert asm.counts == ({"fragment": lost} if lost else {})


# -- nothing raises ------------------------------------------------------------------
PIECES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"@K1 ", b"@K", b"@", b"K1 ", b"\n", b"\r\n", b" 1D0F\n", b"{}", b"x" * 130,
                     wire.encode_line(EXAMPLES[2]), wire.encode_line(EXAMPLES[5])[:60]]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=40))
def test_line_decoder_never_raises(pieces):
    dec = wire.LineDecoder(max_line=200)
    for p in pieces:
        for m in dec.feed(p):
            assert wire.validate(m) is None
    assert all(type(v) is int and v > 0 for v in dec.counts.values())
    assert set(dec.counts) <= set(wire.REASONS) | {"noise"}


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=40), st.integers(0, 2**32))
def test_line_decoder_outcome_does_not_depend_on_chunking(pieces, seed):
    stream = b"".join(pieces)
    whole = wire.LineDecoder(max_line=120)
    want = whole.feed(stream)
    rnd = random.Random(seed)
    dec = wire.LineDecoder(max_line=120)
    got = []
    i = 0
    while i < len(stream):
        n = rnd.choice((1, 2, 3, 4, 50, 200))
        got += dec.feed(stream[i : i + n])
        i += n
    assert got == want and dec.counts == whole.counts


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decoders_never_raise_on_bytes(data):
    counts = {}
    for decode in (wire.decode_json, wirebin.decode_bin):
        m = decode(data, counts)
        assert m is None or wire.validate(m) is None
    asm = wirebin.Reassembler()
    for i in range(0, len(data), 20):
        m = asm.feed(data[i : i + 20])
        assert m is None or wire.validate(m) is None
    assert sum(counts.values()) >= 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FRAMES), st.integers(0, 10**6), st.binary(min_size=1, max_size=2))
def test_corrupted_binary_frames_never_decode_wrong(frame, pos, burst):
    # CRC-16 detects every error burst of up to 16 bits
    data = bytearray(frame)
    pos %= len(data) - len(burst) + 1
    data[pos : pos + len(burst)] = burst
    m = wirebin.decode_bin(bytes(data), {})
    assert m is None or bytes(data) == frame and m == FRAME_MSGS[FRAMES.index(frame)]


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                              st.text(max_size=5)),
                    lambda c: st.one_of(st.lists(c, max_size=4),
                                        st.dictionaries(st.text(max_size=5), c, max_size=4)),
                    max_leaves=20))
def test_validate_never_raises(obj):
    assert wire.validate(obj) in (None, "malformed", "type")
    if isinstance(obj, dict):
        assert wire.validate(dict(obj, t="event")) == "malformed"


def test_examples_in_docs_are_real_output():
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    lines = doc.splitlines()
    for m in EXAMPLES:
        assert wire.encode_json(m).decode() in lines
        assert wire.encode_line(m).decode().rstrip("\n") in lines
        assert any(ln.endswith(wirebin.encode_bin(m).hex(" ")) for ln in lines)
    for h in wirebin.fragments(wirebin.encode_bin(EXAMPLES[1]), 20, counter=7):
        assert h.hex(" ") in lines
