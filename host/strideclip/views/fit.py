"""A session as a FIT activity file, with the running-dynamics fields watches write.

FIT (Garmin's Flexible and Interoperable Data Transfer protocol, FIT SDK profile 21.x) is what
Garmin Connect, Strava, TrainingPeaks, GoldenCheetah and most running tools import. The file is
one running session, lap and activity, with a ``record`` message every second carrying what the
clip measures:

- ``cadence`` + ``fractional_cadence``: FIT counts running cadence in strides (cycles) per
  minute, so steps/min / 2 (the tools double it back);
- ``stance_time`` (ms), ``stance_time_percent`` (contact time / step time), ``stance_time_balance``
  (left feet's share of contact time, %), ``vertical_oscillation`` (mm) and ``vertical_ratio``
  (oscillation / step length, only with a known distance), ``step_length`` (mm, with a distance);
- ``distance`` (m) only when the session's distance is given: a sacral IMU cannot measure it.

Each record holds the smoothed values of the steps of the seconds before it (STEPS_PER_RECORD
running steps); a second with no step in it (a stop) has cadence 0 and no dynamics. Values the
data cannot support are written as FIT's "invalid", which readers skip.

The encoder writes little-endian definition and data messages with normal headers and the
file's CRC-16 (the FIT SDK's nibble-table CRC, the same as CRC-16/ARC).
"""
from __future__ import annotations

import datetime as dt
import struct

import numpy as np

FIT_EPOCH = dt.datetime(1989, 12, 31, tzinfo=dt.timezone.utc)
PROFILE_VERSION = 2132  # 21.32
STEPS_PER_RECORD = 6  # the values of a record: medians of the last running steps
STOPPED_AFTER_S = 2.0  # no contact for this long: the runner stands

# base types (FIT SDK): code, struct format, invalid value
ENUM, UINT8, UINT16, UINT32, UINT32Z = (0x00, "B", 0xFF), (0x02, "B", 0xFF), (0x84, "H", 0xFFFF), \
    (0x86, "I", 0xFFFFFFFF), (0x8C, "I", 0)

# global message numbers
FILE_ID, SESSION, LAP, RECORD, EVENT, ACTIVITY = 0, 18, 19, 20, 21, 34
# enum values from the FIT profile
FILE_ACTIVITY, MANUFACTURER_DEVELOPMENT, SPORT_RUNNING = 4, 255, 1
EVENT_TIMER, EVENT_LAP, EVENT_SESSION, EVENT_ACTIVITY = 0, 9, 8, 26
EVENT_TYPE_START, EVENT_TYPE_STOP, EVENT_TYPE_STOP_ALL = 0, 1, 4

_CRC_TABLE = (0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
              0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400)


def fit_crc(data: bytes, crc: int = 0) -> int:
    for byte in data:
        for nibble in (byte & 0xF, byte >> 4):
            tmp = _CRC_TABLE[crc & 0xF]
            crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ _CRC_TABLE[nibble]
    return crc


class FitWriter:
    """Definition + data messages; one local message type per global message."""

    def __init__(self):
        self.body = bytearray()
        self._local: dict = {}  # (global number, field numbers) -> (local type, formats)

    def message(self, global_num: int, fields: list[tuple[int, tuple, object]]) -> None:
        """fields: (field number, base type, value); None or NaN is written as invalid."""
        key = (global_num, tuple(f[0] for f in fields))
        if key not in self._local:
            local = len(self._local) % 16
            self._local = {k: v for k, v in self._local.items() if v[0] != local}
            self.body += struct.pack("<BBBHB", 0x40 | local, 0, 0, global_num, len(fields))
            for num, (code, fmt, _), _ in fields:
                self.body += struct.pack("<BBB", num, struct.calcsize(fmt), code)
            self._local[key] = (local, "<" + "".join(f[1][1] for f in fields))
        local, fmt = self._local[key]
        values = [_value(base, v) for _, base, v in fields]
        self.body += bytes([local]) + struct.pack(fmt, *values)

    def file_bytes(self) -> bytes:
        header = struct.pack("<BBHI4s", 14, 0x20, PROFILE_VERSION, len(self.body), b".FIT")
        header += struct.pack("<H", fit_crc(header))
        out = header + bytes(self.body)
        return out + struct.pack("<H", fit_crc(out))


