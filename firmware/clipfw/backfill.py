"""The backfill store: the last packets the clip sent, so a host that missed some can ask again.

Each full SAMPLES packet is kept in a slot (slot = packet number modulo the slot count), in RAM
when there is room (boards with PSRAM) or in a file of fixed size on flash otherwise. A request
for a range of sample indices is answered with the stored packets that overlap it, re-typed as
BACKFILL; the host merges them by sample index (and ignores what it already has). A slot's own
header says which samples it holds, so nothing else is kept per slot.
"""
from micropython import const

from clipcore import wire as P

_FIRST_IDX_OFFSET = const(3)  # SAMPLES header: type u8, seq u16, first_idx u32, count u8


class Backfill:
    def __init__(self, seconds, rate_hz, samples_per_packet, path=None, buf=None):
        self.spp = samples_per_packet
        self.slot_bytes = P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * samples_per_packet
        self.n_slots = (seconds * rate_hz + samples_per_packet - 1) // samples_per_packet + 1
        self.kept = 0  # packets kept since boot; the last n_slots of them are held
        self.path = path
        self._ram = None
        self._file = None
        if path:
            self._file = open(path, "w+b")
        else:
            self._ram = bytearray(self.n_slots * self.slot_bytes)
        self.buf = buf or bytearray(self.slot_bytes)  # one packet being re-sent

    def keep(self, pkt):
        """Keep a full SAMPLES packet (its bytes, as sent)."""
        slot = self.kept % self.n_slots
        if self._ram is not None:
            o = slot * self.slot_bytes
            self._ram[o:o + self.slot_bytes] = pkt
        else:
            self._file.seek(slot * self.slot_bytes)
            self._file.write(pkt)
        self.kept += 1

    def _load(self, k):
        """Packet number k into self.buf; return its first sample index."""
        slot = k % self.n_slots
        if self._ram is not None:
            o = slot * self.slot_bytes
            for i in range(self.slot_bytes):
                self.buf[i] = self._ram[o + i]
        else:
            self._file.seek(slot * self.slot_bytes)
            self._file.readinto(self.buf)
        return P.u32(self.buf, _FIRST_IDX_OFFSET)

    def _held(self):
        return max(0, self.kept - self.n_slots), self.kept  # packet numbers [lo, hi)

    def oldest_idx(self):
        lo, hi = self._held()
        return self._load(lo) if hi > lo else -1

    def covers(self, first_idx, count):
        """True if every requested sample is still held."""
        lo, hi = self._held()
        if hi == lo:
            return False
        return self._load(lo) <= first_idx and first_idx + count <= self._load(hi - 1) + self.spp

    def send(self, first_idx, count, send_packet):
        """Re-send, in order, the held packets overlapping [first_idx, first_idx + count) as
        BACKFILL packets through send_packet(buf, n); return the number of samples sent."""
        lo, hi = self._held()
        end = first_idx + count
        sent = 0
        for k in range(lo, hi):
            f = self._load(k)
            if f + self.spp <= first_idx or f >= end:
                continue
            self.buf[0] = P.header_byte(P.T_BACKFILL)
            send_packet(self.buf, self.slot_bytes)
            sent += self.spp
        return sent

    def close(self):
        if self._file:
            self._file.close()
