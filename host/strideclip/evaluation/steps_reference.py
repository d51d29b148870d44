"""Floating-point reference of the step detector, offline, with numpy and scipy.

It exists to check the fixed-point arithmetic of ``clipcore.steps`` (the product): the same
algorithm with exact Butterworth coefficients, float signals and no truncation. The tuning
constants are read from ``clipcore.steps`` so the two can never drift apart; ``agreement`` counts how
often their contacts agree within one sample (bench/bench_float_agreement.py, tests/test_steps.py).
Not used on any product path.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import signal

from clipcore import steps as C
from clipcore.steps_table import FC_MIN_Q4, FC_ROWS, FC_STEP_Q4


def _butter(fc_hz: float, rate_hz: int):
    b, a = signal.butter(2, fc_hz, fs=rate_hz)
    return b, a


def detect_reference(counts: np.ndarray, rate_hz: int, accel_ug_per_lsb: int) -> np.ndarray:
    """Contact sample indices of the steps in (n, 6) raw counts."""
    acc_mg = counts[:, :3].astype(float) * accel_ug_per_lsb / 1000
    norm = np.linalg.norm(acc_mg, axis=1)
    n = len(norm)
    w = 1 if rate_hz == 104 else (2 if rate_hz == 208 else 4)
    s = np.convolve(norm, np.ones(w) / w)[:n]
    s[: w - 1] = norm[: w - 1]
    padded = np.r_[np.full(2 * w, norm[0]), norm]
    csum = np.cumsum(padded)
    sum1 = csum[2 * w:] - csum[w:-w]
    sum2 = csum[w:-w] - csum[: -2 * w]
    d = sum1 - sum2
    clamped = np.minimum(norm, C.CLAMP_MG)
    # gravity: the same slow low-pass; its magnitude refreshed every 16 samples, as on the clip
    g_shift = 7 + (0 if rate_hz == 104 else (1 if rate_hz == 208 else 2))
    alpha = 2.0 ** -g_shift
    grav = signal.lfilter([alpha], [1, alpha - 1], acc_mg, axis=0)
    gnorm = np.linalg.norm(np.clip(grav, -4095.75, 4095.75), axis=1)
    gnorm_held = np.repeat(gnorm[::16], 16)[:n]

    def ms(x):
        return x * rate_hz / 1000

    period = ms(C.PERIOD_INIT_MS)
    amp = float(C.AMP_INIT_MG)
    first_amp = True
    prom_frac = C.PROM_FRAC_Q8 / 256

    def fc_for(period_samples: float, walking: bool) -> float:
        """The table row the clip would pick (the table is part of the algorithm's definition)."""
        mult_q4 = C.FC_WALK_Q4 if walking else C.FC_MULT_Q4
        fc_q4 = math.floor(mult_q4 * 16 * rate_hz / (period_samples * 16))
        row = min(max((fc_q4 - FC_MIN_Q4 + FC_STEP_Q4 // 2) // FC_STEP_Q4, 0), FC_ROWS - 1)
        return (FC_MIN_Q4 + row * FC_STEP_Q4) / 16

    fc = fc_for(period, False)
    b, a = _butter(fc, rate_hz)
    x1 = x2 = y1 = y2 = clamped[0]  # direct form I, as the integer version
    y = np.empty(n)
    decay = 2.0 ** -int(math.log2(C.AMP_DECAY_S_Q4 * rate_hz / 16))
    state, tr_v, tr_i, pk_v = 0, np.inf, 0, -np.inf
    raw_tr = np.inf
    last_ic = None
    last_rise = -np.inf
    level = cross = mode = None
    pending = None  # (ic, emit_at, mode)
    ics = []
    for i in range(n):
        x0 = clamped[i]
        yi = b[0] * x0 + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1, y2, y1 = x1, x0, y1, yi
        y[i] = yi
        if s[i] < C.TROUGH_RUN_MG <= raw_tr:  # a flight phase: the running low-pass from now on
            new_fc = fc_for(period, False)
            if new_fc != fc:
                fc = new_fc
                b, a = _butter(fc, rate_hz)
        raw_tr = min(raw_tr, s[i])
        prom = max(2 * C.PROM_MIN_MG, prom_frac * amp * 2) / 2
        if state == 0:
            if last_ic is None or i - last_ic > 1.5 * period:
                floor = C.PROM_MIN_MG / prom_frac
                if amp > floor:  # the clip also takes one more LSB (0.5 mg) each sample
                    amp -= amp * decay + 0.5
            if yi < tr_v:
                tr_v, tr_i = yi, i
            thr = prom
            if last_ic is not None and i - last_ic <= 1.5 * period:  # the rhythm expects a step
                frac = prom_frac
                if raw_tr >= C.TROUGH_RUN_MG and i - last_ic >= C.PROM_DUE_Q8 / 256 * period:  # walking, due
                    frac = C.PROM_DUE_FRAC_Q8 / 256
                thr = max(2 * C.PROM_RHY_MIN_MG, frac * amp * 2) / 2
            if yi - tr_v >= thr and i - last_rise >= C.REFRACTORY_Q8 / 256 * period:
                state, pk_v, last_rise = 1, yi, i
                mode = min(1.0, max(0.0, (raw_tr - C.TROUGH_RUN_MG) / (C.TROUGH_WALK_MG - C.TROUGH_RUN_MG)))
                if raw_tr >= C.WALK_TROUGH_MG and period > ms(C.WALK_PERIOD_MS):  # no flight, walking cadence
                    mode = 1.0
                f = (C.F_RUN_Q8 + (C.F_WALK_Q8 - C.F_RUN_Q8) * mode) / 256
                expect = max(C.EXPECT_Q8 / 256 * amp, yi - tr_v)
                if mode >= 0.5:  # walking swings about 1 g: twice the trough's depth is the height
                    expect = max(expect, 2 * (gnorm_held[i] - tr_v))
                level = tr_v + f * expect
                cross = _cross_back(y, level, max(tr_i, i - C.MASK + 1), i) if yi >= level else None
        if state == 1:
            pk_v = max(pk_v, yi)
            lo = max(tr_i, i - C.MASK + 1)
            if cross is None and yi >= level:
                cross = _cross_back(y, level, lo, i)
            if cross is None and pk_v - yi >= prom * C.TOP_FRAC_Q8 / 256:  # smaller than expected
                f = (C.F_RUN_Q8 + (C.F_TOP_Q8 - C.F_RUN_Q8) * mode) / 256
                cross = _cross_back(y, tr_v + f * (pk_v - tr_v), lo, i)
            if cross is not None:
                delay = math.sqrt(2) / (2 * math.pi * fc) * rate_hz
                d0 = ms(C.D0_RUN_MS + (C.D0_WALK_MS - C.D0_RUN_MS) * mode)
                coarse = max(0.0, cross - delay - d0)
                at = i if mode >= 0.5 else max(i, int(coarse) + round(ms(C.REFINE_AFTER_MS)) + 1)
                pending = (coarse, at, mode)
                state = 2
        if state == 2:
            pk_v = max(pk_v, yi)
            if pk_v - yi >= prom * C.FALL_FRAC_Q8 / 256:
                height = pk_v - tr_v
                amp = height if first_amp else amp + (height - amp) / 2 ** C.AMP_SHIFT
                first_amp = False
                state, tr_v, tr_i = 0, yi, i
        if pending is not None and i >= pending[1]:  # emitted as soon as known, after the hump logic
            ic, _, pmode = pending
            if pmode < 0.5:
                ic = _refine(d, ic, i, rate_hz, w)
            if last_ic is not None:
                step = round(ic) - round(last_ic)
                if ms(250) <= step <= ms(1600):
                    period += (step - period) / 2 ** C.PERIOD_SHIFT
            new_fc = fc_for(period, pmode >= 0.5)
            if new_fc != fc:  # direct form I keeps its memory across the change
                fc = new_fc
                b, a = _butter(fc, rate_hz)
            ics.append(ic)
            last_ic = ic
            raw_tr = s[i]
            pending = None
    return np.round(np.array(ics)).astype(np.int64)


def agreement(recordings: Iterable[np.ndarray], rate_hz: int, accel_ug_per_lsb: int) -> tuple[int, int]:
    """(contacts of the fixed-point detector with a reference contact within one sample, all of
    its contacts) over (n, 6) count recordings: the issue #4 agreement figure."""
    from strideclip.analysis.steps import StepDetector

    agree = total = 0
    for counts in recordings:
        ic = StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=accel_ug_per_lsb).detect(counts).events_["ic_idx"]
        ref = detect_reference(counts, rate_hz, accel_ug_per_lsb)
        total += len(ic)
        if len(ref):
            agree += int(sum(np.min(np.abs(ref - x)) <= 1 for x in ic))
    return agree, total


def _cross_back(y: np.ndarray, level: float, lo: int, hi: int) -> float:
    j = hi
    while j > lo and y[j - 1] >= level:
        j -= 1
    if j == lo:
        return float(lo)
    return j - 1 + (level - y[j - 1]) / max(y[j] - y[j - 1], 1e-9)


def _refine(d: np.ndarray, coarse: float, now: int, rate_hz: int, w: int) -> float:
    a = int(math.floor(coarse)) - round(C.REFINE_BEFORE_MS * rate_hz / 1000)
    b = min(now, int(math.floor(coarse)) + round(C.REFINE_AFTER_MS * rate_hz / 1000))
    a = max(a, now - C.MASK + 1, 0)
    if b - a < 2:
        return coarse
    seg = d[a:b + 1]
    top = seg.max()
    if top <= 0:
        return coarse
    need = top * C.REFINE_FIRST_Q8 / 256
    for j in range(1, len(seg) - 1):
        if seg[j] >= need and seg[j] >= seg[j - 1] and seg[j] >= seg[j + 1]:
            dm, dk, dp = seg[j - 1], seg[j], seg[j + 1]
            curv = dm - 2 * dk + dp
            frac = (dm - dp) / (2 * curv) if curv < 0 else 0.0
            return a + j + frac - (w - 0.5) - C.REFINE_LAG_MS * rate_hz / 1000
    return coarse
