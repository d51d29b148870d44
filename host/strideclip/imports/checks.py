"""What a recording must be to become a session, checked before anything is written
(docs/import.md): time that never runs backwards, a rate step detection can use (>= 50 Hz),
values in the units stated. Where the source has no samples (a time step well over the nominal
period) or has two at one time (which is right cannot be known: both are dropped), the recording
is cut into segments; the log then has a gap there, never samples made up to fill it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from strideclip.errors import ImportFormatError
from strideclip.imports.columns import G_MPS2
from strideclip.imports.recording import Recording

MIN_RATE_HZ = 50.0  # below this the step detector's filters have no room (docs/step-detector.md)
GAP_PERIODS = 1.5  # a time step longer than this many nominal periods has left samples out
MAX_REPEATED_SHARE = 0.05  # more rows than this at repeated times: the time column is too coarse
STATED_RATE_TOLERANCE = 0.05  # a stated rate this far from the times' own is said in the notes
# Units that cannot be what the file says: the median |a| of a body-worn accelerometer is near 1 g
# (gravity; running's impacts and flights average out), its gyro turns at tens to hundreds of dps.
ACCEL_MEDIAN_G = (0.5, 2.0)
GYRO_MOVING_P99_DPS = (5.0, 2000.0)  # the 99th percentile of |w| while the body moves (|a| varies)
MOVING_SD_G = 0.1
SEEMS = {  # median |a| in g -> the unit the values look like
    "m/s^2 (mps2)": (0.5 * G_MPS2, 2.0 * G_MPS2), "mg": (500.0, 2000.0), "g": ACCEL_MEDIAN_G,
}


@dataclass
class Timeline:
    """How a recording's samples lie in time: its nominal rate and the runs of samples without a
    gap (``segments``: [start, end) row ranges, rows at repeated times left out)."""

    rate_hz: float
    segments: list[tuple[int, int]]
    gaps: list[dict] = field(default_factory=list)  # between segments, in order: {"after_s", "missing_s", "why"}
    repeated_rows: int = 0  # rows dropped: two or more at one time
    dropped_rows: int = 0  # rows alone between two gaps (one sample cannot be resampled)


def _where(rec: Recording, k: int) -> str:
    """Sample k of the recording, as a person finds it in the file."""
    if rec.lines is not None and k < len(rec.lines):
        return f"line {int(rec.lines[k])}"
    return f"sample {k + 1}"


def _file(rec: Recording) -> str:
    return ", ".join(rec.files) or rec.fmt


def check_values(rec: Recording) -> None:
    """Shapes and numbers: (n, 3) accelerations, gyro the same or None, every value finite."""
    name = _file(rec)
    n = len(rec.t_s)
    if n < 2:
        raise ImportFormatError(f"{name}: {n} sample(s): nothing to analyse", path=name)
    if rec.accel_g.shape != (n, 3) or (rec.gyro_dps is not None and rec.gyro_dps.shape != (n, 3)):
        raise ImportFormatError(f"{name}: the reader gave {rec.accel_g.shape} accelerations for {n} times", path=name)
    for what, values in (("time", rec.t_s), ("accelerometer", rec.accel_g), ("gyroscope", rec.gyro_dps)):
        if values is None:
            continue
        bad = ~np.isfinite(values) if values.ndim == 1 else ~np.isfinite(values).all(axis=1)
        if bad.any():
            raise ImportFormatError(f"{name}, {_where(rec, int(np.argmax(bad)))}: the {what} value is not a number",
                                    path=name)


def require_increasing(t_s: np.ndarray, where: Callable[[int], str], path: str) -> None:
    """ImportFormatError at the first sample (``where(k)``: its file and line) whose time is
    before the one above it. The recording's own times are checked here (``timeline``); a stream
    joined onto them (a gyroscope in a file of its own) by its reader, before the join."""
    t = np.asarray(t_s, float)
    back = np.flatnonzero(np.diff(t) < 0)
    if len(back):
        k = int(back[0]) + 1
        raise ImportFormatError(f"{where(k)}: time goes backwards ({t[k]:.6g} s after {t[k - 1]:.6g} s): a recording's "
                                f"times must only increase", path=path)


def timeline(rec: Recording) -> Timeline:
    """The recording's rate and contiguous segments. Raises ImportFormatError for time that runs
    backwards (naming the line), a time column too coarse for the rate, a rate under 50 Hz."""
    name = _file(rec)
    t = np.asarray(rec.t_s, float)
    require_increasing(t, lambda k: f"{name}, {_where(rec, k)}", name)
    dt = np.diff(t)
    same = dt == 0
    repeated = np.zeros(len(t), bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    n_repeated = int(repeated.sum())
    if n_repeated > MAX_REPEATED_SHARE * len(t):
        raise ImportFormatError(f"{name}: {n_repeated} of {len(t)} rows share their time with another: the time column "
                                f"is too coarse for the rate (or is not a time)", path=name)
    kept = np.flatnonzero(~repeated)
    if len(kept) < 2:
        raise ImportFormatError(f"{name}: fewer than two samples at distinct times", path=name)
    step = np.diff(t[kept])
    period = float(np.median(step))
    rate = 1.0 / period
    if rate < MIN_RATE_HZ:
        raise ImportFormatError(f"{name}: {rate:.3g} Hz (a sample every {period * 1000:.0f} ms) is too slow: step "
                                f"detection needs at least {MIN_RATE_HZ:.0f} Hz", path=name)
    cut_time = step > GAP_PERIODS * period
    cut_repeat = np.diff(kept) > 1  # rows left out between these two: a gap however short
    cuts = np.flatnonzero(cut_time | cut_repeat)
    bounds = np.concatenate([[0], cuts + 1, [len(kept)]])
    segments, dropped = [], 0
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b - a >= 2:
            segments.append((int(kept[a]), int(kept[b - 1]) + 1))
        else:
            dropped += int(b - a)
    if not segments:
        raise ImportFormatError(f"{name}: no two consecutive samples without a gap", path=name)
    gaps = [{"after_s": round(float(t[end - 1] - t[0]), 6), "missing_s": round(float(t[start] - t[end - 1] - period), 6),
             "why": "repeated time" if repeated[end:start].any() else "time step"}
            for (_, end), (start, _) in zip(segments, segments[1:])]
    spans = sum(t[b - 1] - t[a] for a, b in segments)  # the mean rate where samples are contiguous: not the
    steps = sum(b - a - 1 for a, b in segments)  # median step's, which a time column's rounding moves
    return Timeline(steps / spans if spans > 0 else rate, segments, gaps, n_repeated, dropped)


def _seems(median_g: float) -> str | None:
    return next((unit for unit, (lo, hi) in SEEMS.items() if lo <= median_g <= hi), None)


def check_units(rec: Recording) -> None:
    """Refuse values that cannot be in the units stated (a file in m/s^2 read as g, a gyro in
    rad/s read as dps): the session would be silently wrong."""
    name = _file(rec)
    norm = np.linalg.norm(rec.accel_g, axis=1)
    median_g = float(np.median(norm))
    stated = rec.units.get("accel", "g")
    if not ACCEL_MEDIAN_G[0] <= median_g <= ACCEL_MEDIAN_G[1]:
        seems = _seems(median_g)
        guess = f": they look like {seems}" if seems else ""
        raise ImportFormatError(f"{name}: the accelerometer reads a median |a| of {median_g:.3g} g once converted from "
                                f"{stated}, where a body-worn sensor reads about 1 g{guess}; state the unit it is in",
                                path=name)
    if rec.gyro_dps is None:
        return
    win = max(2, int(round(len(norm) / max(rec.t_s[-1] - rec.t_s[0], 1e-9))))  # about a second of samples
    n_win = len(norm) // win
    if n_win == 0:
        return
    sd = norm[:n_win * win].reshape(n_win, win).std(axis=1)
    moving = np.repeat(sd > MOVING_SD_G, win)
    if moving.sum() < win:
        return  # still or nearly: nothing to judge the gyro's unit by
    p99 = float(np.percentile(np.linalg.norm(rec.gyro_dps[:n_win * win][moving], axis=1), 99))
    stated = rec.units.get("gyro", "dps")
    if p99 < GYRO_MOVING_P99_DPS[0]:
        raise ImportFormatError(f"{name}: while the body moves the gyroscope turns at most {p99:.3g} deg/s once converted "
                                f"from {stated}: they look like rad/s; state the unit it is in", path=name)
    if p99 > GYRO_MOVING_P99_DPS[1]:
        raise ImportFormatError(f"{name}: the gyroscope reads {p99:.4g} deg/s once converted from {stated}, beyond "
                                f"any pelvis: state the unit it is in", path=name)
