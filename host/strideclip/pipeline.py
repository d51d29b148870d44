"""The host pipeline behind replay, demo and live views: decoder -> steps -> metrics -> summary.

A ``Session`` consumes clip packets (from any source) with their receive times and keeps the
running picture of one clip's session. It never raises on bad input: damaged packets and gaps
are counted and reported in ``summary()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from clipcore import protocol as P
from strideclip.decode import BadPacket, ClipEvent, Gap, Restart, SampleBlock, StreamDecoder


@dataclass
class Session:
    decoder: StreamDecoder = field(default_factory=StreamDecoder)
    clip_packets: int = 0
    first_idx: int | None = None
    last_idx: int | None = None
    cues: list = field(default_factory=list)  # dicts: t_s, reason, played, source
    clip_steps: int = 0  # STEP events the clip itself reported
    restarts: list = field(default_factory=list)
    bad_packet_errors: list = field(default_factory=list)  # first few messages, for the report

    @property
    def rate_hz(self) -> int:
        return self.decoder.hello.rate_hz if self.decoder.hello else 0

    def feed(self, pkt: bytes, t_ms: int) -> list:
        """Decode one clip packet and run what it carries through the pipeline."""
        self.clip_packets += 1
        outputs = self.decoder.feed(pkt, t_ms)
        for out in outputs:
            if isinstance(out, SampleBlock):
                end = out.first_idx + len(out.counts) - 1
                self.first_idx = out.first_idx if self.first_idx is None else min(self.first_idx, out.first_idx)
                self.last_idx = end if self.last_idx is None else max(self.last_idx, end)
            elif isinstance(out, ClipEvent):
                self._clip_event(out.msg)
            elif isinstance(out, Restart):
                self.restarts.append({"t_ms": out.t_ms, "old_session": out.old_session, "new_session": out.new_session})
            elif isinstance(out, BadPacket) and len(self.bad_packet_errors) < 20:
                self.bad_packet_errors.append(f"t={out.t_ms} ms: {out.error}")
        return outputs

    def _clip_event(self, msg) -> None:
        if isinstance(msg, P.Step):
            self.clip_steps += 1
        elif isinstance(msg, P.Cue):
            self.cues.append(self.cue_dict(msg))

    def cue_dict(self, cue: P.Cue) -> dict:
        return {
            "t_s": round(cue.sample_idx / self.rate_hz, 3) if self.rate_hz else None,
            "reason": P.REASON_NAMES.get(cue.reason, str(cue.reason)),
            "played": P.CUE_KIND_NAMES.get(cue.kind, str(cue.kind)),
            "tempo_spm": cue.tempo_spm,
            "duration_s": cue.duration_s,
            "source": "clip" if cue.source == P.SOURCE_CLIP else "host",
        }

    @property
    def duration_s(self) -> float:
        if self.first_idx is None or not self.rate_hz:
            return 0.0
        return (self.last_idx - self.first_idx + 1) / self.rate_hz

    def summary(self) -> dict:
        d = self.decoder
        stats = d.stats
        return {
            "clip_packets": self.clip_packets,
            "samples": stats.samples + stats.backfilled_samples,
            "duration_s": round(self.duration_s, 3),
            "rate_hz": self.rate_hz,
            "gaps": [list(g) for g in d.open_gaps],
            "gaps_filled": [g for g in d.all_gaps if g not in d.open_gaps],
            "lost_packets": stats.lost_packets,
            "loss_pct": round(stats.loss_pct, 3),
            "duplicate_samples": stats.duplicate_samples,
            "bad_packets": stats.bad_packets,
            "bad_packet_errors": self.bad_packet_errors,
            "restarts": self.restarts,
            "cues": self.cues,
            "clip_steps": self.clip_steps,
        }
