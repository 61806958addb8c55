"""The wire protocol (kairos.wire, kairos.wirebin): exact round trips of
every message type in JSON, serial lines and binary, sizes and limits,
validation, the documented examples.  Bad input is test_wire_streams.py,
BLE fragments test_wire_ble.py."""
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
             [-16384, 0, 0, 0, 0, 0, 0], [0, 1, 3, 1, -1, 1, 1]],
         coh=[[12000, 21000, 30000, 8000], [100, 2000, 5000, 9000, 16000, 24000, 30000, 32767],
              [0], [0, 0, 0, 1]]),
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
COH = st.lists(Q15, min_size=1, max_size=8)


@st.composite
def report_rows(draw):
    """ch and coh of a report: one spectrum per row, each row's k < its K."""
    coh = draw(st.lists(COH, max_size=8))
    rows = [draw(ROW) for _ in coh]
    for r, c in zip(rows, coh):
        r[2] %= len(c)
    return {"ch": rows, "coh": coh}


ARG = st.one_of(S30, ascii_text(0, 32), st.lists(S30, max_size=16))


def msg_of(t, **fields):
    return st.fixed_dictionaries(dict(COMMON, t=st.just(t), **fields))


MESSAGES = {
    "hello": msg_of("hello", board=ascii_text(0, 32), fw=ascii_text(0, 16),
                    period=st.integers(1, 60000), every=st.integers(1, 65535),
                    weight=st.integers(1, 255), caps=st.lists(ascii_text(0, 16), max_size=16),
                    ch=st.lists(CH_CFG, max_size=8)),
    "report": st.tuples(msg_of("report", n=U30, drop=U30, miss=U30),
                        report_rows()).map(lambda m: dict(m[0], **m[1])),
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
        "report": dict(n=M30, drop=M30, miss=M30, ch=[row] * 8, coh=[[32767] * 8] * 8),
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
    assert len(msg["ch"]) == 4 and [len(c) for c in msg["coh"]] == [4, 8, 1, 4]
    # version, type, node "node-01" (1 + 7), boot 4, seq 1 (varint 42), tick 4;
    # n 4, drop 1, miss 1, channel count 1; 17 per channel; spectra: count 1,
    # per channel a count and 2 per lag (17 lags); CRC 2.
    assert len(wirebin.encode_bin(msg)) == 19 + 7 + 4 * 17 + 1 + 4 + 2 * 17 + 2 == 135
    assert len(wire.encode_json(msg)) < 400


def test_sizes_of_the_largest_report():
    # 8 channels of 8 lags, every number at its widest: what a spool slot
    # must hold (firmware/node/link.py sizes slots from this worst case).
    msg = largest("report")
    assert len(wire.encode_line(msg)) == 1023
    assert len(wire.encode_json(msg)) == 1013
    assert len(wirebin.encode_bin(msg)) == 338


def test_tuples_are_accepted_and_decode_as_lists():
    msg = dict(EXAMPLES[1], ch=[tuple(r) for r in EXAMPLES[1]["ch"]],
               coh=tuple(tuple(c) for c in EXAMPLES[1]["coh"]))
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
    ("9 channels", bad(1, ch=[[0] * 7] * 9, coh=[[0]] * 9), "malformed"),
    ("row of 6", bad(1, ch=[[0] * 6], coh=[[0]]), "malformed"),
    ("mean out of Q14", bad(1, ch=[[16385, 0, 0, 0, 0, 0, 0]], coh=[[0]]), "malformed"),
    ("k = 8", bad(1, ch=[[0, 0, 8, 0, 0, 0, 0]], coh=[[0] * 8]), "malformed"),
    ("t_re = 2**30", bad(1, ch=[[0, 0, 0, 0, 2**30, 0, 0]], coh=[[0]]), "malformed"),
    ("coll = 2", bad(1, ch=[[0, 0, 0, 0, 0, 0, 2]], coh=[[0]]), "malformed"),
    ("no coh", bad(1, coh=DROP), "malformed"),
    ("coh for fewer rows", bad(1, coh=EXAMPLES[1]["coh"][:3]), "malformed"),
    ("coh for more rows", bad(1, coh=EXAMPLES[1]["coh"] + [[0]]), "malformed"),
    ("9 lags of coh", bad(1, ch=[[0] * 7], coh=[[0] * 9]), "malformed"),
    ("empty coh", bad(1, ch=[[0] * 7], coh=[[]]), "malformed"),
    ("coh 32768", bad(1, ch=[[0] * 7], coh=[[32768]]), "malformed"),
    ("coh negative", bad(1, ch=[[0] * 7], coh=[[-1]]), "malformed"),
    ("coh not a list", bad(1, ch=[[0] * 7], coh=[5]), "malformed"),
    ("k past the spectrum", bad(1, ch=[[0, 0, 1, 0, 0, 0, 0]], coh=[[0]]), "malformed"),
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


def test_examples_in_docs_are_real_output():
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    lines = doc.splitlines()
    for m in EXAMPLES:
        assert wire.encode_json(m).decode() in lines
        assert wire.encode_line(m).decode().rstrip("\n") in lines
        assert any(ln.endswith(wirebin.encode_bin(m).hex(" ")) for ln in lines)
    for h in wirebin.fragments(wirebin.encode_bin(EXAMPLES[1]), 20, counter=7):
        assert h.hex(" ") in lines
