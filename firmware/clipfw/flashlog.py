"""The run logged to the clip's flash when no host is listening (docs/log-format.md).

One session log per boot, ``<log_dir>/clip-<clip_id>-<session>.sclog``: the log magic, a HEADER
record (JSON: source, clip, session, firmware) and then every packet the clip sends (HELLO,
SAMPLES, STEP, CUE, STATUS) as a CLIP record stamped with ticks_ms since the log started: the
same format the host writes, so `strideclip replay` reads it as it is. `strideclip sync` fetches
the logs later, over BLE (clipfw.logsync) or USB serial.

littlefs makes a file's new size and blocks durable only when the file is flushed or closed, so a
log never flushed is empty after a power cut: the log is flushed every FLUSH_MS (a power cut
loses at most that much; each flush costs littlefs a metadata commit and a block copy, ~50 ms
of flash time). It stops, and says so once (``full``), when the flash is full (ENOSPC) or
``max_bytes`` is reached; ``max_bytes`` leaves room for the backfill store and littlefs's own
copies, so a full log never starves them. No error here ever stops the run.
"""
import json
import os
import time

from clipcore import logrecord as L

from clipfw.views import Views

FLUSH_MS = 2000
LITTLEFS_SPARE_BYTES = 16 * 4096  # littlefs copies blocks on write: never fill the last of them
LAST_WORD_BYTES = 64  # kept back for the record that says the log stopped


class FlashLog:
    def __init__(self, log_dir, clip_id, session_id, fw_version, ticks_ms, max_bytes=2_000_000, reserve_bytes=0):
        self.dir = log_dir
        self.path = "%s/clip-%08x-%05d.sclog" % (log_dir, clip_id, session_id)
        self.ticks_ms = ticks_ms
        self.t0_ms = ticks_ms()
        self.last_flush_ms = self.t0_ms
        self.unflushed = False
        self.buf = bytearray(L.RECORD_OVERHEAD_BYTES + 256)  # one record: a full SAMPLES packet fits
        self.views = Views()
        self.full = False
        self.error = False  # the log could not even be started
        self.bytes = 0
        self.records = 0
        self.f = None
        try:
            os.mkdir(log_dir)
        except OSError:
            pass  # already there (or the flash is full: open says so below)
        try:
            st = os.statvfs(log_dir)
            self.max_bytes = min(max_bytes, st[0] * st[4] - reserve_bytes - LITTLEFS_SPARE_BYTES)
            self.f = open(self.path, "wb")
            header = json.dumps({"source": "clip", "clip_id": clip_id, "session_id": session_id,
                                 "fw_version": "%d.%d.%d" % fw_version})
            body = header.encode()
            rec = bytearray(L.RECORD_OVERHEAD_BYTES + len(body))
            if self._write(L.LOG_MAGIC, len(L.LOG_MAGIC)):
                self._write(rec, L.record_into(rec, 0, L.REC_HEADER, 0, body, len(body)))
            self.flush()
        except OSError:
            self.full = True
            self.error = True

    def prepare(self, lengths):
        """The record lengths of the packet lengths the app sends (no allocation later)."""
        self.views.prepare(self.buf, [L.RECORD_OVERHEAD_BYTES + n for n in lengths])

    def packet(self, pkt, n):
        """Log one packet the clip sent; returns False once the log has stopped (flash full)."""
        if self.full:
            return False
        t_ms = time.ticks_diff(self.ticks_ms(), self.t0_ms)
        end = L.record_into(self.buf, 0, L.REC_CLIP, t_ms, pkt, n)
        return self._write(self.buf, end)

    def last_word(self, pkt, n):
        """The log has stopped: this one record (the STATUS saying so) still goes in, and the
        log is made durable, so a host reading it later learns why it ends."""
        if self.f is None or self.error:
            return
        end = L.record_into(self.buf, 0, L.REC_CLIP, time.ticks_diff(self.ticks_ms(), self.t0_ms), pkt, n)
        try:
            self.f.write(self.views.get(self.buf, end))
            self.bytes += end
        except OSError:
            pass
        self.flush()

    def _write(self, buf, n):
        if self.bytes + n > self.max_bytes - LAST_WORD_BYTES:
            self.full = True
            return False
        try:
            self.f.write(self.views.get(buf, n))
        except OSError:  # ENOSPC: the flash is full (or failing): the log stops, the run goes on
            self.full = True
            return False
        self.bytes += n
        self.records += 1
        self.unflushed = True
        return True

    def tick(self, now_ms):
        """The main loop's pass: make what was written durable every FLUSH_MS."""
        if self.unflushed and time.ticks_diff(now_ms, self.last_flush_ms) >= FLUSH_MS:
            self.flush()
            self.last_flush_ms = now_ms

    def flush(self):
        if self.f is None:
            return
        try:
            self.f.flush()
        except OSError:
            self.full = True
        self.unflushed = False

    def close(self):
        if self.f is None:
            return
        try:
            self.f.close()
        except OSError:
            pass
        self.f = None
        self.full = True

