"""Accept each (node, boot, seq) once: the hub's duplicate filter (see
docs/protocol.md section 6).  kairos.wire.Dedup is this class; it lives in
its own module so that a node, which never filters, doesn't load it.
"""
from .wire import DUPLICATE, GAP, LATE, REPLAY, _bump


class Dedup:
    """Accept each (node, boot, seq) once.

    Per node: the current boot, the highest seq seen and a bitmap of the
    last `window` seqs, so a frame arriving late but inside the window is
    still accepted once ("late"); a frame older than the window, or from
    one of the node's previous `boots` boot ids, is refused ("replay").
    A forward jump adds the skipped seqs to counts["gap"].
    """

    def __init__(self, window=128, boots=4):
        self.window = (window + 7) & ~7
        self.boots = boots
        self.counts = {}
        self._nodes = {}  # node -> [boot, top seq, bitmap, previous boots]

    def _bit(self, bits, seq, on):
        """Set (on) or clear the bit of seq; return whether it was set."""
        i = seq % self.window
        m = 1 << (i & 7)
        old = bits[i >> 3] & m
        bits[i >> 3] = bits[i >> 3] | m if on else bits[i >> 3] & ~m & 0xFF
        return old

    def accept(self, msg):
        """True if msg is new; False (and a count) for a repeat or replay."""
        node, boot, seq = msg["node"], msg["boot"], msg["seq"]
        st = self._nodes.get(node)
        if st is None or st[0] != boot:
            if st is not None:
                if boot in st[3]:
                    _bump(self.counts, REPLAY)
                    return False
                st[3].append(st[0])
                if len(st[3]) > self.boots:
                    st[3].pop(0)
            st = self._nodes[node] = [boot, seq, bytearray(self.window >> 3), st[3] if st else []]
            self._bit(st[2], seq, True)
            return True
        bits, top = st[2], st[1]
        if seq > top:
            if seq - top > 1:
                _bump(self.counts, GAP, seq - top - 1)
            if seq - top >= self.window:
                for i in range(len(bits)):
                    bits[i] = 0
            else:
                for s in range(top + 1, seq):
                    self._bit(bits, s, False)
            self._bit(bits, seq, True)
            st[1] = seq
            return True
        if top - seq >= self.window:
            _bump(self.counts, REPLAY)  # too old to tell: assume a replay
            return False
        if self._bit(bits, seq, True):
            _bump(self.counts, DUPLICATE)
            return False
        _bump(self.counts, LATE)
        return True
