"""Xsens (Movella) DOT CSV exports (docs/import.md#xsens-dot): a block of ``Key:,value`` lines
(``DeviceTag``, ``FirmwareVersion``, ``AppVersion``, ``OutputRate:,60Hz``, ``Measurement Mode``,
``StartTime``), then ``PacketCounter,SampleTimeFine,...`` and one row per sample. SampleTimeFine
is the sensor's clock in us (32 bits: it wraps after 71.6 minutes, unwrapped here).

What the measurement mode exports decides what is read:
- ``Acc_X..Z`` (m/s^2, sensor frame, with gravity) and ``Gyr_X..Z`` (deg/s): as they are;
- ``dv[1..3]`` (m/s per output period) and ``dq_W..Z``: acceleration = dv / period, angular rate
  from the orientation increment;
- the sensor-fusion modes' ``FreeAcc_X..Z`` (m/s^2 in the earth frame, east-north-up, gravity
  removed) with ``Quat_W..Z`` or ``Euler_X..Z`` (deg, roll-pitch-yaw): the sensor's own
  acceleration is rebuilt as R^T (FreeAcc + g up). These modes export no angular rate: the
  recording then has no gyroscope."""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import numpy as np

from strideclip.errors import ImportFormatError
from strideclip.imports import columns as C
from strideclip.imports.columns import G_MPS2
from strideclip.imports.recording import Recording

WRAP_US = 2 ** 32  # SampleTimeFine is a uint32 of microseconds
XYZ = ("X", "Y", "Z")
HEADER_WITHIN_CHARS = 65536  # the Key:,value block and the column header: a few hundred characters


def _header(lines: list[str]) -> tuple[int, dict[str, str], str]:
    """(index of the column header line, the metadata above it, the delimiter)."""
    delimiter = ","
    meta: dict[str, str] = {}
    for k, line in enumerate(lines):
        low = line.strip().lower()
        if low.startswith("sep="):
            delimiter = line.strip()[4:5] or ","
            continue
        if "packetcounter" in low or "sampletimefine" in low:
            return k, meta, delimiter
        key, _, value = line.partition(":")
        if value:
            meta[key.strip().lower()] = value.strip().strip(delimiter).strip()
    raise ImportFormatError("no PacketCounter / SampleTimeFine column header", path="")


def _start_utc(text: str) -> str | None:
    """``2021-08-20_20:21:13_835 GMT+8`` or ``2024-12-09 11:37:39.631 +0100`` as UTC ISO 8601."""
    m = re.search(r"(\d{4}-\d{2}-\d{2})[ _T](\d{2}:\d{2}:\d{2})[._:,](\d{1,6})\s*(?:GMT|UTC)?\s*([+-]\d{1,2}(?::?\d{2})?)?",
                  text)
    if not m:
        return None
    zone = m.group(4) or "+0"
    sign = -1 if zone.startswith("-") else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = (int(digits[:-2] or 0), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
    tz = _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))
    local = _dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{m.group(3).ljust(6, '0')[:6]}").replace(tzinfo=tz)
    return local.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _rotation(quat: np.ndarray) -> np.ndarray:
    """(n, 3, 3) sensor-to-earth rotations of unit quaternions (w, x, y, z)."""
    w, x, y, z = (quat / np.linalg.norm(quat, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=1)


def _euler_rotation(deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) sensor-to-earth rotations of Xsens Euler angles (roll X, pitch Y, yaw Z, degrees):
    R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = np.radians(deg).T
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], axis=-1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], axis=-1),
        np.stack([-sp, cp * sr, cp * cr], axis=-1),
    ], axis=1)


def _rate_from_dq(dq: np.ndarray, period_s: float) -> np.ndarray:
    """Angular rate (deg/s, sensor frame) from orientation increments (w, x, y, z) over one period."""
    dq = dq / np.linalg.norm(dq, axis=1, keepdims=True)
    dq = dq * np.where(dq[:, :1] < 0, -1.0, 1.0)  # the short way round
    vec = dq[:, 1:]
    s = np.linalg.norm(vec, axis=1, keepdims=True)
    angle = 2 * np.arctan2(s[:, 0], dq[:, 0])
    axis = np.divide(vec, s, out=np.zeros_like(vec), where=s > 0)
    return np.degrees(axis * (angle / period_s)[:, None])


