"""phyphox exports (phone; docs/import.md#phyphox): the CSV of an experiment, in any of the app's
five CSV dialects (comma, tab or semicolon; decimal point or comma). Given as files, as the folder
an export was unpacked to, or as the export's zip archive itself.

- "Acceleration with g": ``Raw Data.csv``, ``"Time (s)","Acceleration x (m/s^2)",...``;
- "Gyroscope": ``Raw Data.csv``, ``"Time (s)","Gyroscope x (rad/s)",...``;
- newer sensor exports: ``Accelerometer.csv`` / ``Gyroscope.csv``, ``"Time (s)","X (m/s^2)",...``
  (a bare axis: the file's name says which sensor);
- an experiment holding both in one CSV (each group of columns after its own time column).

Columns are recognised by their unit and axis, not their words (phyphox translates them).
"Acceleration (without g)" has gravity removed by the phone: StrideClip finds the body's frame
from gravity, so it is refused unless the file also has the gravity columns to add back.
``meta/device.csv`` names the phone, ``meta/time.csv`` when the experiment started: with it two
experiments (accelerometer and gyroscope recorded apart) are put on one clock."""
from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from strideclip.errors import ImportFormatError
from strideclip.imports import checks, join
from strideclip.imports import columns as C
from strideclip.imports.recording import Recording, utc_iso

AXES = ("x", "y", "z")
WITHOUT_G_MEDIAN_G = 0.3  # a phone's "acceleration" with a median |a| under this has had gravity removed


@dataclass
class _Source:
    """One CSV of an export, with the experiment's metadata."""

    name: str  # as messages name it
    path: str
    text: str
    stem: str  # the file's name without extension: Accelerometer, Gyroscope, Raw Data, ...
    clock: str  # CSVs of one experiment (one folder or archive) share a clock
    device: dict[str, str] = field(default_factory=dict)
    start_epoch_s: float | None = None  # meta/time.csv: when the experiment's time was 0
    starts: int = 0  # START events in meta/time.csv (more than one: paused and resumed)
    explicit: bool = True  # named by the user (not found in a folder)


@dataclass
class _Stream:
    kind: str  # accel, linear, gravity, gyro
    t: np.ndarray
    xyz: np.ndarray  # in the file's unit
    unit: str  # as the generic CSV's key
    unit_text: str
    rows: np.ndarray  # rows of the source's table
    source: _Source
    table: C.Table
    group: int  # the time column heading it


def _meta(read_member) -> tuple[dict[str, str], float | None, int]:
    """meta/device.csv's properties, and from meta/time.csv the epoch of experiment time 0 and
    how many START events it has."""
    device, start, starts = {}, None, 0
    text = read_member("device.csv")
    if text:
        for row in csv.reader(io.StringIO(text)):
            if len(row) >= 2 and row[0] != "property":
                device[row[0].strip()] = row[1].strip()
    text = read_member("time.csv")
    if text:
        for row in csv.reader(io.StringIO(text)):
            if row and row[0].strip().upper() == "START":
                starts += 1
                try:
                    if start is None:
                        start = float(row[2]) - float(row[1])
                except (IndexError, ValueError):
                    pass
    return device, start, starts


def _from_folder(folder: Path, files: list[Path], explicit: bool) -> list[_Source]:
    def member(name: str) -> str | None:
        p = folder / "meta" / name
        return C.read_text(C.load(p), p.name, str(p)) if p.is_file() else None

    device, start, starts = _meta(member)
    def label(p: Path) -> str:  # a file found in an export's folder is named with the folder (two may be Raw Data.csv)
        return p.name if explicit else f"{folder.name}/{p.name}"

    return [_Source(label(p), str(p), C.read_text(C.load(p), label(p), str(p)), p.stem, str(folder.resolve()), device,
                    start, starts, explicit) for p in files]


def _from_zip(path: Path) -> list[_Source]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ImportFormatError(f"{path.name}: not a readable zip archive ({e})", path=str(path)) from None
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]

        def member(name: str) -> str | None:
            hit = next((n for n in names if n.replace("\\", "/").endswith("meta/" + name)), None)
            return C.read_text(_unpacked(archive, hit, path), f"{path.name}/{hit}", str(path)) if hit else None

        device, start, starts = _meta(member)
        tables = [n for n in names if n.lower().endswith(".csv") and "meta/" not in n.replace("\\", "/")]
        if not tables:
            raise ImportFormatError(f"{path.name}: no CSV in the archive: not a phyphox CSV export", path=str(path))
        return [_Source(f"{path.name}/{n}", str(path),
                        C.read_text(_unpacked(archive, n, path), f"{path.name}/{n}", str(path)),
                        Path(n).stem, str(path.resolve()), device, start, starts, False) for n in tables]


