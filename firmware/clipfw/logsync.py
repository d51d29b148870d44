"""The session logs on the clip's flash, served to a host over the link it is on (BLE or USB).

LOG_LIST counts them, LOG_READ sends a part of one as LOG_DATA packets, LOG_DELETE removes one
the host has stored (docs/protocol.md, "Session logs"). Logs are numbered in name order (clip
id, then session), so a number holds while no log is added or removed; a delete names the size
the host fetched, so a changed list cannot remove the wrong log. The log this boot is writing
can be read (what is on the flash so far) but not deleted.

A transfer goes out a few packets per pass of the main loop, so sampling never waits for it; a
packet the link cannot take now (BLE buffers full) is sent again on the next pass. Loaded on the
first log command only: a clip that is never synced keeps the RAM. Runs under CPython too (the
test clip on the simulated radio serves its logs with this very code).
"""
import os

from clipcore import wire as P

PACKETS_PER_POLL = 16  # at the loop's 10 passes a second: ~36 kB/s, a 1-hour run in ~5 min


class LogServer:
    def __init__(self, log_dir, flashlog=None):
        self.dir = log_dir
        self.flashlog = flashlog  # the log being written this boot, or None
        self.buf = bytearray(P.LOG_DATA_HEADER_BYTES + P.LOG_CHUNK_BYTES)  # one LOG_DATA packet
        self.chunk = memoryview(self.buf)[P.LOG_DATA_HEADER_BYTES:]
        self.f = None  # the log being sent
        self.log_no = 0
        self.pos = 0
        self.end = 0

    def _names(self):
        try:
            names = [n for n in os.listdir(self.dir) if n.endswith(".sclog")]
        except OSError:  # no log directory: no logs
            return []
        names.sort()
        return names

    def command(self, op, args):
        """(result code, detail) of LOG_LIST (detail: how many logs), LOG_READ and LOG_DELETE
        (detail: the log's size in bytes)."""
        names = self._names()
        if op == P.OP_LOG_LIST:
            return P.RESULT_OK, len(names)
        if args[0] >= len(names):
            return P.RESULT_OUT_OF_RANGE, len(names)
        path = self.dir + "/" + names[args[0]]
        current = self.flashlog is not None and path == self.flashlog.path
        if current:
            self.flashlog.flush()  # what was written so far is on the flash, readable
        size = os.stat(path)[6]
        if op == P.OP_LOG_READ:
            log_no, offset, count = args
            if offset > size:
                return P.RESULT_OUT_OF_RANGE, size
            self.stop()  # a new request replaces the one in hand
            if count and offset < size:
                self.f = open(path, "rb")
                self.log_no = log_no
                self.pos = offset
                self.end = size if count > size - offset else offset + count
            return P.RESULT_OK, size
        if current:
            return P.RESULT_BUSY, size
        if args[1] != size:
            return P.RESULT_UNAVAILABLE, size
        self.stop()
        os.remove(path)
        return P.RESULT_OK, size

    def pump(self, link):
        """Send the next packets of the transfer in hand; stop at the first the link refuses."""
        if self.f is None:
            return
        if not link.host_connected():  # the host left: it asks again for what it lacks
            self.stop()
            return
        chunk = min(P.LOG_CHUNK_BYTES, link.max_payload() - P.LOG_DATA_HEADER_BYTES)  # pieces fit the MTU
        if chunk <= 0:
            return
        for _ in range(PACKETS_PER_POLL):
            n = self.end - self.pos
            if n > chunk:
                n = chunk
            P.pack_log_data_header(self.buf, self.log_no, self.pos)
            self.f.seek(self.pos)
            got = self.f.readinto(self.chunk if n == P.LOG_CHUNK_BYTES else self.chunk[:n])
            if not got:  # the file shrank under us: nothing more to send
                self.stop()
                return
            if not link.send(self.buf, P.LOG_DATA_HEADER_BYTES + got):
                return  # the same packet again on the next pass
            self.pos += got
            if self.pos >= self.end:
                self.stop()
                return

    def stop(self):
        if self.f is not None:
            self.f.close()
            self.f = None
