"""The run logged to the clip's flash when no host is listening (docs/log-format.md).

One session log per boot, ``<log_dir>/clip-<clip_id>-<session>.sclog``: the log magic, a HEADER
record (JSON: source, clip, session, firmware) and then every packet the clip sends (HELLO,
SAMPLES, STEP, CUE, STATUS) as a CLIP record stamped with ticks_ms since the log started: the
same format the host writes, so `strideclip replay` reads it as it is. `strideclip sync` fetches
the logs later, over BLE (clipfw.logsync) or USB serial.

Writes go through a buffer made once; a full flash (OSError, or ``max_bytes`` reached) stops the
log and says so once (``full``), and never stops the run.
"""
import json
import os

from clipcore import logrecord as L
from clipcore import wire as P

from clipfw.views import Views


class FlashLog:
    def __init__(self, log_dir, clip_id, session_id, fw_version, ticks_ms, max_bytes=2_000_000):
        try:
            os.mkdir(log_dir)
        except OSError:
            pass  # already there
        self.dir = log_dir
        self.path = "%s/clip-%08x-%05d.sclog" % (log_dir, clip_id, session_id)
        self.ticks_ms = ticks_ms
        self.t0_ms = ticks_ms()
        self.max_bytes = max_bytes
        self.buf = bytearray(L.RECORD_OVERHEAD_BYTES + 256)  # one record: a full SAMPLES packet fits
        self.views = Views()
        self.full = False
        self.bytes = 0
        self.records = 0
        self.f = open(self.path, "wb")
        header = json.dumps({"source": "clip", "clip_id": clip_id, "session_id": session_id,
                             "fw_version": "%d.%d.%d" % fw_version})
        self._write(L.LOG_MAGIC, len(L.LOG_MAGIC))
        body = header.encode()
        rec = bytearray(L.RECORD_OVERHEAD_BYTES + len(body))
        self._write(rec, L.record_into(rec, 0, L.REC_HEADER, 0, body, len(body)))

    def prepare(self, lengths):
        """The record lengths of the packet lengths the app sends (no allocation later)."""
        self.views.prepare(self.buf, [L.RECORD_OVERHEAD_BYTES + n for n in lengths])

    def packet(self, pkt, n):
        """Log one packet the clip sent; returns False once the log has stopped (flash full)."""
        if self.full:
            return False
        t_ms = self.ticks_ms() - self.t0_ms
        end = L.record_into(self.buf, 0, L.REC_CLIP, t_ms, pkt, n)
        return self._write(self.buf, end)

    def _write(self, buf, n):
        if self.bytes + n > self.max_bytes:
            self.full = True
            return False
        try:
            self.f.write(self.views.get(buf, n))
        except OSError:  # ENOSPC: the flash is full
            self.full = True
            return False
        self.bytes += n
        self.records += 1
        return True

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


FRAME_LENGTHS = (P.HELLO_BYTES, P.STEP_BYTES, P.CUE_BYTES, P.STATUS_BYTES, P.RESULT_BYTES)
