"""Store-and-forward: a bounded ring of encoded frames, preallocated, with
an overflow ring in a file for long outages.

A frame stays here until the hub says it has stored it (a `got` naming its
seq, docs/protocol.md §8): not when the serial write returned or the broker
PUBACKed it, since a broker that drops queued messages, a hub that dies or
a cable pulled mid-line would lose it after that.  While nothing takes them
the ring fills; when full the oldest frame is dropped and counted (reports
carry the count).  After a reconnect everything not yet acknowledged is sent
again, oldest first; the hub drops the duplicates by (node, boot, seq).

Two tiers.  The newest `slots` frames live in RAM.  With a `file`, older
ones move to a ring of `file_slots` slots in that file (the flash
filesystem on a board) once the RAM ring is full: one slot written per frame
that moves, and only while frames wait for the hub (an outage; nothing is
written while the hub keeps up).  The file is opened, emptied, at the first
move of a boot: what it held before a restart belongs to another boot.

A hub that never acknowledges (an older hub, a console, a plain subscriber)
leaves the node in link mode: frames are still kept until pushed out (RAM
only: the file is for hub mode), but a frame the link confirmed is not
counted as lost when it goes (`evicted`).  The first `got` of a boot
switches to hub mode (`e2e`) for good, and the confirmed frames pushed out
unacknowledged before it are then counted lost.  With a file, that first
got also leaves a marker (<file>.e2e, a few bytes, written once): a node
that boots while its hub is away then starts in hub mode and keeps what
the outage needs.

Positions are free-running counters: tail <= sent <= head, head - tail <=
capacity = slots + file_slots.  Position p is in RAM slot p % slots when
p >= head - slots, else in file slot p % file_slots.  Per position, two
bits in RAM (the link confirmed it, the hub has it); per RAM slot its
bytes, length, kind and seq; a file slot has them in its 7-byte header
(file_slots x 2 bits of RAM for the whole file tier).  Packet ids of
frames the link has not confirmed yet sit in a small table (`window`
entries: MQTT's in-flight limit).
"""
from array import array

M30 = 0x3FFFFFFF
_HALF = 1 << 29
_HEAD = 7  # a file slot: len u16, kind u8, seq u32 (little-endian), then the frame


def _bits(n):
    return bytearray((n + 7) >> 3)


