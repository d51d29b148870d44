"""A second sensor's stream joined onto the accelerometer's times (docs/import.md, "Two sensors,
one clock"): where the gyroscope comes in a file or a resource of its own (phyphox, MetaMotion,
Movesense), it is interpolated onto the accelerometer's times inside its own coverage only."""
from __future__ import annotations

import numpy as np

from strideclip.imports.checks import GAP_PERIODS

MIN_GYRO_COVERAGE = 0.5  # a gyro covering less of the accelerometer's samples than this is left out


def join_onto(t_ref: np.ndarray, t_src: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (m, 3), sampled at ``t_src`` (non-decreasing; repeated times averaged), linearly
    interpolated at ``t_ref``. Only inside the source's own coverage: between two source samples
    no gap apart (a step over GAP_PERIODS of its median period is a gap, as in the recording's own
    times). Returns (joined (n, 3), covered (n,) bool); rows not covered are NaN, never extrapolated."""
    t_src = np.asarray(t_src, float)
    uniq, inverse = np.unique(t_src, return_inverse=True)
    if len(uniq) < len(t_src):
        sums = np.zeros((len(uniq), values.shape[1]))
        np.add.at(sums, inverse, values)
        values = sums / np.bincount(inverse)[:, None]
    t_src = uniq
    joined = np.full((len(t_ref), values.shape[1]), np.nan)
    if len(t_src) < 2:
        return joined, np.zeros(len(t_ref), bool)
    step = np.diff(t_src)
    period = float(np.median(step))
    right = np.searchsorted(t_src, t_ref, side="left")  # t_src[right - 1] < t <= t_src[right]
    exact = (right < len(t_src)) & (t_src[np.minimum(right, len(t_src) - 1)] == t_ref)
    inside = (right > 0) & (right < len(t_src))
    short = np.zeros(len(t_ref), bool)
    short[inside] = step[right[inside] - 1] <= GAP_PERIODS * period
    covered = exact | (inside & short)
    for axis in range(values.shape[1]):
        joined[covered, axis] = np.interp(t_ref[covered], t_src, values[:, axis])
    return joined, covered


def attach_gyro(t_s: np.ndarray, accel: np.ndarray, lines: np.ndarray | None, t_gyro: np.ndarray,
                gyro: np.ndarray, gyro_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                                            np.ndarray | None, list[str]]:
    """The gyroscope joined onto the accelerometer's times (``join_onto``, both in seconds on one
    clock). Accelerometer rows the gyro does not cover are left out (the log has a gap there: a
    sample with a made-up angular rate would be worse); a gyro covering less than half the
    accelerometer's samples is left out instead. Returns (t, accel, gyro or None, lines, notes)."""
    joined, covered = join_onto(t_s, t_gyro, gyro)
    notes = []
    if covered.all():
        return t_s, accel, joined, lines, notes
    span = float(t_s[-1] - t_s[0]) or 1.0
    share = covered.mean()
    if share < MIN_GYRO_COVERAGE:
        notes.append(f"{gyro_name} covers only {share:.0%} of the accelerometer's samples: the gyroscope is left out")
        return t_s, accel, None, lines, notes
    missing = np.flatnonzero(~covered)
    runs = np.split(missing, np.flatnonzero(np.diff(missing) > 1) + 1)
    said = ", ".join(f"{t_s[r[0]] - t_s[0]:.3f}-{t_s[r[-1]] - t_s[0]:.3f} s" for r in runs[:5])
    more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
    notes.append(f"{gyro_name} has no data near {len(missing)} accelerometer sample(s) ({said}{more} of {span:.1f} s): "
                 f"those are left out (the log has a gap there), never extrapolated")
    return t_s[covered], accel[covered], joined[covered], None if lines is None else lines[covered], notes