def read(paths: list[Path]) -> Recording:
    """The recording in one Xsens DOT CSV export."""
    path, text = C.one_file(paths, "an Xsens DOT export is one CSV per sensor: give one file")
    try:
        at, meta, delimiter = _header(text[:HEADER_WITHIN_CHARS].splitlines())
    except ImportFormatError:
        other = C.looks_like(text)
        said = f": it looks like {other}" if other and "Xsens" not in other else ""
        raise ImportFormatError(f"{path.name}: not an Xsens DOT export (no PacketCounter / SampleTimeFine column "
                                f"header){said}", path=str(path)) from None
    table = C.parse_table(text, path.name, str(path), header_at=at, delimiter=delimiter)
    col = {h.strip().lower(): c for c, h in enumerate(table.header)}

    def group(*names: str) -> np.ndarray | None:
        idx = [col.get(n.lower()) for n in names]
        if any(i is None for i in idx):
            return None
        return table.filled(table.values[:, idx], ", ".join(names))

    stated = re.match(r"\s*(\d+(?:\.\d+)?)", meta.get("outputrate", ""))
    rate = float(stated.group(1)) if stated else None
    notes = []
    fine = group("SampleTimeFine")
    if fine is not None:
        us = fine[:, 0].copy()
        wraps = np.cumsum(np.concatenate([[0], np.diff(us) < -WRAP_US / 2]))
        t = (us + wraps * WRAP_US - us[0]) * 1e-6
        if wraps[-1]:
            notes.append(f"SampleTimeFine wrapped {int(wraps[-1])} time(s) (a 32-bit us clock): unwrapped")
    elif group("PacketCounter") is not None and rate:
        t = (group("PacketCounter")[:, 0] - group("PacketCounter")[0, 0]) / rate
        notes.append(f"no SampleTimeFine: times from PacketCounter at the stated {rate:g} Hz")
    else:
        raise ImportFormatError(f"{path.name}: no SampleTimeFine column (and no PacketCounter with an OutputRate)",
                                path=str(path))
    if len(t) < 2:
        raise ImportFormatError(f"{path.name}: fewer than two samples", path=str(path))
    period = float(np.median(np.diff(t))) if rate is None else 1.0 / rate
    acc = group(*(f"Acc_{a}" for a in XYZ))
    units = {"t": "us" if fine is not None else "PacketCounter"}
    if acc is not None:
        accel_g, units["accel"] = acc / G_MPS2, "m/s^2"
    elif (dv := group("dv[1]", "dv[2]", "dv[3]")) is not None:
        accel_g, units["accel"] = dv / period / G_MPS2, "m/s (dv per period)"
        notes.append(f"acceleration = dv / {period * 1000:.3f} ms (the output period)")
    elif (free := group(*(f"FreeAcc_{a}" for a in XYZ))) is not None:
        quat, euler = group("Quat_W", "Quat_X", "Quat_Y", "Quat_Z"), group(*(f"Euler_{a}" for a in XYZ))
        if quat is None and euler is None:
            raise ImportFormatError(f"{path.name}: FreeAcc without the orientation (Quat_ or Euler_ columns) to turn it "
                                    f"back into the sensor's frame", path=str(path))
        rot = _rotation(quat) if quat is not None else _euler_rotation(euler)
        specific = free + np.array([0.0, 0.0, G_MPS2])  # earth frame, z up: gravity added back
        accel_g = np.einsum("nji,nj->ni", rot, specific) / G_MPS2  # R^T f
        units["accel"] = "m/s^2 (FreeAcc, earth frame)"
        by = "quaternion" if quat is not None else "Euler angles"
        notes.append(f"acceleration rebuilt in the sensor's frame from FreeAcc and the {by} (gravity {G_MPS2} m/s^2 "
                     f"added back)")
    else:
        other = C.looks_like(text)
        raise ImportFormatError(f"{path.name}: no acceleration columns (Acc_X..Z, dv[1..3] or FreeAcc_X..Z)"
                                + (f": it looks like {other}" if other and "Xsens" not in other else ""), path=str(path))
    gyro_dps = group(*(f"Gyr_{a}" for a in XYZ))
    if gyro_dps is not None:
        units["gyro"] = "deg/s"
    elif (dq := group("dq_W", "dq_X", "dq_Y", "dq_Z")) is not None:
        gyro_dps, units["gyro"] = _rate_from_dq(dq, period), "dq per period"
        notes.append("angular rate from the orientation increments dq")
    else:
        notes.append("the measurement mode exports no angular rate (Gyr or dq columns): record in one that does for "
                     "the gyroscope's metrics")
    said = "; ".join(f"{label} {meta[key]}" for key, label in (("measurement mode", "measurement mode"),
                                                               ("filterprofile", "filter profile"),
                                                               ("syncstatus", "sync")) if meta.get(key))
    if said:
        notes.append(f"Xsens DOT {said}")
    sensor = "Xsens DOT" + (f" {meta['devicetag']}" if meta.get("devicetag") else "")
    if meta.get("firmwareversion"):
        sensor += f" (firmware {meta['firmwareversion']})"
    app = "Xsens DOT app" + (f" {meta['appversion']}" if meta.get("appversion") else "")
    start = next((v for k, v in meta.items() if k.startswith("starttime")), "")
    return Recording(t_s=t - t[0], accel_g=accel_g, gyro_dps=gyro_dps, fmt="xsens-dot", files=[path.name],
                     sensor=sensor, app=app, units=units, nominal_rate_hz=rate, start_utc=_start_utc(start),
                     notes=notes, lines=table.lines)
