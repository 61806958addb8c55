"""The wire decoders on bad input: the serial garbage corpus with exact
reject counts and resync, bounded memory, oversize payloads, every reject
reason of the JSON and binary decoders, the hub's Dedup, and decoders that
never raise."""
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from support.wire import EXAMPLES, FRAME_MSGS, FRAMES, corpus, ev

from kairos import wire, wirebin
from kairos.crc16 import crc16


# -- the serial garbage corpus (support/wire.py) -------------------------------------
def test_garbage_corpus_exact_counts_and_resync():
    stream, msgs, counts = corpus()
    dec = wire.LineDecoder()
    assert dec.feed(stream) == msgs
    assert dec.counts == counts
    dd = wire.Dedup()
    kept = [m for m in msgs if dd.accept(m)]
    assert [(m["boot"], m["seq"]) for m in kept] == [
        (123456789, 1), (123456789, 2), (123456789, 4), (123456789, 11), (123456789, 13)]
    # gap: 4 after 2 skips 3; 11 after 4 skips 5..10; 13 after 11 skips 12.
    # Boot 1 sent no hello: its two events can't switch the node (nohello).
    assert dd.counts == {"gap": 8, "duplicate": 1, "nohello": 2}


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


# -- Dedup (the rules case by case: tests/kairos/test_dedup.py) ---------------------
def test_dedup_rules():
    dd = wire.Dedup(ranges=8)
    acc = lambda seq, boot=5, node="a", t="event": dd.accept(  # noqa: E731
        dict(ev(seq, boot, node), t=t) if t == "event" else
        {"t": t, "node": node, "boot": boot, "seq": seq})
    assert acc(10) and not acc(10)  # duplicate
    assert acc(14)  # gap 3
    assert acc(12) and not acc(12)  # late once, then duplicate
    assert acc(10, node="b")  # nodes are independent
    assert acc(200)  # gap 185
    assert acc(100)  # late, however far behind: a backlog is taken whole
    assert acc(199)  # late
    assert not acc(0, boot=6)  # a new boot without its hello: refused
    assert acc(0, boot=6, t="hello") and acc(1, boot=6)  # announced: taken
    assert not acc(201, boot=5)  # the previous boot: replay
    assert dd.counts == {"duplicate": 2, "gap": 188, "late": 3, "nohello": 1, "replay": 1}


def test_dedup_memory_is_bounded():
    dd = wire.Dedup(ranges=16, boots=4)
    for boot in range(50):
        assert dd.accept({"t": "hello", "node": "node-01", "boot": boot, "seq": 0})
        for seq in range(0, 5000, 7):  # a hole after every frame
            dd.accept(ev(seq, boot))
    boot, top, floor, ranges = dd.state("node-01")
    assert (boot, top) == (49, 4998) and len(ranges) == 16 and floor == ranges[0][0]
    assert len(dd._nodes["node-01"][4]) == 2 * 4  # 4 previous boots, with their tops
    assert not dd.accept(ev(1, boot=48))  # a remembered boot: replay
    assert not dd.accept(ev(1, boot=40))  # a forgotten one: an unannounced boot
    assert dd.judge(ev(7, boot=49)) == "old"  # below the floor: not known any more


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
