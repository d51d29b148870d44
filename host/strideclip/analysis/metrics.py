"""Per-step running metrics from the clip's raw samples and the detector's steps (docs/metrics.md).

One ``MetricsEngine`` serves live streams and whole logs: samples go in as they arrive
(``add_samples``), steps as the detector confirms them (``add_step``). When step k+1's contact
is known, step k is complete and its row is returned: the step's own values (time, vertical
impact, contact, oscillation, tilt) and those of the stride that ends with it (rotation, drop,
lean). Memory is a ring of ``buffer_s`` seconds of samples; a whole log is the same calls with
one big block (``metrics_for_counts``).

A completed step is queued with a copy of its samples; the queue is worked through in batches
(``batch_steps``: 1 live, ``WHOLE_LOG_BATCH_STEPS`` for a whole log): the windows' numbers for
all steps at once (``strideclip.analysis.stepwindows``, ``lowpass``), the body frame through them
in order in plain floats. A batch of one and a batch of hundreds give the same rows.

The body frame (up, forward) is learnt on the way (``strideclip.analysis.bodyframe``); until it is known
the values that need it are NaN. Values that the data cannot support for a step are NaN too: the
vGRF estimate and contact time need a flight phase (running), the pelvic angles need a gyro,
nothing is computed across missing samples.
"""
from __future__ import annotations

import math
import os

import numpy as np

from clipcore.steps import FLAG_RESYNC, FLAG_RUNNING
from strideclip.analysis import stepwindows as W
from strideclip.analysis.bodyframe import BRAKE_MS, MIN_FORWARD_AGREEMENT, FrameCalibrator, body_rows, forward_lean_deg
from strideclip.analysis.lowpass import ZeroPhaseLowPass
from strideclip.analysis.samplering import SampleRing

WHOLE_LOG_BATCH_STEPS = 256  # a whole log's steps are measured this many at a time (~10 kB each)
MEASURE_CHUNK_STEPS = 64  # steps measured together: arrays that stay in the cache
BALANCE_STRIDES = 8  # left/right balance over this many strides
CADENCE_SMOOTH_STEPS = 8  # the smoothed cadence: steps per minute over the last this many
MAX_STEP_S = 1.25  # a longer "step" is a pause: no step metrics
LOADING_LP_HZ = 8.0  # the body's loading: vertical acceleration below this frequency
CONTACT_LP_HZ = 12.0
CONTACT_END_G = 0.45  # stance ends when the low-passed vertical acceleration falls below this
# Peak vGRF (BW) = A0 + A1 * peak of the loading signal (g) + A2 * raw peak vertical (g).
# Least squares on every Alcantara et al. (2022) step (metrics_eval.fit_vgrf; printed as
# "model_refit_all" by `strideclip evaluate-metrics alcantara`). The uncertainty reported with
# each estimate is the leave-condition-out RMSE (docs/metrics.md); a test keeps both current.
VGRF_COEF = (0.1806, 0.7795, 0.0743)
VGRF_RMSE_BW = 0.165

STEP_METRICS_DTYPE = np.dtype([
    ("ic_idx", "i8"),  # sample index of this step's initial contact
    ("t_s", "f8"),  # the same, seconds from the session's first sample
    ("side", "i1"),  # 0 left, 1 right, -1 unknown
    ("running", "u1"),  # 1: the step had a flight phase
    ("step_time_s", "f8"),  # to the next contact
    ("cadence_spm", "f8"),  # 60 / step_time_s
    ("cadence_smoothed_spm", "f8"),  # the last CADENCE_SMOOTH_STEPS steps over the time they took
    ("balance_left_pct", "f8"),  # left steps' share of stride time, last BALANCE_STRIDES strides
    ("peak_vertical_g", "f8"),  # peak vertical specific force at the sacrum (1 = standing)
    ("peak_loading_g", "f8"),  # peak of the vertical acceleration below LOADING_LP_HZ (running)
    ("peak_vgrf_bw", "f8"),  # estimated peak vertical ground reaction force, body weights
    ("peak_vgrf_sd_bw", "f8"),  # its uncertainty (1 SD, from cross-validation)
    ("contact_ms", "f8"),  # ground contact time
    ("vertical_oscillation_cm", "f8"),  # rise and fall of the sacrum over the step
    ("pelvic_rotation_deg", "f8"),  # transverse-plane range of the stride ending with this step
    ("pelvic_drop_deg", "f8"),  # frontal-plane range, same stride
    ("pelvic_tilt_deg", "f8"),  # sagittal-plane range over this step
    ("forward_lean_deg", "f8"),  # mean pelvic pitch over the stride minus standing (+ forward)
])


