"""Store-and-forward ring: bounded, oldest pushed out first and counted, a
frame kept until the hub acknowledges it (got), resent oldest first after a
reconnect, link confirmations by packet id for the flow-control window."""
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from node.spool import Spool  # noqa: E402


def fill(sp, n, start=0):
    for s in range(start, start + n):
        assert sp.put(2, b"f%d" % s, seq=s)


def drain(sp, pid=0):
    out = []
    while sp.unsent():
        kind, data = sp.peek()
        out.append(bytes(data))
        sp.mark_sent(pid)
    return out


def test_fifo_and_drop_oldest():
    sp = Spool(slots=4, size=8)
    fill(sp, 6)
    assert sp.dropped == 2 and len(sp) == 4  # never sent: lost, counted
    assert drain(sp) == [b"f2", b"f3", b"f4", b"f5"]


def test_oversize_is_refused_and_counted():
    sp = Spool(slots=2, size=4)
    assert not sp.put(1, b"12345")
    assert sp.oversize == 1 and len(sp) == 0


def test_a_frame_stays_until_the_hub_has_it_not_until_the_link_took_it():
    sp = Spool(slots=8, size=8)
    fill(sp, 5)
    drain(sp, pid=0)  # written out (serial): confirmed by the link
    assert len(sp) == 5 and sp.owed() == 0  # link mode: kept, but nothing owed
    assert sp.got(0, 1) == 2 and sp.e2e  # the hub has 0 and 1
    assert len(sp) == 3 and sp.owed() == 3  # hub mode: the rest is owed until acknowledged
    assert sp.got(3, 3) == 1 and len(sp) == 3  # 2 still missing: 3 waits behind it
    assert sp.got(2, 4) == 2 and len(sp) == 0
    assert sp.got(0, 10) == 0  # (repeats and unknown seqs change nothing)


def test_rewind_resends_what_the_hub_lacks_oldest_first():
    sp = Spool(slots=8, size=8)
    fill(sp, 5)
    drain(sp)
    sp.got(1, 1)
    sp.got(3, 3)  # the hub has 1 and 3 (a broker dropped 0, 2, 4)
    assert len(sp) == 5
    sp.rewind()
    assert drain(sp) == [b"f0", b"f2", b"f4"]  # not 1 and 3 again


def test_seqs_need_not_be_contiguous():
    # Hellos and pongs take seqs but are not spooled.
    sp = Spool(slots=8, size=8)
    for s in (3, 4, 7, 12, 13):
        sp.put(2, b"x", seq=s)
    drain(sp)
    assert sp.got(0, 5) == 2 and len(sp) == 3
    assert sp.got(8, 12) == 1 and len(sp) == 3  # 7 still waits
    assert sp.got(5, 7) == 1 and len(sp) == 1


def test_packet_ids_count_the_window_and_out_of_order_confirmations():
    sp = Spool(slots=8, size=8, window=4)
    fill(sp, 3)
    for pid in (10, 11, 12):
        sp.mark_sent(pid)
    assert sp.inflight() == 3
    sp.ack(12)
    sp.ack(10)
    assert sp.inflight() == 1 and len(sp) == 3  # confirmed, still kept for the hub
    sp.got(0, 2)  # the hub has all three
    assert len(sp) == 0 and sp.inflight() == 1  # (11's PUBACK is still due)
    sp.ack(11)
    sp.ack(99)  # a PUBACK nobody waits for changes nothing
    assert sp.inflight() == 0
    fill(sp, 6, start=3)
    for pid in range(20, 26):  # more than the table holds: the rest is not tracked
        sp.mark_sent(pid)
    assert sp.inflight() == 4
    sp.rewind()  # a new connection: nothing in flight
    assert sp.inflight() == 0


def test_link_mode_pushes_out_confirmed_frames_uncounted_until_the_hub_speaks():
    sp = Spool(slots=4, size=8)
    fill(sp, 4)
    drain(sp, pid=0)  # confirmed by the link (a plain subscriber, a console)
    fill(sp, 3, start=4)  # three confirmed frames pushed out
    assert sp.dropped == 0 and sp.evicted == 3
    sp.got(3, 3)  # a hub that acknowledges after all: those three never reached it
    assert sp.dropped == 3 and sp.evicted == 0 and sp.e2e
    drain(sp)
    assert len(sp) == 3  # 4, 5, 6 (3 went with its got)
    fill(sp, 2, start=7)  # hub mode: an unacknowledged frame pushed out is lost
    assert sp.dropped == 4 and sp.evicted == 0