def _value(base: tuple, v) -> int:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return base[2]
    v = int(round(v))
    limit = {"B": 0xFE, "H": 0xFFFE, "I": 0xFFFFFFFE}[base[1]]
    return min(max(v, 0), limit)


def fit_time(t: dt.datetime) -> int:
    return int((t - FIT_EPOCH).total_seconds())


def per_second_records(duration_s: float) -> int:
    """How many records (one per whole second) a session of ``duration_s`` gets."""
    return max(1, int(np.ceil(duration_s)))


def per_second(table: np.ndarray, duration_s: float, *, distance_km: float | None = None) -> dict:
    """The record values for each whole second of the session (arrays, NaN = unknown)."""
    n = per_second_records(duration_s)
    out = {k: np.full(n, np.nan) for k in ("cadence_spm", "contact_ms", "stance_pct", "balance_left_pct",
                                            "oscillation_mm", "distance_m", "step_length_mm")}
    run = table[np.isfinite(table["step_time_s"])]
    if not len(run):
        return out
    t_end = run["t_s"] + run["step_time_s"]  # a step is complete at the next contact
    last = np.searchsorted(t_end, np.arange(1, n + 1), side="right") - 1  # last step done by each second
    step_m = None
    if distance_km:
        running_s = float(np.nansum(run["step_time_s"][run["running"] == 1])) or float(np.nansum(run["step_time_s"]))
        speed_mps = distance_km * 1000 / running_s  # even pace over the running time
        km_done = np.cumsum(np.where(run["running"] == 1, run["step_time_s"], 0.0)) * speed_mps
        out["distance_m"] = np.where(last >= 0, km_done[np.maximum(last, 0)], 0.0)
        step_m = speed_mps * run["step_time_s"]
    for sec, k in enumerate(last):
        if k < 0 or sec + 1 - t_end[k] > STOPPED_AFTER_S:
            out["cadence_spm"][sec] = 0.0 if k >= 0 else np.nan
            continue
        w = slice(max(0, k - STEPS_PER_RECORD + 1), k + 1)
        rows = run[w]
        out["cadence_spm"][sec] = _nanmedian(rows["cadence_spm"])
        out["contact_ms"][sec] = _nanmedian(rows["contact_ms"])
        out["stance_pct"][sec] = _nanmedian(100 * rows["contact_ms"] / 1000 / rows["step_time_s"])
        out["oscillation_mm"][sec] = _nanmedian(rows["vertical_oscillation_cm"]) * 10
        left = rows["contact_ms"][rows["side"] == 0]
        right = rows["contact_ms"][rows["side"] == 1]
        if np.isfinite(left).any() and np.isfinite(right).any():
            lm, rm = np.nanmedian(left), np.nanmedian(right)
            out["balance_left_pct"][sec] = 100 * lm / (lm + rm)
        if step_m is not None:
            out["step_length_mm"][sec] = _nanmedian(step_m[w]) * 1000
    return out