def _unpacked(archive: zipfile.ZipFile, member: str, path: Path) -> bytes:
    """One file of the archive; ImportFormatError if it cannot be unpacked (a copy cut short, a bad
    checksum, a password)."""
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError) as e:
        raise ImportFormatError(f"{path.name}/{member}: cannot be unpacked ({e})", path=str(path)) from None


def _collect(paths: list[Path]) -> list[_Source]:
    sources: list[_Source] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file())
            if not found:
                raise ImportFormatError(f"{path}: no CSV in the folder: not an unpacked phyphox export", path=str(path))
            sources += _from_folder(path, found, explicit=False)
        elif path.suffix.lower() == ".zip" or (path.is_file() and zipfile.is_zipfile(path)):
            sources += _from_zip(path)
        else:
            sources += _from_folder(path.parent, [path], explicit=True)
    return sources


def _accel_kind(name: str, stem: str) -> str:
    words = f"{name} {stem if name.lower() in AXES else ''}".lower()
    return "linear" if "linear" in words else "gravity" if "gravity" in words else "accel"


def _streams(src: _Source) -> list[_Stream]:
    """Every complete x, y, z group of acceleration or angular rate in one CSV."""
    if not src.text.strip():
        raise ImportFormatError(f"{src.name}: an empty file", path=src.path)
    other = C.looks_like(src.text)
    if other and "phyphox" not in other:
        raise ImportFormatError(f"{src.name}: not a phyphox export: it looks like {other}", path=src.path)
    table = C.parse_table(src.text, src.name, src.path)
    groups: dict[int, dict[str, dict[str, int]]] = {}
    units: dict[tuple[int, str], set[tuple[str, str]]] = {}
    group = None
    for c, head in enumerate(table.header):
        name, unit, text = C.split_unit(head)
        what = C.kind_of(unit) if unit else None
        if what == "t":
            group = c
            groups[c] = {}
            continue
        axis = name.split()[-1].lower() if name.split() else ""
        if what not in ("accel", "gyro") or axis not in AXES:
            continue  # an absolute value, or a column of something else
        if group is None:
            raise ImportFormatError(f"{src.name}: column {head!r} comes before any time column", path=src.path)
        kind = "gyro" if what == "gyro" else _accel_kind(name, src.stem)
        groups[group].setdefault(kind, {})[axis] = c
        units.setdefault((group, kind), set()).add((unit, text))
    out = []
    for g, kinds in groups.items():
        for kind, cols in kinds.items():
            if set(cols) != set(AXES):
                continue
            if len(units[(g, kind)]) > 1:
                said = ", ".join(sorted(t for _, t in units[(g, kind)]))
                raise ImportFormatError(f"{src.name}: mixed units in one sensor's axes ({said})", path=src.path)
            unit, text = next(iter(units[(g, kind)]))
            rows = np.flatnonzero(np.isfinite(table.values[:, g]))
            xyz = table.filled(table.values[np.ix_(rows, [cols[a] for a in AXES])], f"the {kind} values", rows)
            t = table.values[rows, g] * C.factor(C.split_unit(table.header[g])[1])
            out.append(_Stream(kind, t, xyz, unit, text, rows, src, table, g))
    return out


def _one(streams: list[_Stream], kind: str, what: str) -> _Stream | None:
    found = [s for s in streams if s.kind == kind]
    if len(found) > 1:
        raise ImportFormatError(f"more than one {what} recording given ({', '.join(s.source.name for s in found)}): "
                                f"give one", path=found[1].source.path)
    return found[0] if found else None


def _accelerometer(streams: list[_Stream], sources: list[_Source]) -> tuple[_Stream, np.ndarray, list[str]]:
    """The acceleration with gravity, in g, and notes."""
    acc = _one(streams, "accel", "accelerometer")
    if acc is not None:
        return acc, acc.xyz * C.factor(acc.unit), []
    linear, gravity = _one(streams, "linear", "linear acceleration"), _one(streams, "gravity", "gravity")
    if linear is not None and gravity is not None and linear.source is gravity.source and linear.group == gravity.group:
        total = linear.xyz * C.factor(linear.unit) + gravity.xyz * C.factor(gravity.unit)
        return linear, total, ["acceleration = the phone's linear acceleration + its gravity estimate"]
    if linear is not None:
        raise ImportFormatError(f"{linear.source.name}: phyphox's acceleration without g (gravity removed by the phone): "
                                f"StrideClip finds the body's frame from gravity; record with \"Acceleration with g\"",
                                path=linear.source.path)
    first = sources[0]
    if any(s.kind == "gyro" for s in streams):
        raise ImportFormatError(f"{first.name}: a gyroscope and no accelerometer: give the \"Acceleration with g\" "
                                f"export too (StrideClip steps on the accelerometer)", path=first.path)
    other = C.looks_like(first.text)
    said = f": it looks like {other}" if other and "phyphox" not in other else ""
    raise ImportFormatError(f"{first.name}: no acceleration columns (a time column, then x, y, z in m/s^2 or g)"
                            f"{said}", path=first.path)


