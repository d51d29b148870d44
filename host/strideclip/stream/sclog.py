"""The session log (``.sclog``): append-only, crash-safe, readable as a stream and in bulk.

Layout and guarantees: docs/log-format.md. The record layout itself lives in
``clipcore.logrecord`` because the clip writes the same format to its flash.

- ``SessionLogWriter`` (stream/logwriter.py) appends them.
- ``iter_records`` reads a log as a stream (optionally following a log still being written).
- ``load_log`` reads a whole log into numpy arrays, sorted by sample index, with gaps listed.
Both readers recover everything outside a damaged region and report what they skipped.
"""
from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip.errors import FrameError, LogFormatError, RecordError, UnsupportedLogVersionError
from strideclip.stream import schema

READ_CHUNK_BYTES = 1 << 16
_T_MS = struct.Struct("<I")  # a record's t_ms (clipcore.logrecord: kind u8, t_ms u32 LE): 4x quicker than P.u32
REJECTED_LISTED = 20  # a report names this many rejected records (it counts them all)


def check_magic(head: bytes, path: str = "") -> None:
    """Raise unless ``head`` starts a StrideClip log this host can read."""
    if len(head) < L.LOG_MAGIC_BYTES or head[:5] != L.LOG_MAGIC[:5] or head[6:8] != L.LOG_MAGIC[6:8]:
        raise LogFormatError("not a StrideClip session log (bad magic)", path=path)
    if head[5] != L.LOG_VERSION:
        raise UnsupportedLogVersionError(
            f"log format version {head[5]}, this host reads version {L.LOG_VERSION}", path=path, version=head[5]
        )


@dataclass(slots=True)
class Record:
    t_ms: int
    kind: int
    body: bytes
    value: dict | None = None  # header and host records: the checked JSON object (strideclip.stream.schema)


@dataclass
class ReadReport:
    """What a reader had to skip. ``damaged`` lists (byte offset, byte count, why)."""

    frames: int = 0
    records: int = 0  # records that passed the schema (strideclip.stream.schema)
    dropped_bytes: int = 0
    bad_frames: int = 0
    bad_records: int = 0  # intact frames whose record failed the schema, skipped
    incomplete_tail_bytes: int = 0
    damaged: list[tuple[int, int, str]] = field(default_factory=list)
    # (byte offset, why) of the first records skipped and header fields dropped
    rejected: list[tuple[int, str]] = field(default_factory=list)
    bytes_read: int = 0  # how far a streaming reader got (progress bars)

    @property
    def clean(self) -> bool:
        return (self.dropped_bytes == 0 and self.bad_records == 0 and self.incomplete_tail_bytes == 0
                and not self.rejected)

    def reject(self, offset: int, why: str, *, whole_record: bool = True) -> None:
        self.bad_records += whole_record
        if len(self.rejected) < REJECTED_LISTED:
            self.rejected.append((offset, why))

    def summary(self) -> str:
        if self.clean:
            return "clean"
        parts = []
        if self.dropped_bytes:
            parts.append(f"skipped {self.dropped_bytes} damaged bytes in {len(self.damaged)} region(s)")
        if self.bad_records:
            parts.append(f"{self.bad_records} undecodable record(s)")
        if self.rejected:
            parts.append(f"{self.rejected[0][1]} (record at byte {self.rejected[0][0]})")
        if self.incomplete_tail_bytes:
            parts.append(f"incomplete last record ({self.incomplete_tail_bytes} bytes; log cut short or still being written)")
        return "; ".join(parts)


