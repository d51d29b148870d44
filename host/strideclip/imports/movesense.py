"""Movesense recordings as JSON (docs/import.md#movesense): the DataLogger's log converted by
Movesense's ``sbem2json`` (``{"Samples": [{"MeasIMU6": {"Timestamp": ..., "ArrayAcc": ...}}, ...]}``,
its arrays either a list of ``{x, y, z}`` or one ``{x: [...], y: [...], z: [...]}``), or the
Logbook's JSON (``{"Meas": {"IMU6": [{"Timestamp": ..., "ArrayAcc": [...], ...}]}}``), or a list
of subscription notifications (``{"Uri": ".../Meas/IMU6/104", "Body": {...}}``).

Each packet holds a few samples and the time of its first in ms (the sensor's own clock); the
samples between are spaced by the packet's share of the time to the next packet (the median
packet period where a packet is missing: the log has a gap there). ArrayAcc is in m/s^2, ArrayGyro
in deg/s (Movesense's API); IMU6/IMU9 packets carry both on one clock, separate Acc and Gyro
resources are joined onto the accelerometer's times. A ``TimeDetailed`` record (utcTime in us at
relativeTime in ms) dates the recording."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from strideclip.errors import ImportFormatError
from strideclip.imports import columns as C
from strideclip.imports import join
from strideclip.imports.recording import Recording, utc_iso

ACC_UNIT, GYRO_UNIT = "mps2", "dps"  # Movesense's API: ArrayAcc in m/s^2, ArrayGyro in deg/s
RATE_IN_URI = re.compile(r"Meas/(?:IMU\d*m?|Acc|Gyro)/(\d+)", re.I)
SERIAL_IN_URI = re.compile(r"^/?(\d{9,12})/", re.I)
REGULAR = 0.25  # a packet step this close to the median: the next packet follows without a gap


def _vectors(array, name: str, where: str, path: str) -> np.ndarray:
    """ArrayAcc / ArrayGyro as (n, 3): [{x, y, z}, ...] or [{x: [...], y: [...], z: [...]}]."""
    try:
        if isinstance(array, dict):
            array = [array]
        if array and isinstance(array[0].get("x"), list):
            return np.concatenate([np.column_stack([np.asarray(a[k], float) for k in "xyz"]) for a in array])
        return np.array([[float(a[k]) for k in "xyz"] for a in array], float).reshape(-1, 3)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ImportFormatError(f"{where}: {name} is not a list of x, y, z values", path=path) from None


def _timestamp(entry: dict) -> float | None:
    if isinstance(entry.get("Timestamp"), (int, float)):
        return float(entry["Timestamp"])
    for value in entry.values():  # sbem2json nests it: {"MeasIMU9": {"Timestamp": t}, "ArrayAcc": ...}
        if isinstance(value, dict) and isinstance(value.get("Timestamp"), (int, float)):
            return float(value["Timestamp"])
    return None


def _walk(node, found: list, context: dict, name: str, path: str) -> None:
    """Every packet (a dict with ArrayAcc or ArrayGyro) in document order, and what dates them."""
    if isinstance(node, list):
        for item in node:
            _walk(item, found, context, name, path)
        return
    if not isinstance(node, dict):
        return
    uri = node.get("Uri") or node.get("uri")
    if isinstance(uri, str):
        context.setdefault("uris", []).append(uri)
    detailed = node.get("TimeDetailed")
    if isinstance(detailed, dict) and all(type(detailed.get(k)) in (int, float) for k in ("utcTime", "relativeTime")):
        context.setdefault("utc", (float(detailed["relativeTime"]), float(detailed["utcTime"])))  # (else: undated)
    if "ArrayAcc" in node or "ArrayGyro" in node:
        t = _timestamp(node)
        if t is None:
            raise ImportFormatError(f"{name}: a packet of samples without its Timestamp", path=path)
        found.append((t, _vectors(node["ArrayAcc"], "ArrayAcc", name, path) if "ArrayAcc" in node else None,
                      _vectors(node["ArrayGyro"], "ArrayGyro", name, path) if "ArrayGyro" in node else None))
        return
    for value in node.values():
        _walk(value, found, context, name, path)


def _samples(packets: list[tuple[float, np.ndarray]], name: str, path: str) -> tuple[np.ndarray, np.ndarray, float]:
    """One stream's packets as sample times (s) and values, and its rate from the packets."""
    packets = sorted(packets, key=lambda p: p[0])  # a log lists its resources in turn, each in order
    stamps = np.array([p[0] for p in packets], float)
    sizes = np.array([len(p[1]) for p in packets])
    if len(packets) < 2 or sizes.min() == 0:
        raise ImportFormatError(f"{name}: fewer than two packets of samples", path=path)
    step = np.diff(stamps)
    per_sample = float(np.median(step / sizes[:-1]))  # ms
    if per_sample <= 0:
        raise ImportFormatError(f"{name}: the packets' Timestamps do not advance", path=path)
    spacing = np.full(len(packets), per_sample)
    regular = np.abs(step / sizes[:-1] - per_sample) <= REGULAR * per_sample
    spacing[:-1][regular] = (step / sizes[:-1])[regular]
    t = np.concatenate([s + np.arange(n) * d for s, n, d in zip(stamps, sizes, spacing)])
    values = np.concatenate([p[1] for p in packets])
    return t / 1000.0, values, 1000.0 / per_sample