def _nanmedian(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def session_fit(table: np.ndarray, *, started_at: dt.datetime, duration_s: float, serial: int = 0,
                distance_km: float | None = None) -> bytes:
    """The whole FIT activity file of one session."""
    start = fit_time(started_at)
    sec = per_second(table, duration_s, distance_km=distance_km)
    n = len(sec["cadence_spm"])
    end = start + n
    w = FitWriter()
    w.message(FILE_ID, [(0, ENUM, FILE_ACTIVITY), (1, UINT16, MANUFACTURER_DEVELOPMENT), (2, UINT16, 0),
                        (3, UINT32Z, serial or None), (4, UINT32, start)])
    w.message(EVENT, [(253, UINT32, start), (0, ENUM, EVENT_TIMER), (1, ENUM, EVENT_TYPE_START)])
    for i in range(n):
        spm = sec["cadence_spm"][i]
        strides = spm / 2 if np.isfinite(spm) else np.nan
        osc_mm = sec["oscillation_mm"][i]
        step_mm = sec["step_length_mm"][i]
        w.message(RECORD, [
            (253, UINT32, start + i + 1),
            (4, UINT8, np.floor(strides) if np.isfinite(strides) else None),
            (53, UINT8, (strides - np.floor(strides)) * 128 if np.isfinite(strides) else None),
            (41, UINT16, sec["contact_ms"][i] * 10),
            (40, UINT16, sec["stance_pct"][i] * 100),
            (84, UINT16, sec["balance_left_pct"][i] * 100),
            (39, UINT16, osc_mm * 10),
            (83, UINT16, osc_mm / step_mm * 100 * 100 if np.isfinite(step_mm) and step_mm else None),
            (85, UINT16, step_mm * 10),
            (5, UINT32, sec["distance_m"][i] * 100),
        ])
    w.message(EVENT, [(253, UINT32, end), (0, ENUM, EVENT_TIMER), (1, ENUM, EVENT_TYPE_STOP_ALL)])
    moving = sec["cadence_spm"][np.isfinite(sec["cadence_spm"]) & (sec["cadence_spm"] > 0)]
    avg_strides = float(np.mean(moving)) / 2 if len(moving) else None
    totals = [
        (253, UINT32, end), (2, UINT32, start), (7, UINT32, n * 1000), (8, UINT32, n * 1000),
        (9, UINT32, distance_km * 1000 * 100 if distance_km else None),
        (10, UINT32, int(np.sum(table["running"] == 1)) // 2),  # running strides
    ]
    dynamics = [_nanmedian(sec[k]) for k in ("oscillation_mm", "stance_pct", "contact_ms", "balance_left_pct",
                                              "step_length_mm")]
    cadence = [np.floor(avg_strides) if avg_strides else None,
               (avg_strides - np.floor(avg_strides)) * 128 if avg_strides else None,
               float(np.max(moving)) / 2 if len(moving) else None]
    scaled = [dynamics[0] * 10, dynamics[1] * 100, dynamics[2] * 10, dynamics[3] * 100, dynamics[4] * 10]
    # lap and session carry the same summary fields under different field numbers
    w.message(LAP, [(254, UINT16, 0), *totals, (0, ENUM, EVENT_LAP), (1, ENUM, EVENT_TYPE_STOP),
                    (25, ENUM, SPORT_RUNNING), (17, UINT8, cadence[0]), (80, UINT8, cadence[1]), (18, UINT8, cadence[2]),
                    (77, UINT16, scaled[0]), (78, UINT16, scaled[1]), (79, UINT16, scaled[2]),
                    (119, UINT16, scaled[3]), (120, UINT16, scaled[4])])
    w.message(SESSION, [(254, UINT16, 0), *totals, (0, ENUM, EVENT_SESSION), (1, ENUM, EVENT_TYPE_STOP),
                        (5, ENUM, SPORT_RUNNING), (6, ENUM, 0), (25, UINT16, 0), (26, UINT16, 1),
                        (18, UINT8, cadence[0]), (92, UINT8, cadence[1]), (19, UINT8, cadence[2]),
                        (89, UINT16, scaled[0]), (90, UINT16, scaled[1]), (91, UINT16, scaled[2]),
                        (133, UINT16, scaled[3]), (134, UINT16, scaled[4])])
    w.message(ACTIVITY, [(253, UINT32, end), (0, UINT32, n * 1000), (1, UINT16, 1), (2, ENUM, 0),
                         (3, ENUM, EVENT_ACTIVITY), (4, ENUM, EVENT_TYPE_STOP)])
    return w.file_bytes()
