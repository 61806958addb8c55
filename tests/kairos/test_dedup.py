"""kairos.dedup: the hub's duplicate filter, case by case (docs/protocol.md
§6), and the ways issue 11 found to poison it: a backlog more than 128
frames long was refused as replays; one frame with seq 2**30 - 1, or with
another boot id, made every later real frame a replay (99/99 and 100/100)."""
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from support.frames import Frames

from kairos.dedup import AHEAD, NEW, NOHELLO, OLD, Dedup
from kairos.wire import DUPLICATE, LATE, REPLAY

# A node's frames (boot 7): f is a report, hello its hello; Dedup reads their heads.
F = Frames(boot=7)
f, hello = F.report, F.hello


def test_each_case_and_its_verdict():
    dd = Dedup(ranges=4, ahead=1000)
    assert dd.judge(f(5)) == NEW  # first contact: any frame starts the node
    assert dd.judge(f(6)) == NEW
    assert dd.judge(f(6)) == DUPLICATE
    assert dd.judge(f(9)) == NEW and dd.counts["gap"] == 2  # 7, 8 skipped
    assert dd.judge(f(7)) == LATE and dd.judge(f(7)) == DUPLICATE
    assert dd.judge(f(2000)) == AHEAD  # more than `ahead` past the top: held out
    assert dd.state("n1")[1] == 9  # ... and not the new top
    assert dd.judge(f(10)) == NEW
    assert dd.judge(hello(5000)) == NEW  # a hello may jump: it announces where it is
    assert dd.judge(f(5001)) == NEW and dd.judge(f(11)) == LATE  # the rest still comes in
    assert dd.judge(f(0, boot=8)) == NOHELLO  # a stray frame of another boot
    assert dd.state("n1")[0] == 7  # ... did not switch the node
    assert dd.judge(hello(0, boot=8)) == NEW  # its hello does
    assert dd.judge(f(1, boot=8)) == NEW
    assert dd.judge(f(12, boot=7)) == REPLAY  # the previous boot
    assert dd.judge(hello(3, boot=7)) == REPLAY  # its old hello (a retained one): too
    assert dd.judge(hello(6000, boot=7)) == NEW  # ... but a newer one: the node is back in it
    assert dd.state("n1")[:3] == (7, 6000, 5002)  # what it sent before is no longer known
    assert dd.judge(f(100, boot=7)) == OLD
    assert dd.judge(f(100, boot=7), stored=lambda m: True) == DUPLICATE
    assert dd.judge(f(100, boot=7), stored=lambda m: False) == LATE
    assert not dd.accept(f(100, boot=7))  # no store to ask: a replay


def test_a_backlog_of_any_length_after_the_hello_is_taken():
    # Issue 11 item 1: on link-up the node sends its hello (a new, higher
    # seq) and then its backlog, oldest first; frames more than 128 behind
    # the highest were refused as replays (358-361 of 1,200 in the outage).
    dd = Dedup()
    assert all(dd.accept(f(s)) for s in range(100))  # before the outage
    assert dd.accept(hello(5100))  # link up again: the hello first ...
    backlog = [dd.accept(f(s)) for s in range(100, 5100)]  # ... then 5,000 frames
    assert backlog.count(True) == 5000
    assert dd.counts.get(REPLAY, 0) == 0 and dd.state("n1")[3] == [(0, 5100)]
    assert not any(dd.accept(f(s)) for s in range(0, 5101, 50))  # and each only once


def test_one_frame_with_seq_2_30_minus_1_does_not_silence_the_node():
    # Issue 11 item 2: 99 of the 99 real frames after it were replays.
    dd = Dedup()
    assert dd.accept(hello(0)) and dd.accept(f(1))
    assert not dd.accept(f(2**30 - 1))  # held out: far past the top
    assert sum(dd.accept(f(s)) for s in range(2, 101)) == 99
    # Even a forged hello (it is allowed to jump) silences nothing.
    assert dd.accept(hello(2**30 - 1))
    assert sum(dd.accept(f(s)) for s in range(101, 201)) == 100


def test_one_frame_with_another_boot_id_does_not_silence_the_node():
    # Issue 11 item 2: 100 of 100 real frames after it were replays.
    dd = Dedup()
    assert dd.accept(hello(0)) and dd.accept(f(1))
    assert not dd.accept(f(2, boot=99))  # a stray boot: no hello, no switch
    assert sum(dd.accept(f(s)) for s in range(2, 102)) == 100
    # A forged hello of another boot does switch (only a MAC can tell it
    # from a reboot), but the real node's next hello switches back.
    assert dd.accept(hello(5, boot=99))
    assert not dd.accept(f(102))  # the real node's frames: replays now ...
    assert dd.accept(hello(103))  # ... until it says hello (the hub asks it to)
    assert sum(dd.accept(f(s)) for s in range(104, 204)) == 100


def test_memory_is_bounded_and_what_is_forgotten_is_old_not_new():
    dd = Dedup(ranges=8, boots=2)
    dd.accept(hello(0))
    for s in range(0, 1000, 2):  # a hole after every frame
        dd.accept(f(s))
    boot, top, floor, ranges = dd.state("n1")
    assert len(ranges) == 8 and top == 998 and floor == ranges[0][0] > 900
    assert dd.judge(f(10)) == OLD and dd.judge(f(11)) == OLD  # seen or not: unknown
    for b in range(8, 20):
        dd.accept(hello(0, boot=b))
    assert len(dd._nodes["n1"][4]) == 2 * 2


def test_seed_from_the_store_after_a_restart():
    dd = Dedup()
    dd.seed("n1", 7, [90, 91, 92, 95, 99], boots=[5, 6])
    assert dd.state("n1") == (7, 99, 90, [(90, 92), (95, 95), (99, 99)])
    assert dd.judge(f(91)) == DUPLICATE and dd.judge(f(93)) == LATE
    assert dd.judge(f(100)) == NEW and dd.counts.get("gap", 0) == 0
    assert dd.judge(f(10)) == OLD  # below what was seeded: ask the store
    assert dd.judge(f(3, boot=5)) == REPLAY and dd.judge(hello(10**6, boot=6)) == REPLAY
    dd.seed("n2", None, [], boots=[4])  # only a previous boot known
    assert dd.judge(f(3, boot=4, node="n2")) == REPLAY
    assert dd.judge(f(0, boot=9, node="n2")) == NOHELLO
    assert dd.judge(hello(0, boot=9, node="n2")) == NEW


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 400), st.integers(2, 16))
def test_with_a_store_to_ask_every_frame_is_taken_exactly_once(seed, n, ranges):
    # Any order, any repeats, a few frames lost: with the store answering for
    # what the filter forgot, every frame of the boot is taken once, never
    # twice, never refused while new.
    rnd = random.Random(seed)
    seqs = [s for s in range(n) if rnd.random() > 0.1]  # some never come
    stream = seqs + rnd.sample(seqs, min(len(seqs), rnd.randrange(0, 50)))  # repeats
    rnd.shuffle(stream)
    dd = Dedup(ranges=ranges)
    stored = set()
    assert dd.accept(hello(n))
    for s in stream:
        if dd.judge(f(s), stored=lambda m: m["seq"] in stored) in (NEW, LATE):
            assert s not in stored
            stored.add(s)
    assert stored == set(seqs)
