"""The backfill store: the last packets the clip sent, so a host that missed some can ask again.

Every SAMPLES packet the clip makes is kept: in a RAM ring when there is room (boards with PSRAM),
else on flash. On flash the store is a ring of segment files, each written from its start to its
end by appending and then reused whole (reopened "wb": littlefs frees its blocks). littlefs
rewrites a file's whole tail when a write lands mid-file (copy on write), so the store never
seeks to write; a request reads through a second handle.

A request for a range of sample indices (``start``) is answered a few packets per pass of the
main loop (``pump``): each held packet overlapping the range (found by bisection: packets are in
index order) is re-typed BACKFILL, numbered from seq 0 for this request, and sent; one the link
refuses (its buffers are full) is sent again on the next pass. When the range is done a STATUS
backfill_done gives the samples sent. Requests that come while one is under way (a host that
saw several gaps) wait their turn, up to QUEUE of them. The host
merges them by sample index (and ignores what it already has). A slot's own header says which
samples it holds, so nothing else is kept per packet.
"""
import os

from micropython import const

from clipcore import wire as P

_FIRST_IDX_OFFSET = const(3)  # SAMPLES header: type u8, seq u16, first_idx u32, count u8
_COUNT_OFFSET = const(7)
SEGMENT_PACKETS = const(32)  # ~7.5 kB a segment file: ~3 s at 208 Hz
PACKETS_PER_PASS = const(2)  # ~20 notifications a second, beside 11-22 live ones: under ~40/s
SCAN_PER_PASS = const(16)  # packets looked at per pass (reads from flash cost time)
QUEUE = const(4)  # requests held at once (the one under way and those waiting)


def _packets(seconds, rate_hz, samples_per_packet):
    return (seconds * rate_hz + samples_per_packet - 1) // samples_per_packet + 1


def flash_bytes(seconds, rate_hz, samples_per_packet):
    """What a store on flash takes at most (the flash log leaves it this much)."""
    n_segs = (_packets(seconds, rate_hz, samples_per_packet) + SEGMENT_PACKETS - 1) // SEGMENT_PACKETS + 1
    return n_segs * SEGMENT_PACKETS * (P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * samples_per_packet)