_NAN_ROW = np.zeros(1, STEP_METRICS_DTYPE)
for _name in STEP_METRICS_DTYPE.names:
    if STEP_METRICS_DTYPE[_name].kind == "f":
        _NAN_ROW[_name] = math.nan
# the columns known when a step completes, before any of its samples are looked at
_HEAD = ("ic_idx", "t_s", "side", "running", "step_time_s", "cadence_spm", "cadence_smoothed_spm", "balance_left_pct")
_NO_ROWS = np.zeros(0, STEP_METRICS_DTYPE)
_NO_ROWS.flags.writeable = False
_UNKNOWN = (math.nan,) * 12  # a step's body frame before it is known (up, forward, left, up)


class _Step:
    """A step's row to be: ``head`` (the _HEAD columns) and, when all its samples were there, a
    copy of them (accel g, gyro dps) with where its windows lie in it: ``win`` (start, length,
    samples in the step: from the contact - margin to the next contact + margin, as far as it had
    arrived), ``stride`` (start, length: the previous contact to the next, or None)."""

    __slots__ = ("head", "data", "win", "stride")

    def __init__(self, head: tuple, data: np.ndarray | None = None, win: tuple = (0, 0, 0),
                 stride: tuple | None = None):
        self.head, self.data, self.win, self.stride = head, data, win, stride


