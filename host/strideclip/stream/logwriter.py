"""Writing a session log (``.sclog``): append-only, crash-safe (docs/log-format.md).

``SessionLogWriter`` appends one framed record per write and flushes it to the OS at once, so a
killed process loses at most the record being written; it fsyncs about once a second. The
readers are in ``stream/sclog.py``; the record layout in ``clipcore.logrecord``, because the clip
writes the same format to its flash.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any

from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip import __version__


class SessionLogWriter:
    """Appends records to a new session log. Use as a context manager.

    ``t_ms`` arguments are milliseconds since the log started; when omitted the writer's own
    monotonic clock supplies them (live sessions). The simulator passes simulated times.
    """

    def __init__(self, path: str | os.PathLike, *, header: dict, fsync_interval_s: float = 1.0):
        self.path = Path(path)
        self._t0 = time.monotonic()
        self._fsync_interval_s = fsync_interval_s
        self._last_fsync = self._t0
        self._file = open(self.path, "xb")  # never overwrite a recording
        full_header = {
            "format": "strideclip-session",
            "software": f"strideclip {__version__}",
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
        }
        full_header.update(header)
        self._file.write(L.LOG_MAGIC)
        self._write(L.REC_HEADER, 0, json.dumps(full_header, sort_keys=True).encode())
        self._sync()

    @property
    def t0_monotonic_s(self) -> float:
        """time.monotonic() when the log started: its t_ms count from here."""
        return self._t0

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def _write(self, kind: int, t_ms: int | None, body: bytes) -> None:
        if len(body) + L.RECORD_PREFIX_BYTES > P.MAX_PACKET_BYTES:
            raise ValueError(f"record of {len(body)} bytes is over the {P.MAX_PACKET_BYTES}-byte frame limit")
        self._file.write(L.record(kind, self.now_ms() if t_ms is None else t_ms, body))
        self._file.flush()  # in the OS page cache now: survives the process being killed
        if time.monotonic() - self._last_fsync >= self._fsync_interval_s:
            self._sync()

    def _sync(self) -> None:
        os.fsync(self._file.fileno())
        self._last_fsync = time.monotonic()

    def clip_packet(self, pkt: bytes, t_ms: int | None = None) -> None:
        """A packet exactly as received from the clip."""
        self._write(L.REC_CLIP, t_ms, bytes(pkt))

    def sent_packet(self, pkt: bytes, t_ms: int | None = None) -> None:
        """A packet the host wrote to the clip."""
        self._write(L.REC_TX, t_ms, bytes(pkt))

    def host_event(self, event: str, t_ms: int | None = None, **fields: Any) -> None:
        """A host event (cue sent, reconnect, gap, backfill ...) with JSON-able fields."""
        self._write(L.REC_HOST, t_ms, json.dumps({"event": event, **fields}, sort_keys=True).encode())

    def close(self) -> None:
        if not self._file.closed:
            self._sync()
            self._file.close()

    def __enter__(self) -> SessionLogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