class Backfill:
    def __init__(self, seconds, rate_hz, samples_per_packet, folder=None, buf=None):
        self.spp = samples_per_packet
        self.slot_bytes = P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * samples_per_packet
        n_packets = _packets(seconds, rate_hz, samples_per_packet)
        self.kept = 0  # packets kept since boot
        self.folder = folder
        self.failed = False  # the flash refused a write: nothing more is kept
        self._ram = None
        self._w = None  # the segment being appended to
        self._r = None  # a segment open for reading, and which
        self._r_seg = -1
        self._w_dirty = False
        self.buf = buf or bytearray(self.slot_bytes)  # one packet being re-sent
        self.sending = False
        self.waiting = []  # (first_idx, end_idx) of the requests after the one under way
        if folder:
            self.n_segs = (n_packets + SEGMENT_PACKETS - 1) // SEGMENT_PACKETS + 1
            self.capacity = (self.n_segs - 1) * SEGMENT_PACKETS  # packets always held (plus the current segment's)
            self.paths = ["%s/%02d.bin" % (folder, s) for s in range(self.n_segs)]
            try:
                try:
                    os.mkdir(folder)
                except OSError:
                    pass
                for name in os.listdir(folder):  # a store from an earlier boot is worth nothing now
                    os.remove(folder + "/" + name)
                self._w = open(self.paths[0], "wb")
            except OSError:
                self.failed = True
        else:
            self.n_segs = 0
            self.capacity = n_packets
            self._ram = bytearray(n_packets * self.slot_bytes)

    # -- keeping ------------------------------------------------------------------------------
    def keep(self, pkt, app):
        """Keep a SAMPLES packet (its bytes, as sent; a short one too: its header says so)."""
        if self._ram is not None:
            o = (self.kept % self.capacity) * self.slot_bytes
            self._ram[o:o + self.slot_bytes] = pkt
            self.kept += 1
            return
        if self.failed:
            return
        try:
            self._w.write(pkt)
            self._w_dirty = True
            self.kept += 1
            if self.kept % SEGMENT_PACKETS == 0:  # the segment is full: on to the next, reused whole
                self._w.close()
                s = (self.kept // SEGMENT_PACKETS) % self.n_segs
                if self._r_seg == s:
                    self._close_reader()
                self._w = open(self.paths[s], "wb")  # (the one allocation: a file object per segment)
                self._w_dirty = False
        except Exception:  # noqa: BLE001  (a full or failing flash: backfill is lost, the run goes on)
            self.failed = True
            app.recovered(P.ERROR_FLASH)

    def _held(self):
        """Packet numbers [lo, hi) still held."""
        hi = self.kept
        if self._ram is not None:
            return max(0, hi - self.capacity), hi
        return max(0, (hi // SEGMENT_PACKETS - self.n_segs + 1) * SEGMENT_PACKETS), hi

    def _load(self, k):
        """Packet number k into self.buf; return its first sample index."""
        if self._ram is not None:
            o = (k % self.capacity) * self.slot_bytes
            self.buf[:] = memoryview(self._ram)[o:o + self.slot_bytes]
            return P.u32(self.buf, _FIRST_IDX_OFFSET)
        s = (k // SEGMENT_PACKETS) % self.n_segs
        if k // SEGMENT_PACKETS == self.kept // SEGMENT_PACKETS and (self._w_dirty or self._r_seg == s):
            # the segment being written: make what it holds readable, and read it afresh
            if self._w_dirty:
                self._w.flush()
                self._w_dirty = False
            self._close_reader()
        if self._r_seg != s:
            self._close_reader()
            self._r = open(self.paths[s], "rb")
            self._r_seg = s
        self._r.seek((k % SEGMENT_PACKETS) * self.slot_bytes)
        self._r.readinto(self.buf)
        return P.u32(self.buf, _FIRST_IDX_OFFSET)

    def _close_reader(self):
        if self._r is not None:
            self._r.close()
            self._r = None
            self._r_seg = -1

    def oldest_idx(self):
        lo, hi = self._held()
        return self._load(lo) if hi > lo and not self.failed else -1

    def covers(self, first_idx, count):
        """True if every requested sample is still held."""
        lo, hi = self._held()
        if hi == lo or self.failed:
            return False
        try:
            newest = self._load(hi - 1)
            return self._load(lo) <= first_idx and first_idx + count <= newest + self.buf[_COUNT_OFFSET]
        except OSError:
            return False

    # -- answering a request, a few packets per pass ------------------------------------------
    def start(self, first_idx, count):
        """Send [first_idx, first_idx + count) now, or after the requests already held; return
        the samples that will come, or -1 if QUEUE requests are held already (busy)."""
        if self.sending:
            if len(self.waiting) >= QUEUE - 1:
                return -1
            self.waiting.append((first_idx, first_idx + count))
            return count
        self._begin(first_idx, first_idx + count)
        return count

    def _begin(self, first_idx, end_idx):
        lo, hi = self._held()
        while lo < hi:  # the first packet that ends after first_idx (packets are in index order)
            mid = (lo + hi) // 2
            if self._load(mid) + self.buf[_COUNT_OFFSET] <= first_idx:
                lo = mid + 1
            else:
                hi = mid
        self.first_idx = first_idx
        self.end_idx = end_idx
        self.next_k = lo
        self.end_k = self._held()[1]
        self.seq = 0
        self.sent = 0
        self.sending = True

    def pump(self, app):
        """Send the next packets of the request under way; stop at the first the link refuses."""
        link = app.link
        if not link.host_connected():  # the host left: it asks again for what it lacks
            self.sending = False
            del self.waiting[:]
            return
        scanned = sent = 0
        try:
            while self.next_k < self.end_k and scanned < SCAN_PER_PASS and sent < PACKETS_PER_PASS:
                scanned += 1
                if self.next_k < self._held()[0]:  # overwritten since the request: gone
                    self.next_k += 1
                    continue
                f = self._load(self.next_k)
                n = self.buf[_COUNT_OFFSET]
                if f >= self.end_idx:  # packets are in index order: the rest are later still
                    self.next_k = self.end_k
                    break
                if f + n <= self.first_idx:
                    self.next_k += 1
                    continue
                b = self.buf
                b[0] = P.header_byte(P.T_BACKFILL)
                b[1] = self.seq & 0xFF
                b[2] = (self.seq >> 8) & 0xFF
                if not link.send(b, P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * n):
                    return  # the same packet on the next pass
                self.seq += 1
                self.sent += n
                sent += 1
                self.next_k += 1
        except OSError:  # the flash would not read: what was sent stands
            app.recovered(P.ERROR_FLASH)
            self.next_k = self.end_k
        if self.next_k >= self.end_k:
            self.sending = False
            app._status(P.STATUS_BACKFILL_DONE, self.sent)
            if self.waiting:
                first, end = self.waiting.pop(0)
                self._begin(first, end)

    def close(self):
        self._close_reader()
        if self._w is not None:
            try:
                self._w.close()
            except OSError:
                pass
            self._w = None