class _Scanner:
    """Finds intact frames in successive buffers of one file, counting what it skips."""

    def __init__(self, report: ReadReport):
        self.report = report
        self.damaged_from = -1  # file offset where the current damaged region began

    def frames(self, data, pos: int, end: int, base: int, *, eof: bool) -> Iterator[tuple[int, int]]:
        """Yield (frame start, payload length) of every intact frame in data[pos:end].

        ``base`` is the file offset of data[0]. Without ``eof`` it stops before an incomplete
        frame; ``self.resume`` is then where to continue once more bytes are appended.
        """
        report = self.report
        find_frame, max_packet, overhead, ok = P.find_frame, P.MAX_PACKET_BYTES, P.FRAME_OVERHEAD_BYTES, P.FRAME_OK
        while True:
            outcome, at, n = find_frame(data, pos, end, max_packet)
            if at > pos:
                if self.damaged_from < 0:
                    self.damaged_from = base + pos
                report.dropped_bytes += at - pos
            pos = at
            if outcome == ok:
                if self.damaged_from >= 0:
                    report.damaged.append((self.damaged_from, base + at - self.damaged_from, "bad or partial frames"))
                    self.damaged_from = -1
                report.frames += 1
                yield at, n
                pos = at + overhead + n
            elif outcome == P.FRAME_NO_SYNC or (outcome == P.FRAME_NEED_MORE and not eof):
                if eof and end > pos:  # a lone byte or two at the end: half of a sync marker
                    if self.damaged_from < 0:
                        self.damaged_from = base + pos
                    report.dropped_bytes += end - pos
                    pos = end
                break
            else:  # bad CRC, bad length, or a frame that can never be completed
                if self.damaged_from < 0:
                    self.damaged_from = base + pos
                report.bad_frames += 1
                report.dropped_bytes += 1
                pos = at + 1
        self.resume = pos
        if eof and self.damaged_from >= 0:
            tail = base + end - self.damaged_from
            report.damaged.append((self.damaged_from, tail, "damaged or incomplete up to the end"))
            report.incomplete_tail_bytes = tail
            report.dropped_bytes -= tail  # counted once, as the tail


def iter_records(path: str | os.PathLike, *, report: ReadReport | None = None, follow_s: float = 0.0) -> Iterator[Record]:
    """Stream the records of a log in file order.

    With ``follow_s`` > 0, keep waiting for new records (a log still being written) until none
    arrive for that many seconds. ``report`` (optional) collects what was skipped.
    """
    report = report if report is not None else ReadReport()
    path = str(path)
    with open(path, "rb") as f:
        check_magic(f.read(L.LOG_MAGIC_BYTES), path)
        scanner = _Scanner(report)
        buf = b""  # bytes, not a bytearray: a record's body is then one copy, not two
        base = L.LOG_MAGIC_BYTES  # file offset of buf[0]
        idle_since = time.monotonic()
        while True:
            chunk = f.read(READ_CHUNK_BYTES)
            if chunk:
                report.bytes_read = base + len(buf) + len(chunk)
                idle_since = time.monotonic()
                buf = buf + chunk if buf else chunk
                for at, n in scanner.frames(buf, 0, len(buf), base, eof=False):
                    rec = _checked_record(buf, at, n, base + at, report)
                    if rec is not None:
                        yield rec
                buf = buf[scanner.resume:]
                base += scanner.resume
                continue
            if follow_s > 0 and time.monotonic() - idle_since < follow_s:
                time.sleep(0.05)
                continue
            for at, n in scanner.frames(buf, 0, len(buf), base, eof=True):
                rec = _checked_record(buf, at, n, base + at, report)
                if rec is not None:
                    yield rec
            return


def load_header(path: str | os.PathLike) -> dict:
    """The log's header record, checked ({} when its first record is not a valid header)."""
    for rec in iter_records(path):
        return rec.value if rec.kind == L.REC_HEADER else {}
    return {}


def _checked_record(buf, at: int, n: int, offset: int, report: ReadReport) -> Record | None:
    """The record in the intact frame at buf[at] (file offset ``offset``), if it passes the
    schema (strideclip.stream.schema); one that fails is counted in ``report`` and skipped (None)."""
    if n < L.RECORD_PREFIX_BYTES:
        report.reject(offset, f"a {n}-byte frame is too short for a record")
        return None
    kind, body = buf[at + 4], bytes(buf[at + 4 + L.RECORD_PREFIX_BYTES : at + 4 + n])
    try:
        value, dropped = schema.record(kind, body, first=report.records == 0)
    except RecordError as e:
        report.reject(offset, str(e))
        return None
    for why in dropped:
        report.reject(offset, why, whole_record=False)
    report.records += 1
    return Record(_T_MS.unpack_from(buf, at + 5)[0], kind, body, value)


