"""Per-step running metrics from the clip's raw samples and the detector's steps (docs/metrics.md).

One ``MetricsEngine`` serves live streams and whole logs: samples go in as they arrive
(``add_samples``), steps as the detector confirms them (``add_step``). When step k+1's contact
is known, step k is complete and its row is returned: the step's own values (time, vertical
impact, contact, oscillation, tilt) and those of the stride that ends with it (rotation, drop,
lean). Memory is a ring of ``buffer_s`` seconds of samples; a whole log is the same calls with
one big block (``metrics_for_counts``).

The body frame (up, forward) is learnt on the way (``strideclip.analysis.bodyframe``); until it is known
the values that need it are NaN. Values that the data cannot support for a step are NaN too: the
vGRF estimate and contact time need a flight phase (running), the pelvic angles need a gyro,
nothing is computed across missing samples.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import signal

from clipcore.steps import FLAG_RESYNC, FLAG_RUNNING
from strideclip.analysis.bodyframe import BRAKE_MS, MIN_FORWARD_AGREEMENT, FrameCalibrator

G_MPS2 = 9.80665
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


def _ramp(n: int) -> np.ndarray:
    """0 .. 1 in n samples (np.linspace without its per-call overhead: called twice a step)."""
    return np.arange(n) / (n - 1) if n > 1 else np.zeros(n)


def _angle_range_deg(rate_dps: np.ndarray, rate_hz: int) -> np.ndarray:
    """Range of motion of angles (columns) over a window from their rates; the window is taken as
    a whole cycle, so a straight line between its ends (gyro bias, a steady turn) is removed."""
    angle = np.cumsum(rate_dps, axis=0) / rate_hz
    angle -= angle[0]
    angle -= np.outer(_ramp(len(angle)), angle[-1])
    return angle.max(axis=0) - angle.min(axis=0)


def _oscillation_cm(vertical_g: np.ndarray, rate_hz: int) -> float:
    """Vertical excursion over one step by double integration; the step is a cycle, so the mean
    acceleration (sensor bias, tilt) and the end-to-end drift of position are removed."""
    acc = (vertical_g - vertical_g.sum() / len(vertical_g)) * G_MPS2
    vel = np.cumsum(acc) / rate_hz
    vel -= vel.sum() / len(vel)
    pos = np.cumsum(vel) / rate_hz
    pos -= pos[0] + (pos[-1] - pos[0]) * _ramp(len(pos))
    return float((pos.max() - pos.min()) * 100)


class _ZeroPhaseLowPass:
    """2nd-order Butterworth run forwards and backwards over a window (zero phase), started from
    steady state at each end; the window's margins absorb the start-up."""

    def __init__(self, fc_hz: float, rate_hz: int):
        self.b, self.a = signal.butter(2, fc_hz, fs=rate_hz)
        self.zi = signal.lfilter_zi(self.b, self.a)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = signal.lfilter(self.b, self.a, x, zi=self.zi * x[0])[0][::-1]
        return signal.lfilter(self.b, self.a, y, zi=self.zi * y[0])[0][::-1]


