"""Store-and-forward: a bounded ring of encoded frames, preallocated.

Frames wait here until the link confirms them (written to the serial port,
PUBACKed by the broker).  While the link is down the ring fills; when full
the oldest frame is dropped and counted (reports carry the count).  After a
reconnect everything unconfirmed is sent again, oldest first; the hub drops
the duplicates by (node, boot, seq).

Positions are free-running counters: tail <= sent <= head, head - tail <=
slots.  Slot i holds frame number p when p % slots == i.
"""
from array import array


class Spool:
    def __init__(self, slots=32, size=512):
        self.slots = slots
        self.size = size
        self._buf = bytearray(slots * size)
        self._mv = memoryview(self._buf)
        self._len = array("H", bytes(2 * slots))
        self._kind = bytearray(slots)
        self._pid = array("H", bytes(2 * slots))  # 0 once confirmed
        self.tail = 0  # oldest frame kept
        self.sent = 0  # next frame to send
        self.head = 0  # next free position
        self.dropped = 0  # frames dropped because the ring was full
        self.oversize = 0  # frames too big for a slot (never stored)

    def __len__(self):
        return self.head - self.tail

    def put(self, kind, data):
        """Keep a frame; drop the oldest if full.  False if it can't fit."""
        n = len(data)
        if n > self.size:
            self.oversize += 1
            return False
        if self.head - self.tail >= self.slots:
            self.tail += 1
            self.dropped += 1
            if self.sent < self.tail:
                self.sent = self.tail
        i = self.head % self.slots
        o = i * self.size
        self._mv[o : o + n] = data
        self._len[i] = n
        self._kind[i] = kind
        self._pid[i] = 0xFFFF
        self.head += 1
        return True

    def unsent(self):
        return self.sent < self.head

    def inflight(self):
        return self.sent - self.tail

    def peek(self):
        """(kind, memoryview) of the next frame to send."""
        i = self.sent % self.slots
        o = i * self.size
        return self._kind[i], self._mv[o : o + self._len[i]]

    def mark_sent(self, pid=0):
        """The next frame went out; pid 0 means already confirmed."""
        self._pid[self.sent % self.slots] = pid
        self.sent += 1
        self._advance()

    def ack(self, pid):
        """The link confirmed the frame sent with this packet id."""
        p = self.tail
        while p < self.sent:
            i = p % self.slots
            if self._pid[i] == pid:
                self._pid[i] = 0
                break
            p += 1
        self._advance()

    def rewind(self):
        """After a reconnect: resend everything not yet confirmed."""
        self.sent = self.tail

    def _advance(self):
        while self.tail < self.sent and self._pid[self.tail % self.slots] == 0:
            self.tail += 1
