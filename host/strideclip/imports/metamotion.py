"""MbientLab MetaMotion / MetaWear recordings as the MetaBase app exports them (docs/import.md#metamotion):
one CSV per sensor, each ``epoc (ms),timestamp (-0800),elapsed (s),x-axis (g),y-axis (g),z-axis (g)``
(the gyroscope's in ``deg/s``; the Android app writes ``epoch (ms)`` and ``time (...)``), named
``<name>_<date>_<MAC>_<Sensor>_<rate>Hz_<firmware>.csv``. The accelerometer file and the gyroscope
file, in either order or as the folder holding them, are recognised by their columns, and joined
on the epoch time both share. The rate in the file's name is the one configured."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strideclip.errors import ImportFormatError
from strideclip.imports import checks, join
from strideclip.imports import columns as C
from strideclip.imports.recording import Recording, utc_iso

AXES = ("x", "y", "z")
FILE_NAME = re.compile(r"(?P<device>.*?)_?(?P<date>\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3})_(?P<mac>[0-9A-Fa-f]{12})_"
                       r"(?P<sensor>[A-Za-z ]+?)_(?P<rate>\d+(?:\.\d+)?)Hz(?:_(?P<fw>\d+(?:\.\d+)*))?")
NOT_RAW = ("linear acceleration", "gravity", "euler", "quaternion", "magnetometer")  # MetaBase's other outputs
LINEAR_MEDIAN_G = 0.3  # an "accelerometer" reading a median |a| under this has had gravity removed


@dataclass
class _File:
    path: Path
    table: C.Table
    kind: str  # accel or gyro
    unit: str  # as the generic CSV's key
    unit_text: str
    t_raw: np.ndarray  # epoch ms, or elapsed s where the file has no epoch (as written: scaled after subtracting)
    epoch: bool
    values: np.ndarray  # (n, 3) in the file's unit
    name_parts: dict | None


def _time(table: C.Table) -> tuple[int, bool]:
    """The time column: the epoch in ms (shared by every file of a session), else the elapsed s."""
    for c, head in enumerate(table.header):
        if re.fullmatch(r"epoc?h?\s*\(ms\)", head.strip(), re.I):
            return c, True
    for c, head in enumerate(table.header):
        if re.fullmatch(r"elapsed\s*\(s\)", head.strip(), re.I):
            return c, False
    raise ImportFormatError(f"{table.name}: no time column (epoc (ms) or elapsed (s)): not a MetaBase export",
                            path=table.path)


def _read_file(path: Path) -> _File:
    text = C.read_text(C.load(path), path.name, str(path))
    first = text[:text.find("\n")] if "\n" in text else text
    if not re.search(r"epoc?h?\s*\(ms\)|elapsed\s*\(s\)", first, re.I):
        other = C.looks_like(text)
        said = f": it looks like {other}" if other else ""
        raise ImportFormatError(f"{path.name}: not a MetaBase export (its first line is not epoc (ms),timestamp,"
                                f"elapsed (s),...){said}", path=str(path))
    table = C.open_table(text, path.name, str(path), header_at=0)
    table.read_all(skip=[c for c, h in enumerate(table.header) if re.match(r"\s*(timestamp|time)\s*\(", h, re.I)])
    parts = FILE_NAME.search(path.stem)
    sensor = (parts.group("sensor") if parts else "").strip().lower()
    cols, units = {}, set()
    for c, head in enumerate(table.header):
        name, unit, unit_text = C.split_unit(head)
        m = re.fullmatch(r"([xyz])-axis", name.strip(), re.I)
        if m:
            cols[m.group(1).lower()] = c
            units.add((unit, unit_text))
    if set(cols) != set(AXES):
        raise ImportFormatError(f"{path.name}: no x-axis, y-axis, z-axis columns: not a MetaBase sensor export",
                                path=str(path))
    if len(units) > 1:
        said = ", ".join(sorted(t for _, t in units))
        raise ImportFormatError(f"{path.name}: mixed units in one sensor's axes ({said})", path=str(path))
    unit, unit_text = units.pop()
    kind = C.kind_of(unit) if unit else None
    if kind not in ("accel", "gyro") or any(word in sensor for word in NOT_RAW):
        what = parts.group("sensor") if parts else f"values in {unit_text or 'no unit'}"
        raise ImportFormatError(f"{path.name}: {what}, not the accelerometer (g) or the gyroscope (deg/s) StrideClip "
                                f"reads: export the raw Accelerometer and Gyroscope", path=str(path))
    tc, epoch = _time(table)
    t = table.filled(table.values[:, tc], f"the time ({table.header[tc]})")
    values = table.filled(table.values[:, [cols[a] for a in AXES]], f"the {kind} values")
    return _File(path, table, kind, unit, unit_text, t, epoch, values, parts.groupdict() if parts else None)


def _collect(paths: list[Path]) -> list[Path]:
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file())
            raw = [p for p in found if not any(w in p.name.lower() for w in NOT_RAW)]
            if not raw:
                raise ImportFormatError(f"{path}: no MetaBase accelerometer or gyroscope CSV in the folder",
                                        path=str(path))
            out += raw
        else:
            out.append(path)
    return out


def _one(files: list[_File], kind: str, what: str) -> _File | None:
    found = [f for f in files if f.kind == kind]
    if len(found) > 1:
        raise ImportFormatError(f"more than one {what} file given ({', '.join(f.path.name for f in found)}): give one",
                                path=str(found[1].path))
    return found[0] if found else None


def read(paths: list[Path]) -> Recording:
    """The recording in MetaBase CSVs: the accelerometer's, and the gyroscope's if given."""
    if not paths:
        raise ImportFormatError("no file given", path="")
    files = [_read_file(p) for p in _collect(paths)]
    acc = _one(files, "accel", "accelerometer")
    gyro = _one(files, "gyro", "gyroscope")
    if acc is None:
        raise ImportFormatError(f"{gyro.path.name}: a gyroscope and no accelerometer: give the Accelerometer CSV too "
                                f"(StrideClip steps on the accelerometer)", path=str(gyro.path))
    accel_g = acc.values * C.factor(acc.unit)
    median_g = float(np.median(np.linalg.norm(accel_g, axis=1)))
    if median_g < LINEAR_MEDIAN_G:
        raise ImportFormatError(f"{acc.path.name}: the accelerometer reads a median of {median_g:.3f} g: gravity has been "
                                f"removed (sensor fusion's Linear Acceleration?); export the raw Accelerometer",
                                path=str(acc.path))
    t0, scale = acc.t_raw[0], 1e-3 if acc.epoch else 1.0
    t_s, lines, notes = (acc.t_raw - t0) * scale, acc.table.lines, []
    gyro_dps, units = None, {"t": "ms" if acc.epoch else "s", "accel": acc.unit_text}
    names = [acc.path.name]
    if gyro is not None:
        if not (acc.epoch and gyro.epoch):
            raise ImportFormatError(f"{acc.path.name} / {gyro.path.name}: without the epoc (ms) column each file's "
                                    f"elapsed time starts at its own first sample: they cannot be joined",
                                    path=str(gyro.path))
        if acc.name_parts and gyro.name_parts and acc.name_parts["mac"].upper() != gyro.name_parts["mac"].upper():
            raise ImportFormatError(f"{acc.path.name} and {gyro.path.name} come from two sensors "
                                    f"({acc.name_parts['mac']}, {gyro.name_parts['mac']})", path=str(gyro.path))
        checks.require_increasing(gyro.t_raw * scale, gyro.table.where, str(gyro.path))
        units["gyro"] = gyro.unit_text
        t_s, accel_g, gyro_dps, lines, joined = join.attach_gyro(t_s, accel_g, lines, (gyro.t_raw - t0) * scale,
                                                               gyro.values * C.factor(gyro.unit),
                                                               f"the gyroscope ({gyro.path.name})")
        notes += [f"gyroscope ({gyro.path.name}) interpolated onto the accelerometer's times (epoch ms)"] + joined
        names.append(gyro.path.name)
    parts = acc.name_parts
    rate = float(parts["rate"]) if parts else None
    sensor = "MbientLab MetaWear" + (f" {parts['mac'].upper()}" if parts else "")
    if parts and parts.get("fw"):
        sensor += f" (firmware {parts['fw']})"
    if parts and parts["device"]:
        sensor += f", named {parts['device']}"
    start_utc = None
    if acc.epoch and len(t_s):
        start_utc = utc_iso(float(t0 * scale + t_s[0]))
    if not acc.epoch:
        notes.append("no epoc (ms) column: times from elapsed (s)")
    if len(t_s):
        t_s = t_s - t_s[0]
    return Recording(t_s=t_s, accel_g=accel_g, gyro_dps=gyro_dps, fmt="metamotion", files=names, sensor=sensor,
                     app="MetaBase", units=units, nominal_rate_hz=rate, start_utc=start_utc, notes=notes,
                     lines=lines if len(names) == 1 else None)