class MetricsEngine:
    """Streaming per-step metrics. Indices are the clip's sample indices."""

    def __init__(self, *, rate_hz: int, accel_g_per_count: float, gyro_dps_per_count: float, has_gyro: bool = True,
                 buffer_s: float = 8.0):
        self.rate_hz = rate_hz
        self.accel_g_per_count = accel_g_per_count
        self.gyro_dps_per_count = gyro_dps_per_count
        self.has_gyro = has_gyro
        self.capacity = int(buffer_s * rate_hz)
        self._ring = np.zeros((self.capacity, 6))  # accel g, gyro dps
        self._scale = np.array([accel_g_per_count] * 3 + [gyro_dps_per_count] * 3)
        self._stored_idx = np.full(self.capacity, -1, np.int64)  # which sample each slot holds
        self.last_idx: int | None = None
        self.calibrator = FrameCalibrator(rate_hz)
        self._steps: list[tuple[int, int, bool]] = []  # (ic_idx, side, running): the last three
        self._step_times: list[tuple[float, int]] = []  # (step_time_s, side) for cadence and balance
        self._last_still_check: int | None = None  # end of the last window checked for stillness
        self._last_step_idx = -(10 ** 12)
        self._lp = [_ZeroPhaseLowPass(fc, rate_hz) for fc in (LOADING_LP_HZ, min(CONTACT_LP_HZ, 0.4 * rate_hz))]

    # -- input ------------------------------------------------------------------------------
    def add_samples(self, first_idx: int, counts: np.ndarray) -> None:
        """Raw (n, 6) counts starting at clip sample first_idx. Older samples fall out of the ring."""
        counts = np.asarray(counts)
        n = len(counts)
        if n == 0:
            return
        if n > self.capacity:  # only the newest part can be kept
            first_idx, counts, n = first_idx + n - self.capacity, counts[-self.capacity:], self.capacity
        values = counts[:, :6] * self._scale  # accel g, gyro dps
        idx = np.arange(first_idx, first_idx + n)
        s0 = first_idx % self.capacity
        if s0 + n <= self.capacity:  # the usual case: one contiguous stretch of the ring
            self._ring[s0:s0 + n] = values
            self._stored_idx[s0:s0 + n] = idx
        else:
            slots = idx % self.capacity
            self._ring[slots] = values
            self._stored_idx[slots] = idx
        self.last_idx = first_idx + n - 1 if self.last_idx is None else max(self.last_idx, first_idx + n - 1)
        self._check_still()

    def _window(self, start: int, end: int):
        """(accel g, gyro dps) for samples [start, end), or None if any is missing or overwritten."""
        if end <= start or self.last_idx is None or end - 1 > self.last_idx or end - start > self.capacity:
            return None
        s0 = start % self.capacity
        if s0 + end - start <= self.capacity:
            held = self._stored_idx[s0:s0 + end - start]
            data = self._ring[s0:s0 + end - start]
        else:
            slots = np.arange(start, end) % self.capacity
            held, data = self._stored_idx[slots], self._ring[slots]
        # A slot holds the sample asked for only if nothing was lost or overwritten since.
        if held[0] != start or held[-1] != end - 1 or np.any(np.diff(held) != 1):
            return None
        return data[:, :3], data[:, 3:]

    def _check_still(self) -> None:
        """Every half second without steps, offer the last second to the calibrator (standing)."""
        hop = max(1, self.rate_hz // 2)
        if self._last_still_check is None or self._last_still_check < self.last_idx + 1 - self.capacity:
            self._last_still_check = self.last_idx + 1 - min(self.capacity, self.last_idx + 1)
        while self._last_still_check + hop <= self.last_idx + 1:
            self._last_still_check += hop
            end = self._last_still_check
            if end - self.rate_hz - self._last_step_idx < self.rate_hz:
                continue
            w = self._window(end - self.rate_hz, end)
            if w is not None:
                self.calibrator.add_still(w[0], w[1])

    def add_step(self, ic_idx: int, side: int = -1, running: bool = True, resync: bool = False) -> np.ndarray:
        """A step the detector confirmed. Returns the rows it completes: the previous step's (once
        this contact ends it), and after a gap also the row of the step before the gap."""
        side = -1 if side not in (0, 1) else int(side)
        closed = self.close_step() if resync else np.zeros(0, STEP_METRICS_DTYPE)  # nothing measured across a gap
        self._steps.append((int(ic_idx), side, bool(running)))
        self._last_step_idx = int(ic_idx)
        del self._steps[:-3]
        if len(self._steps) < 2:
            return closed
        return np.concatenate([closed, self._complete(*self._steps)]) if len(closed) else self._complete(*self._steps)

    def close_step(self) -> np.ndarray:
        """The row of the newest step, which no next contact will end (a gap, or the end of the
        session): its time and side, NaN for what needs the next contact. One row per step."""
        if not self._steps:
            return np.zeros(0, STEP_METRICS_DTYPE)
        i0, side, running = self._steps[-1]
        self._steps.clear()
        out = _NAN_ROW.copy()
        out[0]["ic_idx"], out[0]["t_s"], out[0]["side"], out[0]["running"] = i0, i0 / self.rate_hz, side, running
        return out

    # -- one completed step -------------------------------------------------------------------
    def _complete(self, *steps) -> np.ndarray:
        (i0, side, running), (i1, _, _) = steps[-2], steps[-1]
        prev = steps[0][0] if len(steps) == 3 else None
        rate = self.rate_hz
        out = _NAN_ROW.copy()  # every float unknown until measured
        row = out[0]  # a view: what is set on it is in ``out``
        row["ic_idx"], row["t_s"], row["side"], row["running"] = i0, i0 / rate, side, running
        step_s = (i1 - i0) / rate
        if step_s > MAX_STEP_S:
            return out
        row["step_time_s"] = step_s
        row["cadence_spm"] = 60.0 / step_s
        self._step_times.append((step_s, side))
        del self._step_times[:-2 * BALANCE_STRIDES]
        # Steps over the time they took: the contacts' timing jitter counts once, at the ends.
        recent = [s for s, _ in self._step_times[-CADENCE_SMOOTH_STEPS:]]
        row["cadence_smoothed_spm"] = 60.0 * len(recent) / sum(recent)
        left = [s for s, sd in self._step_times if sd == 0]
        right = [s for s, sd in self._step_times if sd == 1]
        if len(left) >= 2 and len(right) >= 2:
            mean_left, mean_right = sum(left) / len(left), sum(right) / len(right)
            row["balance_left_pct"] = 100.0 * mean_left / (mean_left + mean_right)

        margin = int(0.1 * rate)  # zero-phase filtering needs a little context on both sides
        end = min(i1 + margin, (self.last_idx or 0) + 1)
        win = self._window(i0 - margin, end) if end >= i1 else None
        if win is None:
            return out
        acc, gyr = win
        step = slice(margin, margin + i1 - i0)
        stride = None
        if prev is not None and (i1 - prev) / rate <= 2 * MAX_STEP_S:
            stride_win = self._window(prev, i1)
            if stride_win is not None:
                stride = stride_win
                self.calibrator.add_stride(stride[0])
        if stride is None and not self.calibrator.has_up:
            self.calibrator.add_stride(acc[step])  # a first estimate of up from one step
        self.calibrator.add_contact(acc[margin:margin + max(1, int(BRAKE_MS / 1000 * rate))])
        frame = self.calibrator.frame
        if frame is None:
            return out

        vertical = acc @ frame.up
        row["peak_vertical_g"] = vertical[step].max()
        row["vertical_oscillation_cm"] = _oscillation_cm(vertical[step], rate)
        if running:
            loading, contact = (lp(vertical) for lp in self._lp)
            a0, a1, a2 = VGRF_COEF
            row["peak_loading_g"] = loading[step].max()
            row["peak_vgrf_bw"] = a0 + a1 * row["peak_loading_g"] + a2 * row["peak_vertical_g"]
            row["peak_vgrf_sd_bw"] = VGRF_RMSE_BW
            row["contact_ms"] = self._contact_ms(contact[step])

        if frame.forward is None:
            return out
        m = frame.matrix()
        if self.has_gyro and np.any(gyr[step]):  # an all-zero gyro is a dead (or absent) gyro
            g_body = gyr @ m.T  # (forward, left, up) rates
            row["pelvic_tilt_deg"] = _angle_range_deg(g_body[step, 1:2], rate)[0]
            if stride is not None:
                row["pelvic_drop_deg"], _, row["pelvic_rotation_deg"] = _angle_range_deg(stride[1] @ m.T, rate)
        if stride is not None and frame.standing_up is not None and frame.forward_agreement >= MIN_FORWARD_AGREEMENT:
            s = m @ frame.standing_up  # standing gravity in today's body frame
            g = m @ stride[0].mean(axis=0)
            # Pitching forward turns the gravity seen by the clip towards its back (-forward).
            row["forward_lean_deg"] = math.degrees(math.atan2(s[0], s[2]) - math.atan2(g[0], g[2]))
        return out

    def _contact_ms(self, vertical_lp_g: np.ndarray) -> float:
        """From the contact to where the low-passed vertical force falls below CONTACT_END_G."""
        peak = int(np.argmax(vertical_lp_g))
        below = np.flatnonzero(vertical_lp_g[peak:] < CONTACT_END_G)
        if not len(below):
            return math.nan  # no flight phase in this step
        return (peak + below[0]) / self.rate_hz * 1000


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

    for e in events:
        if stop_idx is not None and e["emit_idx"] >= stop_idx:
            break
        feed_to(min(len(counts), int(e["emit_idx"]) - first_idx + 1))
        rows.append(eng.add_step(int(e["ic_idx"]), int(e["side"]), bool(e["flags"] & FLAG_RUNNING),
                                 bool(e["flags"] & FLAG_RESYNC)))
    feed_to(end_all)
    return np.concatenate(rows) if rows else np.zeros(0, STEP_METRICS_DTYPE)


def metrics_for_counts(counts: np.ndarray, events: np.ndarray, *, rate_hz: int, accel_g_per_count: float,
                       gyro_dps_per_count: float, has_gyro: bool = True, first_idx: int = 0) -> np.ndarray:
    """A whole recording through a fresh engine: the same code and order as a live session."""
    eng = MetricsEngine(rate_hz=rate_hz, accel_g_per_count=accel_g_per_count, gyro_dps_per_count=gyro_dps_per_count,
                        has_gyro=has_gyro)
    return feed_recording(eng, counts, events, first_idx=first_idx)


def write_step_table_csv(table: np.ndarray, path) -> None:
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
