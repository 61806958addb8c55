"""The wire protocol (kairos.wire, kairos.wirebin): exact round trips of
every message type in JSON, serial lines and binary, sizes and limits,
validation, the documented examples.  Bad input is test_wire_streams.py,
BLE fragments test_wire_ble.py."""
import binascii
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.mp import ROOT
from support.wire import ANY_MESSAGE, EXAMPLES, MESSAGES, SLOW, largest

from kairos import wire, wirebin
from kairos.crc16 import crc16


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
    doc = (ROOT / "docs" / "protocol.md").read_text()
    lines = doc.splitlines()
    for m in EXAMPLES:
        assert wire.encode_json(m).decode() in lines
        assert wire.encode_line(m).decode().rstrip("\n") in lines
        assert any(ln.endswith(wirebin.encode_bin(m).hex(" ")) for ln in lines)
    for h in wirebin.fragments(wirebin.encode_bin(EXAMPLES[1]), 20, counter=7):
        assert h.hex(" ") in lines