class MetricsEngine:
    """Streaming per-step metrics. Indices are the clip's sample indices.

    ``batch_steps`` > 1 lets steps' rows wait until that many are due, then computes them together
    (a whole log: ``WHOLE_LOG_BATCH_STEPS``); the rows are the same, only later (docs/metrics.md)."""

    def __init__(self, *, rate_hz: int, accel_g_per_count: float, gyro_dps_per_count: float, has_gyro: bool = True,
                 buffer_s: float = 8.0, batch_steps: int = 1):
        self.rate_hz = rate_hz
        self.accel_g_per_count = accel_g_per_count
        self.gyro_dps_per_count = gyro_dps_per_count
        self.has_gyro = has_gyro
        self.batch_steps = max(1, int(batch_steps))
        self.capacity = int(buffer_s * rate_hz)
        self._samples = SampleRing(self.capacity, np.array([accel_g_per_count] * 3 + [gyro_dps_per_count] * 3))
        self._ring = self._samples.values  # its memory: accel (g) and gyro (dps), scaled as stored
        self.calibrator = FrameCalibrator(rate_hz)
        self._steps: list[tuple[int, int, bool]] = []  # (ic_idx, side, running): the last three
        self._step_times: list[tuple[float, int]] = []  # (step_time_s, side) for cadence and balance
        self._last_still_check: int | None = None  # end of the last window checked for stillness
        self._still_hop = max(1, rate_hz // 2)
        self._last_step_idx = -(10 ** 12)
        self._margin = int(0.1 * rate_hz)  # zero-phase filtering needs a little context on both sides
        self._brake_n = max(1, int(BRAKE_MS / 1000 * rate_hz))
        self._lowpass = ZeroPhaseLowPass((LOADING_LP_HZ, min(CONTACT_LP_HZ, 0.4 * rate_hz)), rate_hz,
                                         int(MAX_STEP_S * rate_hz) + 2 * self._margin + 2)
        self._queue: list = []  # work in arrival order: still spells (arrays) and steps (_Step)
        self._ready: list[np.ndarray] = []  # rows computed, not yet returned

    # -- input ------------------------------------------------------------------------------
    @property
    def last_idx(self) -> int | None:
        return self._samples.last_idx

    def add_samples(self, first_idx: int, counts: np.ndarray) -> None:
        """Raw (n, 6) counts starting at clip sample first_idx. Older samples fall out of the ring.
        The block is read later (when a window is needed): it must not be changed meanwhile."""
        if len(counts):
            self._samples.add(first_idx, counts)
            check = self._last_still_check  # (a block per packet: the usual answer, "not yet", quickly)
            if check is None or check + self._still_hop <= self._samples.last_idx + 1:
                self._check_still()
            if len(self._queue) >= self.batch_steps:
                self._flush()

    def _check_still(self) -> None:
        """Every half second without steps, offer the last second to the calibrator (standing)."""
        hop = self._still_hop
        if self._last_still_check is None or self._last_still_check < self.last_idx + 1 - self.capacity:
            self._last_still_check = self.last_idx + 1 - min(self.capacity, self.last_idx + 1)
        while self._last_still_check + hop <= self.last_idx + 1:
            self._last_still_check += hop
            end = self._last_still_check
            if end - self.rate_hz - self._last_step_idx < self.rate_hz:
                continue
            spell = self._samples.take(end - self.rate_hz, end)
            if spell is not None:
                self._queue.append(spell)

    def add_step(self, ic_idx: int, side: int = -1, running: bool = True, resync: bool = False) -> np.ndarray:
        """A step the detector confirmed. Returns the rows it completes: the previous step's (once
        this contact ends it), and after a gap also the row of the step before the gap (with
        ``batch_steps`` > 1: the rows of a batch, once it is due)."""
        side = -1 if side not in (0, 1) else int(side)
        if resync:
            self._close()  # nothing measured across a gap
        self._steps.append((int(ic_idx), side, bool(running)))
        self._last_step_idx = int(ic_idx)
        del self._steps[:-3]
        if len(self._steps) >= 2:
            self._complete(*self._steps)
        if len(self._queue) >= self.batch_steps:
            self._flush()
        return self._take_ready()

    def close_step(self) -> np.ndarray:
        """The row of the newest step, which no next contact will end (a gap, or the end of the
        session): its time and side, NaN for what needs the next contact; with every row still
        waiting in a batch before it. One row per step."""
        self._close()
        return self.flush()

    def flush(self) -> np.ndarray:
        """The rows still waiting in a batch (the calibrator is then up to date too)."""
        if self._queue:
            self._flush()
        return self._take_ready()

    def _close(self) -> None:
        if self._steps:
            i0, side, running = self._steps[-1]
            self._steps.clear()
            self._queue.append(_Step((i0, i0 / self.rate_hz, side, running) + (math.nan,) * 4))

    def _take_ready(self) -> np.ndarray:
        if not self._ready:  # (a whole log: the rows of most steps wait in their batch)
            return _NO_ROWS
        ready, self._ready = self._ready, []
        if len(ready) == 1:
            return ready[0]
        return np.concatenate(ready) if ready else _NO_ROWS

    # -- one completed step: what it needs, queued ---------------------------------------------
    def _complete(self, *steps: tuple[int, int, bool]) -> None:
        (i0, side, running), (i1, _, _) = steps[-2], steps[-1]
        prev = steps[0][0] if len(steps) == 3 else None
        rate = self.rate_hz
        head = (i0, i0 / rate, side, running)
        step_s = (i1 - i0) / rate
        if step_s > MAX_STEP_S:
            self._queue.append(_Step(head + (math.nan,) * 4))
            return
        self._step_times.append((step_s, side))
        del self._step_times[:-2 * BALANCE_STRIDES]
        # Steps over the time they took: the contacts' timing jitter counts once, at the ends.
        recent = [s for s, _ in self._step_times[-CADENCE_SMOOTH_STEPS:]]
        balance = math.nan
        left = [s for s, sd in self._step_times if sd == 0]
        right = [s for s, sd in self._step_times if sd == 1]
        if len(left) >= 2 and len(right) >= 2:
            mean_left, mean_right = sum(left) / len(left), sum(right) / len(right)
            balance = 100.0 * mean_left / (mean_left + mean_right)
        step = _Step(head + (step_s, 60.0 / step_s, 60.0 * len(recent) / sum(recent), balance))
        self._queue.append(step)

        start, end = i0 - self._margin, min(i1 + self._margin, (self.last_idx or 0) + 1)
        if end < i1:
            return
        with_stride = prev is not None and (i1 - prev) / rate <= 2 * MAX_STEP_S
        lo = min(prev, start) if with_stride else start
        data = self._samples.take(lo, end)  # the stride and the step's window overlap: usually one copy
        if data is not None:
            step.data, step.win = data, (start - lo, end - start, i1 - i0)
            step.stride = (prev - lo, i1 - prev) if with_stride else None
            return
        win = self._samples.take(start, end)
        if win is None:
            return
        stride = self._samples.take(prev, i1) if with_stride else None
        if stride is None:
            step.data, step.win = win, (0, end - start, i1 - i0)
        else:
            step.data, step.stride = np.concatenate([stride, win]), (0, len(stride))
            step.win = (len(stride), end - start, i1 - i0)

    # -- the queued work, computed together --------------------------------------------------------
    def _flush(self) -> None:
        """Still spells and steps in the order they came: the windows' statistics for all at once,
        then the body frame through them one by one (plain floats), then all the steps' metrics at
        once, each in the frame it had; the rows, in order, into ``_ready``."""
        queue, self._queue = self._queue, []
        steps = [q for q in queue if isinstance(q, _Step)]
        measured = [s for s in steps if s.data is not None]
        w = W.StepBatch([s.data for s in measured], [s.win for s in measured], [s.stride for s in measured],
                        self._margin, self._brake_n) if measured else None
        spells = [q for q in queue if not isinstance(q, _Step)]
        still = zip(*(v.tolist() for v in W.still_stats(*np.split(np.stack(spells), 2, axis=2)))) if spells else None
        frames: list = []  # per measured step: up, then body rows forward, left, up (NaN: not known)
        lean: dict = {}
        cal = self.calibrator
        for q in queue:
            if not isinstance(q, _Step):
                cal.still(*next(still))
            elif q.data is not None:
                k = len(frames)
                mean = w.stride_mean[k]
                if mean is not None:
                    cal.stride(mean, w.stride_cov[k])
                elif not cal.has_up:
                    w0 = q.win[0] + self._margin
                    cal.add_stride(q.data[w0:w0 + q.win[2], :3])  # a first estimate of up from one step
                cal.contact(w.brake_mean[k])
                now = cal.now()
                if now is None:
                    frames.append(_UNKNOWN)
                elif now[1] is None:
                    frames.append(now[0] + _UNKNOWN[3:])
                else:
                    rows = body_rows(now[0], now[1])
                    frames.append(now[0] + rows[0] + rows[1] + rows[2])
                    if mean is not None and cal.standing_up is not None and now[3] >= MIN_FORWARD_AGREEMENT:
                        lean[k] = forward_lean_deg(rows, cal.standing_up, mean)
        if not steps:
            return
        out = np.repeat(_NAN_ROW, len(steps))
        for name, column in zip(_HEAD, zip(*(s.head for s in steps))):
            out[name] = column
        if measured:
            at = np.array([k for k, s in enumerate(steps) if s.data is not None])
            out["forward_lean_deg"][at[list(lean)]] = list(lean.values())
            self._measure(out, at, np.array(frames), w)
        self._ready.append(out)

    def _measure(self, out: np.ndarray, at: np.ndarray, frames: np.ndarray, b: W.StepBatch) -> None:
        """The metrics of the measured steps whose body frame was known, into their rows ``out[at]``:
        each kind over steps of alike lengths together (little padding), a cache-sized part at a time."""
        known = np.flatnonzero(~np.isnan(frames[:, 0]))
        for part in _parts(known, b.win_len):
            self._vertical(out, at[part], b, part, frames[part, :3])
        turned = np.flatnonzero(~np.isnan(frames[:, 3])) if self.has_gyro else known[:0]
        alive = [part[self._tilt(out, at[part], b, part, frames[part, 6:9])] for part in _parts(turned, b.n_step)]
        alive = np.concatenate([known[:0], *alive])
        for part in _parts(alive[b.stride_len[alive] > 0], b.stride_len):
            gyro, mask = b.rows(slice(3, 6), b.stride_start[part], b.stride_len[part])
            for name, axis in (("pelvic_drop_deg", frames[part, 3:6]), ("pelvic_rotation_deg", frames[part, 9:12])):
                out[name][at[part]] = W.angle_range_deg(W.along(gyro, axis), mask, b.stride_len[part], self.rate_hz)

    def _vertical(self, out: np.ndarray, rows: np.ndarray, b: W.StepBatch, part: np.ndarray, up: np.ndarray) -> None:
        """Along up: the peak, the oscillation and (running) the loading, vGRF and contact time."""
        rate, margin, n = self.rate_hz, self._margin, b.n_step[part]
        width = int(n.max())
        mask = np.arange(width) < n[:, None]  # the step's samples, from column ``margin`` of its window
        vertical = W.along(b.rows(slice(0, 3), b.win_start[part], b.win_len[part])[0], up)
        step_vertical = vertical[:, margin:margin + width]
        peak = W.masked_max(step_vertical, mask)
        out["peak_vertical_g"][rows] = peak
        out["vertical_oscillation_cm"][rows] = W.oscillation_cm(step_vertical, mask, n, rate)
        run = out["running"][rows] == 1
        if run.any():
            lengths, run_width = b.win_len[part[run]], int(n[run].max())
            loading, contact = self._lowpass(vertical[run, :lengths.max()], lengths)[:, :, margin:margin + run_width]
            peak_loading = W.masked_max(loading, mask[run, :run_width])
            fall = W.first_fall_below(contact, mask[run, :run_width], CONTACT_END_G)
            a0, a1, a2 = VGRF_COEF
            out["peak_loading_g"][rows[run]] = peak_loading
            out["peak_vgrf_bw"][rows[run]] = a0 + a1 * peak_loading + a2 * peak[run]
            out["peak_vgrf_sd_bw"][rows[run]] = VGRF_RMSE_BW
            out["contact_ms"][rows[run]] = np.where(fall >= 0, fall / rate * 1000, np.nan)

    def _tilt(self, out: np.ndarray, rows: np.ndarray, b: W.StepBatch, part: np.ndarray,
              left: np.ndarray) -> np.ndarray:
        """The tilt over each step; which steps' gyro was alive (an all-zero gyro is dead, or absent)."""
        n = b.n_step[part]
        gyro, mask = b.rows(slice(3, 6), b.win_start[part] + self._margin, n)
        alive = (gyro != 0).any(axis=(0, 2))
        out["pelvic_tilt_deg"][rows[alive]] = W.angle_range_deg(W.along(gyro, left), mask, n, self.rate_hz)[alive]
        return alive


def _parts(steps: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """``steps`` in order of their ``lengths``, in parts of MEASURE_CHUNK_STEPS."""
    if len(steps) <= MEASURE_CHUNK_STEPS:
        return [steps] if len(steps) else []
    steps = steps[np.argsort(lengths[steps], kind="stable")]
    return [steps[c:c + MEASURE_CHUNK_STEPS] for c in range(0, len(steps), MEASURE_CHUNK_STEPS)]


def feed_recording(eng: MetricsEngine, counts: np.ndarray, events: np.ndarray, *, first_idx: int = 0,
                   stop_idx: int | None = None) -> np.ndarray:
    """Feed a recording to an engine in the order a live session sees it: each step after the
    samples up to the moment the detector emitted it (in half-second blocks, so stillness is
    checked as often as live). ``stop_idx`` ends the feed before the first step emitted at or
    after it. ``events`` are the detector's rows (``strideclip.analysis.steps.EVENT_DTYPE``)."""
    hop = max(1, eng.rate_hz // 2)
    end_all = len(counts) if stop_idx is None else min(len(counts), stop_idx - first_idx)
    fed = 0
    rows = []

    def feed_to(end: int) -> None:
        nonlocal fed
        while fed < end:
            n = min(hop, end - fed)
            eng.add_samples(first_idx + fed, counts[fed:fed + n])
            fed += n

    columns = (events[c].tolist() for c in ("emit_idx", "ic_idx", "side", "flags"))
    for emit_idx, ic_idx, side, flags in zip(*columns):
        if stop_idx is not None and emit_idx >= stop_idx:
            break
        feed_to(min(len(counts), emit_idx - first_idx + 1))
        rows.append(eng.add_step(ic_idx, side, bool(flags & FLAG_RUNNING), bool(flags & FLAG_RESYNC)))
    feed_to(end_all)
    rows.append(eng.flush())
    return join_rows(rows)


def join_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Row arrays (STEP_METRICS_DTYPE) as one table; joined as bytes: np.concatenate promotes the
    structured dtype once per part, ~30x slower for one-row parts."""
    return np.frombuffer(b"".join([r.tobytes() for r in parts]), STEP_METRICS_DTYPE).copy()


def metrics_for_counts(counts: np.ndarray, events: np.ndarray, *, rate_hz: int, accel_g_per_count: float,
                       gyro_dps_per_count: float, has_gyro: bool = True, first_idx: int = 0) -> np.ndarray:
    """A whole recording through a fresh engine: the same code and order as a live session, its
    steps measured in batches of WHOLE_LOG_BATCH_STEPS."""
    eng = MetricsEngine(rate_hz=rate_hz, accel_g_per_count=accel_g_per_count, gyro_dps_per_count=gyro_dps_per_count,
                        has_gyro=has_gyro, batch_steps=WHOLE_LOG_BATCH_STEPS)
    return feed_recording(eng, counts, events, first_idx=first_idx)


def write_step_table_csv(table: np.ndarray, path: str | os.PathLike) -> None:
    """One row per step, a column per STEP_METRICS_DTYPE field (units in the names); an
    empty cell is a value the data could not support for that step."""
    import csv

    names = STEP_METRICS_DTYPE.names
    with open(path, "x", newline="") as f:  # never overwrite a table someone kept
        w = csv.writer(f)
        w.writerow(names)
        for row in table:
            w.writerow(["" if isinstance(v, float) and math.isnan(v) else
                        (round(float(v), 4) if isinstance(v, (float, np.floating)) else int(v)) for v in row.tolist()])
