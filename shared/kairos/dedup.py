"""Accept each (node, boot, seq) once, and let no single frame poison that:
the hub's duplicate filter (the rules and their cases: docs/protocol.md §6).
kairos.wire.Dedup is this class; it lives in its own module so that a node,
which never filters, doesn't load it.

Per node: its current boot, that boot's highest seq, and the seqs seen as a
short list of ranges (a backlog resent in order is one range, whatever its
length); below a floor (what a restarted hub seeded, or holes forgotten when
the list is full) the filter cannot tell, and says so ("old").  Previous
boots are remembered with their highest seq.

    dd = Dedup()
    v = dd.judge(msg)            # NEW, LATE, OLD, DUPLICATE, REPLAY, NOHELLO, AHEAD
    dd.accept(msg)               # True for NEW / LATE (OLD counts as a replay)
    dd.judge(msg, stored)        # OLD resolved by stored(msg): DUPLICATE or LATE

Integers only, no I/O: this is shared code (kairos).
"""
from .wire import AHEAD, DUPLICATE, GAP, LATE, NOHELLO, REPLAY, _bump

# Verdicts: LATE, DUPLICATE, REPLAY, NOHELLO (a frame of a boot not announced
# by its hello) and AHEAD (a seq too far past the boot's highest to be its
# next) are also the counts' keys (kairos.wire).
NEW = "new"
OLD = "old"  # below the floor: seen or not, this filter no longer knows
VERDICTS = (NEW, LATE, OLD, DUPLICATE, REPLAY, NOHELLO, AHEAD)
TAKEN = (NEW, LATE)  # the verdicts whose frame is new: store it, act on it


class Dedup:
    """Accept each (node, boot, seq) once.

    ranges: holes remembered per boot (more, and the oldest are forgotten:
    the floor rises); boots: previous boot ids remembered per node; ahead:
    the largest forward jump of seq a frame other than a hello may make.
    """

    def __init__(self, ranges=64, boots=4, ahead=1 << 16):
        self.ranges = ranges
        self.boots = boots
        self.ahead = ahead
        self.counts = {}
        # node -> [boot, top, floor, ranges (flat: lo0, hi0, lo1, hi1, ...),
        #          previous boots (flat: boot0, top0, ...)]
        self._nodes = {}

    # -- the rules --------------------------------------------------------
    def judge(self, msg, stored=None):
        """The verdict on msg (and the counts).  stored(msg) -> bool, when
        given, resolves OLD: stored frames are DUPLICATE, others LATE."""
        node, boot, seq = msg["node"], msg["boot"], msg["seq"]
        hello = msg.get("t") == "hello"
        st = self._nodes.get(node)
        if st is None:
            # First contact: nothing to protect yet, any frame starts the node.
            self._nodes[node] = [boot, seq, 0, [seq, seq], []]
            return NEW
        if boot != st[0]:
            return self._other_boot(st, node, boot, seq, hello)
        top = st[1]
        if seq < st[2]:
            return self._old(msg, stored)
        if seq > top:
            if top < 0:  # a seeded boot with no seq known yet: nothing to measure from
                pass
            elif seq - top > self.ahead and not hello:
                _bump(self.counts, AHEAD)  # held out: a hello must announce such a jump
                return AHEAD
            elif seq - top > 1:
                _bump(self.counts, GAP, seq - top - 1)
            self._add(st, seq)
            st[1] = seq
            return NEW
        if not self._add(st, seq):
            _bump(self.counts, DUPLICATE)
            return DUPLICATE
        _bump(self.counts, LATE)
        return LATE

    def accept(self, msg, stored=None):
        """True if msg is new; False (and a count) for a repeat, a replay, a
        frame of an unannounced boot or one too far ahead.  Without stored,
        a frame below the floor is refused as a replay."""
        v = self.judge(msg, stored)
        if v == OLD:
            _bump(self.counts, REPLAY)  # too old to tell: assume a replay
            return False
        return v in TAKEN

    def _old(self, msg, stored):
        if stored is None:
            return OLD
        if stored(msg):
            _bump(self.counts, DUPLICATE)
            return DUPLICATE
        _bump(self.counts, LATE)
        return LATE

    def _other_boot(self, st, node, boot, seq, hello):
        old = st[4]
        i = 0
        while i < len(old) and old[i] != boot:
            i += 2
        floor = 0  # a new boot: its backlog (lower seqs, after the hello) is new
        if i < len(old):
            # A previous boot.  Only its own hello, with a seq past the last
            # one seen of it, brings it back (the node really is in that
            # boot: a forged hello had switched us away); anything else of it
            # is a replay (a retained hello, a flushed old frame).
            if not (hello and seq > old[i + 1]):
                _bump(self.counts, REPLAY)
                return REPLAY
            floor = old[i + 1] + 1  # what it sent before: no longer known
            del old[i : i + 2]
        elif not hello:
            _bump(self.counts, NOHELLO)  # a stray frame can't switch the node's boot
            return NOHELLO
        if st[0] >= 0:  # (not seed()'s placeholder)
            old.append(st[0])
            old.append(st[1])
        while len(old) > 2 * self.boots:
            del old[0:2]
        self._nodes[node] = [boot, seq, floor, [seq, seq], old]
        return NEW

    # -- the seen set -----------------------------------------------------
    def _add(self, st, seq):
        """Put seq in the boot's ranges; False if it was there already."""
        r = st[3]
        i = len(r) - 2
        while i >= 0 and r[i] > seq:
            i -= 2
        if i >= 0 and seq <= r[i + 1]:
            return False
        left = i >= 0 and r[i + 1] == seq - 1
        right = i + 2 < len(r) and r[i + 2] == seq + 1
        if left and right:
            r[i + 1] = r[i + 3]
            del r[i + 2 : i + 4]
        elif left:
            r[i + 1] = seq
        elif right:
            r[i + 2] = seq
        else:
            r[i + 2 : i + 2] = [seq, seq]
            if len(r) > 2 * self.ranges:
                # Too many holes: forget the oldest range and the hole after
                # it.  Below the new floor the filter says OLD.
                st[2] = r[2]
                del r[0:2]
        return True

    # -- a restarted hub ----------------------------------------------------
    def seed(self, node, boot, seqs, boots=()):
        """State for a node as a previous run left it: its current boot with
        the seqs known stored (nothing below the lowest is known: OLD) and
        its previous boot ids (whose frames are replays)."""
        old = []
        for b in boots:
            if b != boot:
                old.append(b)
                old.append(0x3FFFFFFF)  # its last seq is not known: no hello revives it
        old = old[-2 * self.boots:] if old else old
        if boot is None:
            if old:
                # Only previous boots known: a placeholder current boot no
                # frame carries, so the next hello starts the node.
                self._nodes[node] = [-1, -1, 0, [], old]
            return
        st = [boot, -1, 0, [], old]
        seqs = sorted(set(seqs))
        if seqs:
            st[1], st[2] = seqs[-1], seqs[0]
            for s in seqs:
                self._add(st, s)
        self._nodes[node] = st

    def state(self, node):
        """(boot, top, floor, ranges as [(lo, hi), ...]) or None (tests, debugging)."""
        st = self._nodes.get(node)
        if st is None:
            return None
        r = st[3]
        return st[0], st[1], st[2], [(r[i], r[i + 1]) for i in range(0, len(r), 2)]