def test_wrapping_seqs_are_found():
    sp = Spool(slots=8, size=8)
    m = 2**30 - 1
    seqs = [m - 2, m - 1, m, 0, 1]
    for s in seqs:
        sp.put(2, b"w", seq=s)
    drain(sp)
    assert sp.got(m - 1, m) == 2 and len(sp) == 5
    assert sp.got(0, 0) == 1 and sp.got(m - 2, m - 2) == 1 and len(sp) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "send", "confirm", "got", "lose", "rewind"]),
                          st.integers(0, 7)), max_size=120))
def test_every_frame_is_stored_by_the_hub_or_counted_as_dropped(ops):
    # A model of a link and a hub: frames go out (the broker may lose them),
    # the hub stores what arrives and acknowledges some; reconnects rewind.
    # In hub mode, whatever the order, a frame the node took is either in
    # the hub's store by the end, or counted in `dropped`; none is counted
    # that the hub stored.
    sp = Spool(slots=6, size=8, window=64)
    sp.got(10**6, 10**6)  # hub mode from the start
    made, stored, inflight, pending = [], set(), {}, []
    pids = itertools.count(1)
    n = 0
    for op, arg in ops:
        if op == "put":
            sp.put(2, b"%d" % n, seq=n)
            made.append(n)
            n += 1
        elif op == "send" and sp.unsent():
            _, data = sp.peek()
            pid = next(pids)
            inflight[pid] = int(bytes(data))
            sp.mark_sent(pid)
        elif op == "confirm" and inflight:  # PUBACKed, and it reaches the hub
            pid = sorted(inflight)[arg % len(inflight)]
            seq = inflight.pop(pid)
            sp.ack(pid)
            stored.add(seq)
            pending.append(seq)
        elif op == "lose" and inflight:  # PUBACKed, then dropped by the broker
            sp.ack(inflight.pop(sorted(inflight)[arg % len(inflight)]))
        elif op == "got" and pending:  # the hub's got reaches the node
            k = 1 + arg % len(pending)
            for seq in pending[:k]:
                sp.got(seq, seq)
            del pending[:k]
        elif op == "rewind":
            inflight.clear()
            sp.rewind()
    # The link stays up until everything is through.
    for seq in pending:
        sp.got(seq, seq)
    sp.rewind()
    while sp.unsent():
        _, data = sp.peek()
        seq = int(bytes(data))
        stored.add(seq)
        sp.mark_sent(0)
        sp.got(seq, seq)
    assert len(sp) == 0
    lost = set(made) - stored
    # Every loss is counted (a frame pushed out while its got was still on
    # the way is counted too, though the hub has it: never fewer, at most
    # one per frame pushed out) ...
    assert len(lost) <= sp.dropped <= len(made) - sp.slots if len(made) > sp.slots else not lost
    assert not lost & set(made[-sp.slots:])  # and the newest `slots` frames always survive


# -- the file tier ---------------------------------------------------------------------
def file_spool(tmp_path, slots=4, fslots=20, size=16, **kw):
    said = []
    sp = Spool(slots=slots, size=size, file=str(tmp_path / "spool.bin"), file_slots=fslots,
               say=said.append, **kw)
    return sp, said


def test_in_hub_mode_the_oldest_frames_move_to_the_file_and_come_back_in_order(tmp_path):
    sp, said = file_spool(tmp_path)
    sp.got(10**6, 10**6)  # hub mode (no frame of ours yet)
    assert (tmp_path / "spool.bin.e2e").exists()  # and the marker for the next boot
    fill(sp, 24)  # 4 in RAM, 20 in the file: nothing lost
    assert len(sp) == 24 and sp.dropped == 0 and sp.moved == 20
    assert drain(sp) == [b"f%d" % s for s in range(24)]  # oldest first, from the file
    assert sp.got(0, 9) == 10 and len(sp) == 14
    fill(sp, 10, start=24)  # the file ring wraps over the released slots
    assert sp.dropped == 0 and len(sp) == 24
    sp.rewind()
    assert drain(sp) == [b"f%d" % s for s in range(10, 34)]
    fill(sp, 3, start=34)  # full: the three oldest, unacknowledged, are lost and counted
    assert sp.dropped == 3 and len(sp) == 24
    assert sp.got(13, 36) == 24 and len(sp) == 0 and said == []


def test_link_mode_never_writes_the_file(tmp_path):
    sp, _ = file_spool(tmp_path)
    fill(sp, 30)  # no hub acknowledges yet: the RAM ring only
    assert len(sp) == 4 and sp.moved == 0 and not (tmp_path / "spool.bin").exists()
    assert sp.capacity == 24 and sp.room() == 4


