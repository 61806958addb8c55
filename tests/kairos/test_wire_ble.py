"""BLE fragments (kairos.wirebin): every MTU from 20 to 244, exact
reassembler counts, bounded memory, faults that lose only the damaged
messages."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.wire import ANY_MESSAGE, EXAMPLES, FRAME_MSGS, FRAMES, SLOW

from kairos import wirebin

# -- BLE fragments ------------------------------------------------------------------


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
    a = wirebin.fragments(FRAMES[1], 20, counter=1)  # 8 fragments
    b = wirebin.fragments(FRAMES[2], 20, counter=2)  # 2 fragments
    c = wirebin.fragments(FRAMES[1], 20, counter=3)
    assert len(a) == 8 and len(b) == 2
    feed = lambda frags: [m for m in map(asm.feed, frags) if m is not None]  # noqa: E731
    assert feed(a[1:] + b) == [EXAMPLES[3]]  # first lost: counted once as an orphan
    assert asm.counts == {"fragment": 1}
    assert feed(a[:-1] + b) == [EXAMPLES[3]]  # last lost: dropped when b starts
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