def _gyro_clock_offset(acc: _Stream, gyro: _Stream) -> float:
    """Seconds to add to the gyro's times to put them on the accelerometer's clock."""
    a, g = acc.source, gyro.source
    if a.clock == g.clock:
        return 0.0
    if a.start_epoch_s is None or g.start_epoch_s is None:
        raise ImportFormatError(f"{a.name} and {g.name} are two experiments and no meta/time.csv says when each "
                                f"started: their times cannot be put on one clock (give the unpacked folders or the "
                                f"zip archives)", path=g.path)
    return g.start_epoch_s - a.start_epoch_s


def _describe(src: _Source) -> tuple[str, str]:
    d = src.device
    phone = " ".join(v for v in (d.get("deviceBrand", ""), d.get("deviceModel", "")) if v)
    chip = ", ".join(v for v in (d.get("accelerometer Name", ""), d.get("accelerometer Vendor", "")) if v)
    sensor = f"{phone or 'phone'}" + (f" (accelerometer: {chip})" if chip else "")
    app = "phyphox" + (f" {d['version']}" if d.get("version") else "")
    app += f" (build {d['build']})" if d.get("build") else ""
    return sensor, app


def read(paths: list[Path]) -> Recording:
    """The recording in a phyphox export (files, an unpacked folder, or the zip archive)."""
    if not paths:
        raise ImportFormatError("no file given", path="")
    sources = _collect(paths)
    streams = []
    for src in sources:
        found = _streams(src)
        if not found and src.explicit and len(sources) > 1:
            raise ImportFormatError(f"{src.name}: no acceleration or gyroscope columns", path=src.path)
        streams += found
    acc, accel_g, notes = _accelerometer(streams, sources)
    t0 = acc.t[0]
    t_s, lines = acc.t - t0, acc.table.lines[acc.rows]
    median_g = float(np.median(np.linalg.norm(accel_g, axis=1)))
    if median_g < WITHOUT_G_MEDIAN_G:
        raise ImportFormatError(f"{acc.source.name}: the acceleration reads a median of {median_g:.3f} g: gravity has "
                                f"been removed (\"Acceleration (without g)\"?); record with \"Acceleration with g\"",
                                path=acc.source.path)
    gyro = _one(streams, "gyro", "gyroscope")
    gyro_dps, units = None, {"t": "s", "accel": acc.unit_text}
    files = [acc.source.name]
    if gyro is not None:
        units["gyro"] = gyro.unit_text
        values = gyro.xyz * C.factor(gyro.unit)
        if gyro.source is acc.source and gyro.group == acc.group:
            gyro_dps = values
        else:
            checks.require_increasing(gyro.t, lambda k: gyro.table.where(gyro.rows[k]), gyro.source.path)
            t_gyro = gyro.t + _gyro_clock_offset(acc, gyro) - t0
            t_s, accel_g, gyro_dps, lines, joined = join.attach_gyro(t_s, accel_g, lines, t_gyro, values,
                                                                   f"the gyroscope ({gyro.source.name})")
            notes += [f"gyroscope ({gyro.source.name}) interpolated onto the accelerometer's times"] + joined
            if gyro.source is not acc.source:
                files.append(gyro.source.name)
    if acc.source.starts > 1:
        notes.append(f"the experiment was started {acc.source.starts} times (meta/time.csv): its times are read as "
                     f"they are")
    start = acc.source.start_epoch_s
    start_utc = None
    if start is not None:
        start_utc = utc_iso(start + float(t0 + (t_s[0] if len(t_s) else 0.0)))
    sensor, app = _describe(acc.source)
    if len(t_s):
        t_s = t_s - t_s[0]
    return Recording(t_s=t_s, accel_g=accel_g, gyro_dps=gyro_dps, fmt="phyphox", files=files, sensor=sensor, app=app,
                     units=units, nominal_rate_hz=None, start_utc=start_utc, notes=notes,
                     lines=lines if len(files) == 1 else None)
