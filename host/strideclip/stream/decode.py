"""The one decoder every host source feeds: BLE, serial, log replay and the simulator.

``StreamDecoder.feed(packet, t_ms)`` returns what the packet means for the session, in order:

- ``SampleBlock`` - new samples, contiguous with the previous block, ready for the detector;
- ``Gap`` - samples the stream skipped (lost packets); never interpolated, reported;
- ``SampleBlock(backfill=True)`` - samples that arrived late and fill (part of) a reported gap;
- ``ClipEvent`` - a HELLO, STEP, CUE, STATUS or RESULT from the clip;
- ``Restart`` - the clip started a new session (sample indices start again);
- ``BadPacket`` - a packet that did not decode; counted, the session goes on.

Sample indices (the clip's counter) are the time base; ``t_ms`` is only the receive time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clipcore import protocol as P
from strideclip.errors import FrameError, FrameValueError
from strideclip.stream import schema
from strideclip.stream.packets import samples_array


@dataclass
class SampleBlock:
    first_idx: int
    counts: np.ndarray  # (n, 6) int16
    t_ms: int
    backfill: bool = False
    seq: int = -1  # the live packet's sequence number (-1: backfill)


@dataclass
class Gap:
    start_idx: int  # first missing sample
    end_idx: int  # one past the last missing sample
    t_ms: int
    lost_packets: int


@dataclass
class ClipEvent:
    msg: object
    t_ms: int


@dataclass
class Restart:
    old_session: int
    new_session: int
    t_ms: int


@dataclass
class BadPacket:
    error: FrameError
    t_ms: int


@dataclass
class LinkStats:
    packets: int = 0  # sample packets received
    samples: int = 0  # live samples delivered in order
    lost_packets: int = 0  # by sequence number
    lost_samples: int = 0  # by sample index, before any backfill
    backfilled_samples: int = 0
    duplicate_samples: int = 0
    bad_packets: int = 0

    @property
    def loss_pct(self) -> float:
        expected = self.packets + self.lost_packets
        return 100.0 * self.lost_packets / expected if expected else 0.0


@dataclass
class StreamDecoder:
    hello: P.Hello | None = None
    first_idx: int | None = None  # the session's first live sample index
    next_idx: int | None = None  # sample index the next live sample should have
    last_seq: int | None = None
    stats: LinkStats = field(default_factory=LinkStats)
    open_gaps: list = field(default_factory=list)  # [start, end) ranges not yet backfilled
    all_gaps: list = field(default_factory=list)  # every gap ever seen, [start, end)

    def feed(self, pkt: bytes, t_ms: int = 0) -> list:
        try:
            msg = schema.clip_packet(pkt)  # the packet on its own, then in the stream
            self._check_sequence(msg)
        except FrameError as e:
            self.stats.bad_packets += 1
            return [BadPacket(e, t_ms)]
        if isinstance(msg, P.Samples):
            if msg.ptype == P.T_BACKFILL:
                return self._backfill(msg, t_ms)
            return self._live(msg, t_ms)
        out = []
        if isinstance(msg, P.Hello):
            if self.hello is not None and msg.session_id != self.hello.session_id:
                out.append(Restart(self.hello.session_id, msg.session_id, t_ms))
                self.first_idx = self.next_idx = self.last_seq = None
                self.open_gaps = []
            self.hello = msg
        out.append(ClipEvent(msg, t_ms))
        return out

    def _check_sequence(self, msg) -> None:
        """Raise FrameValueError for a packet this session cannot have sent: live samples farther
        from its first than one clip session spans (the step detector counts in int32), or a
        HELLO of the same session that changes the rate, the scales or the clip."""
        if isinstance(msg, P.Samples):
            if msg.ptype == P.T_SAMPLES and self.first_idx is not None and \
                    abs(msg.first_idx + msg.count - self.first_idx) > \
                    schema.session_span_samples(self.hello.rate_hz if self.hello else 0):
                raise FrameValueError(f"samples from {msg.first_idx}: too far from the session's first, "
                                      f"{self.first_idx}, for one clip session", offset=3)
        elif isinstance(msg, P.Hello) and self.hello is not None and msg.session_id == self.hello.session_id:
            fixed = ("rate_hz", "accel_ug_per_lsb", "gyro_mdps_per_lsb_q8", "clip_id")
            changed = [f for f in fixed if getattr(msg, f) != getattr(self.hello, f)]
            if changed:
                raise FrameValueError(f"hello of session {msg.session_id} changes {', '.join(changed)}", offset=5)

    def _live(self, msg: P.Samples, t_ms: int) -> list:
        out = []
        self.stats.packets += 1
        lost = 0
        if self.last_seq is not None:
            delta = P.seq_delta(self.last_seq, msg.seq)
            lost = delta - 1 if delta > 1 else 0  # 0 is a repeated packet, not a loss
            self.stats.lost_packets += lost
        self.last_seq = msg.seq
        counts = samples_array(msg)
        first = msg.first_idx
        if self.next_idx is None:
            self.first_idx = self.next_idx = first
        if first > self.next_idx:
            gap = Gap(self.next_idx, first, t_ms, lost_packets=lost)
            self.stats.lost_samples += first - self.next_idx
            self.open_gaps.append([gap.start_idx, gap.end_idx])
            self.all_gaps.append([gap.start_idx, gap.end_idx])
            out.append(gap)
        elif first < self.next_idx:  # overlap with what we already have: keep only the new part
            skip = min(self.next_idx - first, len(counts))
            self.stats.duplicate_samples += skip
            counts, first = counts[skip:], first + skip
            if len(counts) == 0:
                return out
        out.append(SampleBlock(first, counts, t_ms, seq=msg.seq))
        self.stats.samples += len(counts)
        self.next_idx = first + len(counts)
        return out

    def _backfill(self, msg: P.Samples, t_ms: int) -> list:
        """Deliver only the samples that fall inside open gaps; shrink or split those gaps."""
        out = []
        counts = samples_array(msg)
        a, b = msg.first_idx, msg.first_idx + msg.count
        remaining = []
        for g0, g1 in self.open_gaps:
            lo, hi = max(a, g0), min(b, g1)
            if lo >= hi:
                remaining.append([g0, g1])
                continue
            out.append(SampleBlock(lo, counts[lo - a : hi - a], t_ms, backfill=True))
            self.stats.backfilled_samples += hi - lo
            if g0 < lo:
                remaining.append([g0, lo])
            if hi < g1:
                remaining.append([hi, g1])
        covered = sum(len(o.counts) for o in out)
        self.stats.duplicate_samples += msg.count - covered
        self.open_gaps = remaining
        return out