def test_the_marker_starts_the_next_boot_in_hub_mode(tmp_path):
    (tmp_path / "spool.bin.e2e").write_bytes(b"1")
    sp, _ = file_spool(tmp_path)
    assert sp.e2e and sp.room() == 24  # a node booted while its hub is away keeps 24
    fill(sp, 24)
    assert sp.dropped == 0 and sp.moved == 20


def test_a_failing_file_leaves_ram_only_and_counts_what_it_held(tmp_path):
    sp, said = file_spool(tmp_path)
    sp.got(10**6, 10**6)
    fill(sp, 10)  # 6 in the file
    (tmp_path / "spool.bin").unlink()
    sp._f.close()  # the file is gone under us (a worn flash, a full card)
    assert sp.peek()[0] == 0  # can't be read back: the 6 are dropped, counted
    assert sp.dropped == 6 and len(sp) == 4 and said and "failed" in said[0]
    assert drain(sp) == [b"f%d" % s for s in range(6, 10)]
    fill(sp, 5, start=10)  # RAM only from now on
    assert len(sp) == 4 and sp.moved == 6


def test_a_file_that_cannot_be_made_is_said_once(tmp_path):
    sp = Spool(slots=2, size=8, file=str(tmp_path / "no" / "such" / "dir.bin"), file_slots=10,
               say=(said := []).append)
    sp.got(10**6, 10**6)
    fill(sp, 5)
    assert len(said) == 1 and "RAM only" in said[0] and sp.dropped == 3 and len(sp) == 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "put", "send", "got", "rewind"]),
                          st.integers(0, 9)), max_size=150))
def test_the_file_tier_keeps_order_and_loses_only_what_it_counts(tmp_path_factory, ops):
    # A model: frames n with seq 2n (holes, as pongs leave them), sends,
    # gots for some kept frames (the hub stores them), reconnects.  Whatever
    # the order: what is kept comes out oldest first, the newest `slots`
    # frames are kept or stored, and every frame neither stored nor kept at
    # the end is counted in `dropped`.
    d = tmp_path_factory.mktemp("sp")
    sp = Spool(slots=3, size=8, file=str(d / "s.bin"), file_slots=7, window=8)
    sp.got(10**6, 10**6)
    made, stored, n = [], set(), 0
    for op, arg in ops:
        if op == "put":
            sp.put(2, b"%d" % n, seq=2 * n)
            made.append(n)
            n += 1
        elif op == "send" and sp.unsent():
            sp.peek()
            sp.mark_sent(0)
        elif op == "got" and len(sp):
            lo = sp.seq_at(sp.tail + arg % len(sp))
            hi = lo + 2 * (arg % 3)
            sp.got(lo, hi)
            stored |= {s // 2 for s in range(lo, hi + 1, 2) if s // 2 < n}  # (made ones)
        elif op == "rewind":
            sp.rewind()
    sp.rewind()
    left = []
    while sp.unsent():
        _, data = sp.peek()
        left.append(int(bytes(data)))
        sp.mark_sent(0)
    assert left == sorted(left) and len(left) <= sp.capacity and not set(left) & stored
    assert set(made[-sp.slots:]) <= set(left) | stored
    assert len(set(made) - stored - set(left)) <= sp.dropped


def test_the_link_fits_the_file_to_the_filesystem_and_node_json_sets_it(tmp_path):
    import os

    from support.nodeharness import sim_board

    from node import config
    from node.app import Node
    from node.hal_sim import SimHal
    from node.link import _fit

    said = []
    st = os.statvfs(tmp_path)
    free = st.f_frsize * st.f_bavail
    # Asking for more than the filesystem holds: what fits (32 kB kept), said once.
    assert _fit(str(tmp_path / "s.bin"), 1000, 10**12, said.append) == (free - 32768) // 1000
    assert len(said) == 1 and "room for" in said[0]
    assert _fit(str(tmp_path / "s.bin"), 1000, 10, said.append) == 10 and len(said) == 1
    assert _fit("/proc/nowhere/s.bin", 1000, 10, said.append) == 0  # can't tell: RAM only
    path = str(tmp_path / "mine.bin")
    cfg = config.merge(sim_board(), {"node": "sp-9", "spool": {"slots": 6, "file": path,
                                                                "file_slots": 40}})
    sp = Node(cfg, SimHal(cfg), say=said.append).link.spool
    assert (sp.slots, sp.fslots, sp.file, sp.capacity) == (6, 40, path, 46)
    cfg = config.merge(sim_board(), {"node": "sp-9", "spool": {"file": ""}})
    sp = Node(cfg, SimHal(cfg), say=said.append).link.spool
    assert sp.file is None and sp.capacity == sp.slots  # RAM only