@dataclass
class SessionLog:
    """A whole log in memory: its first clip session, with any later ones (the clip restarted)
    kept apart in ``later_sessions``. Samples are sorted by clip sample index, duplicates removed."""

    path: str
    header: dict
    hello: P.Hello | None  # the session's first intact HELLO (a damaged copy costs nothing if another is there)
    sample_idx: np.ndarray  # int64, sorted, unique
    counts: np.ndarray  # (n, 6) int16 raw counts: accel x, y, z, gyro x, y, z
    packets: np.ndarray  # structured: t_ms, ptype, seq, first_idx, count (file order)
    events: list  # (t_ms, decoded clip message) for HELLO, STEP, CUE, STATUS, RESULT
    host_events: list  # (t_ms, dict)
    sent: list  # (t_ms, packet bytes)
    gaps: list  # [start, end) sample index ranges missing between the first and last sample
    report: ReadReport
    bad_packets: list  # (t_ms, error message) for clip packets that did not decode
    later_sessions: list = field(default_factory=list)  # SessionLog per later clip session, in order
    conflicting_samples: int = 0  # duplicates whose values differ (should never happen)

    @property
    def sessions(self) -> list[SessionLog]:
        """Every clip session in the file, in order (usually one)."""
        return [self, *self.later_sessions]

    @property
    def rate_hz(self) -> int:
        return self.hello.rate_hz if self.hello else int(self.header.get("rate_hz", 0))

    @property
    def duration_s(self) -> float:
        if len(self.sample_idx) == 0 or not self.rate_hz:
            return 0.0
        return float(self.sample_idx[-1] - self.sample_idx[0] + 1) / self.rate_hz

    def accel_g(self) -> np.ndarray:
        """Accelerations in g, sensor frame, float64 (n, 3)."""
        return self.counts[:, :3] * (self._hello().accel_ug_per_lsb / 1e6)

    def gyro_dps(self) -> np.ndarray:
        """Angular rates in degrees/s, sensor frame, float64 (n, 3)."""
        return self.counts[:, 3:] * (self._hello().gyro_mdps_per_lsb_q8 / 256 / 1000)

    def _hello(self) -> P.Hello:
        if self.hello is None:
            raise LogFormatError("no intact HELLO: the clip's scales are unknown", path=self.path)
        return self.hello


PACKET_DTYPE = np.dtype([("t_ms", "<i8"), ("ptype", "u1"), ("seq", "<u2"), ("first_idx", "<i8"), ("count", "<u2")])


class _Part:
    """One clip session's records while a log is read."""

    def __init__(self):
        self.hello = None
        self.events: list = []
        self.pk: tuple[list, ...] = ([], [], [], [], [], [])  # t_ms, ptype, seq, first_idx, count, offset

    def log(self, data: bytes, path: str, header: dict, host_events, sent, report, bad_packets) -> SessionLog:
        pk_t, pk_type, pk_seq, pk_first, pk_count, pk_off = self.pk
        packets = np.empty(len(pk_t), dtype=PACKET_DTYPE)
        packets["t_ms"], packets["ptype"], packets["seq"] = pk_t, pk_type, pk_seq
        packets["first_idx"], packets["count"] = pk_first, pk_count
        sample_idx, counts, conflicts = _gather_samples(data, np.asarray(pk_off, np.int64), packets)
        return SessionLog(path=path, header=header, hello=self.hello, sample_idx=sample_idx, counts=counts,
                          packets=packets, events=self.events, host_events=host_events, sent=sent,
                          gaps=find_gaps(sample_idx), report=report, bad_packets=bad_packets,
                          conflicting_samples=conflicts)