def read(paths: list[Path]) -> Recording:
    """The recording in one Movesense JSON file."""
    path, text = C.one_file(paths, "a Movesense recording is one JSON file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        other = C.looks_like(text)
        said = f" it looks like {other}" if other and "Movesense" not in other else f" {e.msg} at line {e.lineno}"
        cut = " (the file ends too soon: cut short?)" if e.pos >= len(text.rstrip()) else ""
        raise ImportFormatError(f"{path.name}: not a Movesense JSON:{said}{cut}", path=str(path)) from None
    found, context = [], {}
    _walk(doc, found, context, path.name, str(path))
    acc = [(t, a) for t, a, _ in found if a is not None and len(a)]
    gyr = [(t, g) for t, _, g in found if g is not None and len(g)]
    if not acc:
        what = "gyroscope packets and no ArrayAcc" if gyr else "no ArrayAcc or ArrayGyro packets"
        raise ImportFormatError(f"{path.name}: {what}: StrideClip steps on the accelerometer (log Meas/IMU6 or "
                                f"Meas/Acc)", path=str(path))
    t, accel, rate = _samples(acc, path.name, str(path))
    notes, gyro_dps = [], None
    units = {"t": "ms", "accel": "m/s^2"}
    combined = [(t0, a, g) for t0, a, g in found if a is not None and g is not None]
    if combined and all(len(a) == len(g) for _, a, g in combined) and len(combined) == len(acc):
        _, gyro_values, _ = _samples([(t0, g) for t0, _, g in combined], path.name, str(path))
        gyro_dps = gyro_values * C.factor(GYRO_UNIT)
    elif gyr:
        t_g, g_values, _ = _samples(gyr, path.name, str(path))
        t, accel, gyro_dps, _, joined = join.attach_gyro(t, accel, None, t_g, g_values * C.factor(GYRO_UNIT),
                                                      "the gyroscope (ArrayGyro)")
        notes += ["ArrayGyro interpolated onto the ArrayAcc times"] + joined
    if gyro_dps is not None:
        units["gyro"] = "deg/s"
    uris = context.get("uris", [])
    stated = next((float(m.group(1)) for u in uris for m in [RATE_IN_URI.search(u)] if m), None)
    serial = next((m.group(1) for u in uris for m in [SERIAL_IN_URI.match(u)] if m), "")
    start_utc = None
    if "utc" in context and len(t):
        rel_ms, utc_us = context["utc"]
        start_utc = utc_iso(utc_us / 1e6 + (t[0] * 1000.0 - rel_ms) / 1000.0)
    notes.append(f"sample times from the packets' Timestamps: {rate:.2f} Hz measured")
    app = "Movesense DataLogger (sbem2json)" if isinstance(doc, dict) and "Samples" in doc else "Movesense"
    return Recording(t_s=t - t[0], accel_g=accel * C.factor(ACC_UNIT), gyro_dps=gyro_dps, fmt="movesense",
                     files=[path.name], sensor=f"Movesense {serial}".strip(), app=app, units=units,
                     nominal_rate_hz=stated, start_utc=start_utc, notes=notes)
