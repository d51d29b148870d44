"""The host pipeline behind replay, demo and live views: decoder -> steps -> metrics -> summary.

A ``Session`` consumes clip packets (from any source) with their receive times and keeps the
running picture of one clip's session. It never raises on bad input: damaged packets and gaps
are counted and reported in ``summary()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clipcore import cues as cue_policy
from clipcore import protocol as P
from clipcore.steps import FLAG_RESYNC, FLAG_RUNNING
from strideclip.analysis.binned import binned_median
from strideclip.analysis.fatigue import FatigueTracker
from strideclip.analysis.metrics import STEP_METRICS_DTYPE, MetricsEngine
from strideclip.analysis.steps import EVENT_DTYPE, StepDetector
from strideclip.coaching import cueconfig
from strideclip.coaching.cue import Cue, CueLog
from strideclip.coaching.cue_outcomes import cue_outcomes
from strideclip.coaching.policy import cue_for_event, playing_metronome
from strideclip.session.inorder import InOrder
from strideclip.stream.decode import BadPacket, ClipEvent, Restart, SampleBlock, StreamDecoder

RECENT_STEPS = 8  # live views show medians over this many completed steps
HOLD_S = 60  # after a gap, samples wait this long (receive time) for its backfill before it is given up
HOLD_SAMPLES = 10 * 60 * 416  # and at most this many samples wait (memory)
# _detect unpacks a step's event by position
assert EVENT_DTYPE.names == ("ic_idx", "side", "impact_mg", "step_samples", "emit_idx", "rotation_units", "flags")





@dataclass
class Session:
    decoder: StreamDecoder = field(default_factory=StreamDecoder)
    clip_packets: int = 0
    first_idx: int | None = None  # this clip session's first and last sample indices
    last_idx: int | None = None
    earlier_s: float = 0.0  # the spans of the clip's sessions before its last restart
    cues: CueLog = field(default_factory=CueLog)  # every cue, whoever decided it, in order (coaching.cue.Cue)
    clip_steps: int = 0  # STEP events the clip itself reported
    restarts: list = field(default_factory=list)
    bad_packet_errors: list = field(default_factory=list)  # first few messages, for the report
    detector: StepDetector | None = None
    step_count: int = 0  # steps the detector found (the newest has its row once the next contact ends it)
    resyncs: int = 0
    cue_settings: dict = field(default_factory=dict)  # SET_CONFIG key -> value (strideclip.coaching.cueconfig)
    cue_config: object = None  # clipcore.cues config, made with the detector
    cue_state: object = None
    metrics: MetricsEngine | None = None
    step_rows: list = field(default_factory=list)  # the one record per step: STEP_METRICS_DTYPE, in order
    fatigue_prior: dict | None = None  # the athlete's usual form from the history (fatigue.prior_from_history)
    fatigue: FatigueTracker = None
    fatigue_changes: list = field(default_factory=list)  # dicts: t_s, state, index, evidence
    clock_idx: int | None = None  # the newest sample since the clip's last (re)start: its clock now
    clock_cues: int = 0  # the cues before that restart were timed on the clip's previous clock
    hello: P.Hello | None = None  # the HELLO the analysis reads this clip session's samples with
    unread_samples: int = 0  # samples that ended held with no HELLO to read them by
    gap_wait_s: float = HOLD_S  # 0 where no backfill can come (a source that takes no commands)
    metrics_batch_steps: int = 1  # rows as each step completes (live); more: a whole log, in batches (analyse)
    order: InOrder = None
    _table: np.ndarray | None = field(default=None, init=False, repr=False)  # step_table's last join

    def __post_init__(self) -> None:
        self.fatigue = FatigueTracker(self.fatigue_prior)
        self.order = self._in_order()

    def _in_order(self) -> InOrder:
        return InOrder(hold_ms=int(self.gap_wait_s * 1000), hold_samples=HOLD_SAMPLES)

    @property
    def rate_hz(self) -> int:
        hello = self.hello or self.decoder.hello
        return hello.rate_hz if hello else 0

    def feed(self, pkt: bytes, t_ms: int) -> list:
        """Decode one clip packet and run what it carries through the pipeline."""
        self.clip_packets += 1
        outputs = self.decoder.feed(pkt, t_ms)
        for out in outputs:
            if isinstance(out, SampleBlock):
                first, end = out.first_idx, out.first_idx + len(out.counts) - 1
                if self.first_idx is None or first < self.first_idx:
                    self.first_idx = first
                if self.last_idx is None or end > self.last_idx:
                    self.last_idx = end
                if self.clock_idx is None or end > self.clock_idx:
                    self.clock_idx = end
                self.order.add(first, out.counts, t_ms)  # live or backfilled: analysed in index order
            elif isinstance(out, ClipEvent):
                self._clip_event(out.msg)
            elif isinstance(out, Restart):
                if self.hello is not None:  # the old session's held samples, read by its own HELLO
                    self.finish(t_ms)
                self.unread_samples += self.order.held_samples
                self.earlier_s = self.duration_s  # the sessions so far: the next one's indices start again
                self.first_idx = self.last_idx = self.hello = None
                self.restarts.append({"t_ms": out.t_ms, "old_session": out.old_session, "new_session": out.new_session})
                self.detector = None  # sample indices start again: so do the detector and the metrics
                self.metrics = None
                self.fatigue = FatigueTracker(self.fatigue_prior)
                self.order = self._in_order()
                self.clock_idx, self.clock_cues = None, len(self.cues)  # and a rebooted clip plays nothing
            elif isinstance(out, BadPacket) and len(self.bad_packet_errors) < 20:
                self.bad_packet_errors.append(f"t={out.t_ms} ms: {out.error}")
        self._analyse(t_ms)
        return outputs

    def finish(self, t_ms: int = 0) -> None:
        """Nothing more will come (the log or the link has ended): analyse what is held, giving up
        the gaps no backfill filled, and close the last step's metrics row."""
        self._analyse(t_ms, end=True)
        if self.metrics is not None:
            self._rows(self.metrics.close_step())

    def _analyse(self, t_ms: int, *, end: bool = False) -> None:
        """Samples to the detector and the metrics as the order lets them through (session.inorder);
        none before the clip said how to read them (its HELLO)."""
        self.hello = self.hello or self.decoder.hello
        if self.hello is None:
            if end:  # never told how to read them
                self.unread_samples += self.order.held_samples
                self.order = self._in_order()
            return
        for first, counts, gap_end in self.order.take(t_ms, end=end):
            if counts is not None:
                self._detect(first, counts)
            elif self.detector is not None:
                self.detector.resync(gap_end)  # never step across missing samples
                self.resyncs += 1

    def count_failed_packet(self, error: Exception, t_ms: int) -> None:
        """A packet the pipeline failed on (a bug: strideclip.stream.schema passes only what it takes),
        counted and said as a bad packet so that a recording goes on (recorder.record_packet)."""
        self.decoder.stats.bad_packets += 1
        if len(self.bad_packet_errors) < 20:
            self.bad_packet_errors.append(f"t={t_ms} ms: the pipeline failed on it ({error!r})")

    def _detect(self, first_idx: int, counts: np.ndarray) -> None:
        hello = self.hello
        if self.detector is None:
            self.detector = StepDetector(sampling_rate_hz=hello.rate_hz, accel_ug_per_lsb=hello.accel_ug_per_lsb,
                                         first_idx=first_idx)
            self.cue_config = cue_policy.make_config(hello.rate_hz)
            cueconfig.apply(self.cue_config, self.cue_settings)
            self.cue_state = cue_policy.make_state()
            self.metrics = MetricsEngine(rate_hz=hello.rate_hz, accel_g_per_count=hello.accel_ug_per_lsb / 1e6,
                                         gyro_dps_per_count=hello.gyro_mdps_per_lsb_q8 / 256 / 1000,
                                         batch_steps=self.metrics_batch_steps)
        self.metrics.add_samples(first_idx, counts)
        # (EVENT_DTYPE's fields in order, as plain ints: a field of a numpy row costs ~0.5 us)
        for ic_idx, side, _, step_samples, _, rotation_units, flags in self.detector.feed_events(counts):
            self.step_count += 1
            self._rows(self.metrics.add_step(ic_idx, side, bool(flags & FLAG_RUNNING), bool(flags & FLAG_RESYNC)))
            # the same cue policy the clip runs on its own (clipcore.cues)
            reason = cue_for_event(self.cue_config, self.cue_state, ic_idx, step_samples, flags, rotation_units)
            if reason:
                self.cues.decided(Cue(t_s=round(ic_idx / self.rate_hz, 3),
                                      reason=P.REASON_NAMES.get(reason, str(reason)), played="metronome_start",
                                      source="host", tempo_spm=self.cue_state[cue_policy.TEMPO_SPM],
                                      duration_s=self.cue_state[cue_policy.CUE_S]))

    def _rows(self, rows: np.ndarray) -> None:
        """Metric rows the engine completed (one per step, in order)."""
        if not len(rows):  # (a step's add_step returns none while its batch waits)
            return
        for k in range(len(rows)):
            self.step_rows.append(rows[k:k + 1])
        self._fatigue(rows)

    def _fatigue(self, rows) -> None:
        before = self.fatigue.state
        for ic_idx, reading in zip(rows["ic_idx"].tolist(), self.fatigue.add_steps(rows)):
            if reading.state != before:
                self.fatigue_changes.append({"t_s": round(ic_idx / self.rate_hz, 1), "state": reading.state,
                                             "index": reading.index, "evidence": reading.evidence})
            before = reading.state

    def cadence_spm(self) -> float | None:
        """The cadence now: the newest completed step's smoothed cadence (the one smoothing on the
        host, analysis.metrics CADENCE_SMOOTH_STEPS), as views and the coach's metronome read it."""
        for r in reversed(self.step_rows[-RECENT_STEPS:]):
            if np.isfinite(r["cadence_smoothed_spm"][0]):
                return float(r["cadence_smoothed_spm"][0])
        return None

    @property
    def loss_pct(self) -> float:
        """Packets lost on the link, % (before backfill)."""
        return self.decoder.stats.loss_pct

    @property
    def baseline_cadence_spm(self) -> float | None:
        """The runner's usual cadence the fatigue state compares with (None until it is known)."""
        base = self.fatigue.baseline
        return float(base["cadence"]) if base and np.isfinite(base["cadence"]) else None

    def _clip_event(self, msg) -> None:
        if isinstance(msg, P.Step):
            self.clip_steps += 1
        elif isinstance(msg, P.Cue):
            self.cues.from_clip(Cue.from_clip(msg, self.rate_hz))

    @property
    def now_s(self) -> float:
        """The newest sample's time on the clip's clock, as cue times are given."""
        return round(self.clock_idx / self.rate_hz, 3) if self.rate_hz and self.clock_idx is not None else 0.0

    def metronome_now(self) -> dict | None:
        """The metronome the clip plays now, from the cues since it last started."""
        return playing_metronome(self.cues[self.clock_cues:], self.now_s)

    @property
    def duration_s(self) -> float:
        """The clip sessions' spans, summed."""
        if self.first_idx is None or not self.rate_hz:
            return self.earlier_s
        return self.earlier_s + (self.last_idx - self.first_idx + 1) / self.rate_hz

    def summary(self) -> dict:
        d = self.decoder
        stats = d.stats
        return {
            "clip_packets": self.clip_packets,
            "samples": stats.samples + stats.backfilled_samples,
            "unread_samples": self.unread_samples,
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
            "cues": [c.as_dict() for c in self.cues],
            "cue_outcomes": cue_outcomes(self.step_table(), [c.as_dict() for c in self.cues], self.rate_hz),
            "fatigue": self.fatigue_changes,
            "fatigue_baseline": ({"values": {m: round(v, 3) for m, v in self.fatigue.baseline.items()},
                                  "source": self.fatigue.baseline_source} if self.fatigue.baseline else None),
            "clip_steps": self.clip_steps,
            "steps": self.step_count,
            "detector_resyncs": self.resyncs,
            **self.metric_summary(),
        }

    def live_values(self, n_steps: int = RECENT_STEPS) -> dict:
        """What a live view shows: the cadence now, medians of the other metrics over the last few
        completed steps, link figures and the latest cues (None where nothing is known yet)."""
        rows = self.step_rows[-n_steps:]

        def recent(name: str) -> float | None:
            v = [float(r[name][0]) for r in rows if np.isfinite(r[name][0])]
            return float(np.median(v)) if v else None

        return {
            "steps": self.step_count, "cadence_spm": self.cadence_spm(),
            "impact_g": recent("peak_vertical_g"), "vgrf_bw": recent("peak_vgrf_bw"),
            "rotation_deg": recent("pelvic_rotation_deg"), "drop_deg": recent("pelvic_drop_deg"),
            "tilt_deg": recent("pelvic_tilt_deg"),
            "contact_ms": recent("contact_ms"), "loss_pct": self.loss_pct,
            "fatigue": self.fatigue.last.state, "fatigue_index": self.fatigue.last.index,
            "gaps": len(self.decoder.all_gaps), "open_gaps": len(self.decoder.open_gaps), "cues": [c.as_dict() for c in self.cues[-3:]],
        }

    def step_table(self) -> np.ndarray:
        """Every completed step's metrics (STEP_METRICS_DTYPE): an array of the caller's own."""
        if self._table is None or len(self._table) != len(self.step_rows):  # (rows are only ever added)
            # joined as bytes: np.concatenate promotes the structured dtype once per row, ~30x slower
            self._table = np.frombuffer(b"".join(r.tobytes() for r in self.step_rows), STEP_METRICS_DTYPE)
        return self._table.copy()

    def metric_summary(self) -> dict:
        """Session summaries of the per-step metrics: medians over running steps (walking steps
        for cadence when there was no running), and the body frame the clip was found in."""
        t = self.step_table()
        out: dict = {}
        running = t[t["running"] == 1]
        use = running if len(running) else t
        out["running_steps"] = int(len(running))
        for name, nd in (("cadence_spm", 1), ("peak_vertical_g", 3), ("peak_vgrf_bw", 2), ("contact_ms", 0),
                         ("vertical_oscillation_cm", 1), ("pelvic_rotation_deg", 1), ("pelvic_drop_deg", 1),
                         ("pelvic_tilt_deg", 1), ("forward_lean_deg", 1), ("balance_left_pct", 1)):
            v = use[name][np.isfinite(use[name])] if len(use) else np.zeros(0)
            if len(v):
                out[f"{name}_median"] = round(float(np.median(v)), nd)
        step_s = use["step_time_s"][np.isfinite(use["step_time_s"])] if len(use) and self.rate_hz else np.zeros(0)
        if len(step_s):  # step times come in whole samples: their grouped median, not a whole-sample jump
            out["cadence_spm_median"] = round(60.0 / binned_median(step_s, 1.0 / self.rate_hz), 1)
        v = use["cadence_spm"][np.isfinite(use["cadence_spm"])] if len(use) else np.zeros(0)
        if len(v):
            out["cadence_spm_mean"] = round(float(v.mean()), 1)
        v = use["peak_vertical_g"][np.isfinite(use["peak_vertical_g"])] if len(use) else np.zeros(0)
        if len(v):
            out["peak_vertical_g_p95"] = round(float(np.percentile(v, 95)), 3)
        sd = use["peak_vgrf_sd_bw"][np.isfinite(use["peak_vgrf_sd_bw"])] if len(use) else np.zeros(0)
        if len(sd):
            out["peak_vgrf_sd_bw"] = round(float(sd[0]), 2)
        frame = self.metrics.calibrator.frame if self.metrics else None
        out["body_frame"] = frame.as_dict() if frame else None
        return out
