"""Store-and-forward: a bounded ring of encoded frames, preallocated.

A frame stays here until the hub says it has stored it (a `got` naming its
seq, docs/protocol.md §8): not when the serial write returned or the broker
PUBACKed it, since a broker that drops queued messages, a hub that dies or
a cable pulled mid-line would lose it after that.  While nothing takes them
the ring fills; when full the oldest frame is dropped and counted (reports
carry the count).  After a reconnect everything not yet acknowledged is sent
again, oldest first; the hub drops the duplicates by (node, boot, seq).

A hub that never acknowledges (an older hub, a console, a plain subscriber)
leaves the node in link mode: frames are still kept until pushed out, but a
frame the link confirmed is not counted as lost when it goes (`evicted`).
The first `got` of this boot switches to hub mode (`e2e`) for good, and the
confirmed frames pushed out unacknowledged before it are then counted lost.

Positions are free-running counters: tail <= sent <= head, head - tail <=
slots.  Slot i holds frame number p when p % slots == i.  Per slot: its
bytes, length, kind, seq, the packet id it went out with (0: the link
confirmed it) and two flags.
"""
from array import array

M30 = 0x3FFFFFFF
_HALF = 1 << 29
_CONF = 1  # the link confirmed it (written out, PUBACKed)
_ACKED = 2  # the hub stored it
_UNSENT = 0xFFFF  # pid of a frame not (re)sent on this connection yet


class Spool:
    def __init__(self, slots=32, size=512):
        self.slots = slots
        self.size = size
        self._buf = bytearray(slots * size)
        self._mv = memoryview(self._buf)
        self._len = array("H", bytes(2 * slots))
        self._kind = bytearray(slots)
        self._seq = array("i", bytes(4 * slots))  # (C int: 4 bytes everywhere we run)
        self._pid = array("H", bytes(2 * slots))
        self._flags = bytearray(slots)
        self.tail = 0  # oldest frame kept
        self.sent = 0  # next frame to send
        self.head = 0  # next free position
        self.unconf = 0  # frames sent on this connection the link has not confirmed
        self.e2e = False  # the hub acknowledges (a got came this boot)
        self.dropped = 0  # frames lost: pushed out before the hub had them (or never sent)
        self.evicted = 0  # link mode: confirmed frames pushed out (not known lost)
        self.oversize = 0  # frames too big for a slot (never stored)

    def __len__(self):
        return self.head - self.tail

    def put(self, kind, data, seq=0):
        """Keep a frame; push the oldest out if full.  False if it can't fit."""
        n = len(data)
        if n > self.size:
            self.oversize += 1
            return False
        if self.head - self.tail >= self.slots:
            self._evict()
        i = self.head % self.slots
        o = i * self.size
        self._mv[o : o + n] = data
        self._len[i] = n
        self._kind[i] = kind
        self._seq[i] = seq
        self._pid[i] = _UNSENT
        self._flags[i] = 0
        self.head += 1
        return True

    def _evict(self):
        i = self.tail % self.slots
        f = self._flags[i]
        if f & _CONF and not self.e2e:
            self.evicted += 1  # delivered to a hub that doesn't acknowledge
        elif not f & _ACKED:
            self.dropped += 1
        if self.tail < self.sent and self._pid[i] != 0 and self._pid[i] != _UNSENT:
            self.unconf -= 1
        self.tail += 1
        if self.sent < self.tail:
            self.sent = self.tail

    # -- sending --------------------------------------------------------------
    def unsent(self):
        """Frames to (re)send on this connection, past any the hub already has."""
        while self.sent < self.head and self._flags[self.sent % self.slots] & _ACKED:
            self.sent += 1
        return self.sent < self.head

    def waiting(self):
        """Frames sent and not yet acknowledged by the hub."""
        return self.sent > self.tail

    def owed(self):
        """Frames the node still owes the hub: in hub mode every one not
        acknowledged; in link mode the unsent and the unconfirmed."""
        if self.e2e:
            return self.head - self.tail
        return self.head - self.sent + self.unconf

    def inflight(self):
        return self.unconf

    def peek(self):
        """(kind, memoryview) of the next frame to send."""
        return self.peek_at(self.sent)

    def peek_at(self, p):
        i = p % self.slots
        o = i * self.size
        return self._kind[i], self._mv[o : o + self._len[i]]

    def mark_sent(self, pid=0):
        """The next frame went out; pid 0 means already confirmed."""
        self.mark_at(self.sent, pid)
        self.sent += 1

    def mark_at(self, p, pid):
        i = p % self.slots
        old = self._pid[i]
        if old != 0 and old != _UNSENT:
            self.unconf -= 1  # sent again: its earlier packet id is moot
        self._pid[i] = pid
        if pid == 0:
            self._flags[i] |= _CONF
        else:
            self.unconf += 1

    def ack(self, pid):
        """The link confirmed the frame sent with this packet id."""
        p = self.sent - 1
        while p >= self.tail:
            i = p % self.slots
            if self._pid[i] == pid:
                self._pid[i] = 0
                self._flags[i] |= _CONF
                self.unconf -= 1
                return
            p -= 1

    def rewind(self):
        """After a reconnect (or no word from the hub for too long): send
        everything the hub has not acknowledged again, oldest first."""
        self.sent = self.tail
        self.unconf = 0
        p = self.tail
        while p < self.head:
            i = p % self.slots
            if self._pid[i] != 0:
                self._pid[i] = _UNSENT
            p += 1

    # -- the hub's acknowledgements ---------------------------------------------
    def got(self, lo, hi):
        """The hub has stored the frames with seq lo..hi: they leave the ring
        (once every older one has too).  Returns how many were new to it."""
        if not self.e2e:
            self.e2e = True
            self.dropped += self.evicted  # confirmed, then pushed out: never stored
            self.evicted = 0
        if self.head == self.tail:
            return 0
        n, seqs, flags = self.slots, self._seq, self._flags
        base = seqs[self.tail % n]
        klo, khi = (lo - base) & M30, (hi - base) & M30
        if khi >= _HALF:
            return 0  # all before the oldest frame kept
        if klo >= _HALF:
            klo = 0
        a, b = self.tail, self.head  # the first position with seq >= lo
        while a < b:
            m = (a + b) >> 1
            if (seqs[m % n] - base) & M30 < klo:
                a = m + 1
            else:
                b = m
        marked = 0
        while a < self.head:
            i = a % n
            if (seqs[i] - base) & M30 > khi:
                break
            if not flags[i] & _ACKED:
                flags[i] |= _ACKED
                if a < self.sent and self._pid[i] != 0 and self._pid[i] != _UNSENT:
                    self.unconf -= 1
                self._pid[i] = 0
                marked += 1
            a += 1
        while self.tail < self.head and flags[self.tail % n] & _ACKED:
            self.tail += 1
        if self.sent < self.tail:
            self.sent = self.tail
        return marked