class Spool:
    def __init__(self, slots=32, size=512, file=None, file_slots=0, window=0, say=print):
        self.slots = slots  # in RAM
        self.size = size
        self._buf = bytearray(slots * size)
        self._mv = memoryview(self._buf)
        self._len = array("H", bytes(2 * slots))
        self._kind = bytearray(slots)
        self._seq = array("i", bytes(4 * slots))  # (C int: 4 bytes everywhere we run)
        self.file = file if file and file_slots > 0 else None
        self.fslots = file_slots if self.file else 0
        self.capacity = slots + self.fslots  # positions kept at most (hub mode, file working)
        self._conf = _bits(self.capacity)  # the link confirmed it
        self._acked = _bits(self.capacity)  # the hub has it
        self._fpid = array("H", bytes(2 * window))  # packet ids not confirmed yet ...
        self._fpos = array("i", bytes(4 * window))  # ... and their positions
        self._f = None
        self._fok = self.fslots > 0
        self._say = say
        if self.file:
            self._stride = _HEAD + size
            self._rb = bytearray(self._stride)  # one file slot read back
            self._rmv = memoryview(self._rb)
        self.tail = 0  # oldest frame kept
        self.sent = 0  # next frame to send
        self.head = 0  # next free position
        self.unconf = 0  # frames sent on this connection the link has not confirmed
        self.e2e = False  # the hub acknowledges (a got came this boot, or the marker says so)
        self.dropped = 0  # frames lost: pushed out before the hub had them (or never sent)
        self.evicted = 0  # link mode: confirmed frames pushed out (not known lost)
        self.oversize = 0  # frames too big for a slot (never stored)
        self.moved = 0  # frames written to the file (the flash wear: one slot each)
        if self.file:
            try:
                open(self.file + ".e2e", "rb").close()
                self.e2e = True
            except OSError:
                pass

    def __len__(self):
        return self.head - self.tail

    # -- per-position bits ----------------------------------------------------
    def _bit(self, bits, p):
        i = p % self.capacity
        return bits[i >> 3] & (1 << (i & 7))

    def _set(self, bits, p, on):
        i = p % self.capacity
        if on:
            bits[i >> 3] |= 1 << (i & 7)
        else:
            bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF

    # -- keeping ----------------------------------------------------------------
    def room(self):
        """Frames kept at most now: the file counts in hub mode, while it works."""
        if self.e2e and self._fok:
            return self.capacity
        return self.slots

    def put(self, kind, data, seq=0):
        """Keep a frame; push the oldest out if full.  False if it can't fit."""
        n = len(data)
        if n > self.size:
            self.oversize += 1
            return False
        while self.head - self.tail >= self.room():
            self._evict()
        if self.head - self.tail >= self.slots and not self._spill(self.head - self.slots):
            while self.head - self.tail >= self.slots:  # the file failed: RAM only now
                self._evict()
        p = self.head
        i = p % self.slots
        o = i * self.size
        self._mv[o : o + n] = data
        self._len[i] = n
        self._kind[i] = kind
        self._seq[i] = seq
        self._set(self._conf, p, False)
        self._set(self._acked, p, False)
        self.head = p + 1
        return True

    def _evict(self):
        p = self.tail
        if self._bit(self._acked, p):
            pass
        elif self._bit(self._conf, p) and not self.e2e:
            self.evicted += 1  # delivered to a hub that doesn't acknowledge
        else:
            self.dropped += 1
        self.tail = p + 1
        if self.sent < self.tail:
            self.sent = self.tail

    def _spill(self, p):
        """Move position p (the oldest in RAM) to its file slot."""
        if not self._fok:
            return False
        i = p % self.slots
        n = self._len[i]
        rb = self._rb
        rb[0] = n & 0xFF
        rb[1] = n >> 8
        rb[2] = self._kind[i]
        s = self._seq[i]
        rb[3] = s & 0xFF
        rb[4] = (s >> 8) & 0xFF
        rb[5] = (s >> 16) & 0xFF
        rb[6] = (s >> 24) & 0xFF
        o = i * self.size
        try:
            f = self._f
            if f is None:
                f = self._f = open(self.file, "w+b")  # noqa: SIM115 - kept open; emptied: a new boot's ring
            f.seek((p % self.fslots) * self._stride)
            f.write(self._rmv[:_HEAD])
            f.write(self._mv[o : o + n])
        except (OSError, ValueError) as e:
            self._fok = False
            self._say("spool: %s failed (%s); keeping %d frames in RAM only"
                      % (self.file, e, self.slots))
            return False
        self.moved += 1
        return True

    def _read(self, p, whole):
        """Position p's file slot into the read buffer: its header, and the
        frame too if whole.  False if the file failed (then its frames are
        gone, counted: RAM only from now on)."""
        try:
            f = self._f
            f.seek((p % self.fslots) * self._stride)
            if f.readinto(self._rmv[:_HEAD]) != _HEAD:
                raise OSError("short read")
            if whole:
                n = self._rb[0] | self._rb[1] << 8
                if f.readinto(self._rmv[_HEAD : _HEAD + n]) != n:
                    raise OSError("short read")
            return True
        except (OSError, ValueError, AttributeError) as e:  # (ValueError: closed, on CPython)
            self._say("spool: reading %s failed (%s)" % (self.file, e))
            self._fok = False
            while self.head - self.tail > self.slots:
                self._evict()
            return False

    def seq_at(self, p):
        if p >= self.head - self.slots:
            return self._seq[p % self.slots]
        if not self._read(p, False):
            return -1
        rb = self._rb
        return rb[3] | rb[4] << 8 | rb[5] << 16 | rb[6] << 24

    # -- sending --------------------------------------------------------------
    def unsent(self):
        """Frames to (re)send on this connection, past any the hub already has."""
        while self.sent < self.head and self._bit(self._acked, self.sent):
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
        if p >= self.head - self.slots:
            i = p % self.slots
            o = i * self.size
            return self._kind[i], self._mv[o : o + self._len[i]]
        if not self._read(p, True):
            return 0, self._rmv[:0]  # (the file failed: an empty frame, skipped)
        rb = self._rb
        return rb[2], self._rmv[_HEAD : _HEAD + (rb[0] | rb[1] << 8)]

    def mark_sent(self, pid=0):
        """The next frame went out; pid 0 means already confirmed."""
        self.mark_at(self.sent, pid)
        self.sent += 1

    def mark_at(self, p, pid):
        if pid == 0:
            self._set(self._conf, p, True)
            return
        fp = self._fpid
        for j in range(len(fp)):
            if fp[j] == 0:
                fp[j] = pid
                self._fpos[j] = p
                self.unconf += 1
                return
        # (no room to track it: it won't count against the window)

    def ack(self, pid):
        """The link confirmed the frame sent with this packet id."""
        fp = self._fpid
        for j in range(len(fp)):
            if fp[j] == pid:
                fp[j] = 0
                self.unconf -= 1
                p = self._fpos[j]
                if self.tail <= p < self.head:
                    self._set(self._conf, p, True)
                return

    def rewind(self):
        """After a reconnect (or no word from the hub for too long): send
        everything the hub has not acknowledged again, oldest first."""
        self.sent = self.tail
        self.unconf = 0
        fp = self._fpid
        for j in range(len(fp)):
            fp[j] = 0

    # -- the hub's acknowledgements ---------------------------------------------
    def got(self, lo, hi):
        """The hub has stored the frames with seq lo..hi: they leave the ring
        (once every older one has too).  Returns how many were new to it."""
        fok = self._fok
        marked = self._got(lo, hi)
        if fok and not self._fok:  # the file failed on the way: again, in RAM
            marked = self._got(lo, hi)
        return marked

    def _got(self, lo, hi):
        if not self.e2e:
            self.e2e = True
            self.dropped += self.evicted  # confirmed, then pushed out: never stored
            self.evicted = 0
            if self.file:
                try:  # the marker: this node's hub acknowledges (next boot too)
                    with open(self.file + ".e2e", "wb") as f:
                        f.write(b"1")
                except OSError:
                    pass
        if self.head == self.tail:
            return 0
        base = self.seq_at(self.tail)
        klo, khi = (lo - base) & M30, (hi - base) & M30
        if base < 0 or khi >= _HALF:
            return 0  # all before the oldest frame kept (or the file failed)
        if klo >= _HALF:
            klo = 0
        a, b = self.tail, self.head  # the first position with seq >= lo
        while a < b:
            m = (a + b) >> 1
            if (self.seq_at(m) - base) & M30 < klo:
                a = m + 1
            else:
                b = m
        marked = 0
        acked = self._acked
        while a < self.head:
            if (self.seq_at(a) - base) & M30 > khi:
                break
            if not self._bit(acked, a):
                self._set(acked, a, True)
                marked += 1
            a += 1
        while self.tail < self.head and self._bit(acked, self.tail):
            self.tail += 1
        if self.sent < self.tail:
            self.sent = self.tail
        return marked