def load_log(path: str | os.PathLike) -> SessionLog:
    """Read a whole log fast (an hour at 208 Hz loads in a fraction of a second; bench/). A HELLO
    of another session starts a new clip session (its sample indices start again): kept apart."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    check_magic(data[: L.LOG_MAGIC_BYTES], path)
    report = ReadReport()
    header: dict = {}
    host_events, sent, bad_packets = [], [], []
    parts = [_Part()]
    sample_types = (P.header_byte(P.T_SAMPLES), P.header_byte(P.T_BACKFILL))
    for at, n in _Scanner(report).frames(data, L.LOG_MAGIC_BYTES, len(data), 0, eof=True):
        if n < L.RECORD_PREFIX_BYTES or data[at + 4] != L.REC_CLIP:  # the few others: checked as iter_records does
            rec = _checked_record(data, at, n, at, report)
            if rec is None:
                continue
            if rec.kind == L.REC_HEADER:
                header = rec.value
            elif rec.kind == L.REC_HOST:
                host_events.append((rec.t_ms, rec.value))
            else:
                sent.append((rec.t_ms, rec.body))
            continue
        report.records += 1
        t_ms = P.u32(data, at + 5)
        body_at = at + 4 + L.RECORD_PREFIX_BYTES
        body = memoryview(data)[body_at:at + 4 + n]
        try:
            msg = schema.clip_packet(body)
        except FrameError as e:
            bad_packets.append((t_ms, str(e)))
            continue
        part = parts[-1]
        if body[0] in sample_types:
            pk_first = part.pk[3]
            span = schema.session_span_samples(part.hello.rate_hz if part.hello else 0)
            if pk_first and abs(msg.first_idx - pk_first[0]) > span:
                bad_packets.append((t_ms, f"samples from {msg.first_idx}: too far from the session's first, "
                                          f"{pk_first[0]}, for one clip session"))
                continue
            for column, value in zip(part.pk, (t_ms, msg.ptype, msg.seq, msg.first_idx, msg.count,
                                               body_at + P.SAMPLES_HEADER_BYTES)):
                column.append(value)
            continue
        if isinstance(msg, P.Hello):
            if part.hello is not None and msg.session_id != part.hello.session_id:
                part = _Part()
                parts.append(part)
            part.hello = part.hello or msg
        part.events.append((t_ms, msg))
    logs = [p.log(data, path, header, host_events, sent, report, bad_packets) for p in parts]
    logs[0].later_sessions = logs[1:]
    return logs[0]


def _gather_samples(data: bytes, offsets: np.ndarray, packets: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectorised: every packet's samples into one array sorted by sample index, deduplicated."""
    count = packets["count"].astype(np.int64)
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros((0, 6), np.int16), 0
    starts = np.repeat(np.cumsum(count) - count, count)
    within = np.arange(total, dtype=np.int64) - starts
    byte_at = np.repeat(offsets, count) + P.SAMPLE_BYTES * within
    raw = np.frombuffer(data, dtype=np.uint8)
    rows = raw[byte_at[:, None] + np.arange(P.SAMPLE_BYTES)]
    counts = rows.view("<i2").reshape(total, 6).astype(np.int16)
    idx = np.repeat(packets["first_idx"], count) + within
    order = np.argsort(idx, kind="stable")  # live before backfill when both hold a sample
    idx, counts = idx[order], counts[order]
    keep = np.ones(total, dtype=bool)
    keep[1:] = idx[1:] != idx[:-1]
    dup_pos = np.flatnonzero(~keep)
    conflicts = int(np.any(counts[dup_pos] != counts[dup_pos - 1], axis=1).sum()) if len(dup_pos) else 0
    return idx[keep], counts[keep], conflicts


def find_gaps(sample_idx: np.ndarray) -> list[list[int]]:
    """Half-open [start, end) ranges of sample indices missing inside a sorted unique index array."""
    if len(sample_idx) < 2:
        return []
    jumps = np.flatnonzero(np.diff(sample_idx) > 1)
    return [[int(sample_idx[j] + 1), int(sample_idx[j + 1])] for j in jumps]
