"""The generic CSV: any table of samples, one row each, read through a column mapping
(``--columns t=time:ms,ax=accX:mps2,...``; docs/import.md). ``strideclip import --format csv``
and ``strideclip evaluate csv`` both read with it.

Without a mapping the columns are ``t_s, acc_x, acc_y, acc_z`` and, if all three are there,
``gyr_x, gyr_y, gyr_z`` (``evaluate csv``'s names); ``t_s`` may be missing when a rate is given.
A given mapping is the whole of it: the columns it leaves out are not read. A column is named by
its header or by its number (``#2``, from 1; the only way in a file without a header). The
table is read as every format's is (``imports.columns``: delimiters, decimal commas, comments),
and its units are that module's keys.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from strideclip.errors import ImportFormatError
from strideclip.imports import columns as C
from strideclip.imports.columns import UNITS
from strideclip.imports.recording import Recording

KEYS = ("t", "ax", "ay", "az", "gx", "gy", "gz")
ACCEL, GYRO = ("ax", "ay", "az"), ("gx", "gy", "gz")
DEFAULT_COLUMNS = {"t": "t_s", "ax": "acc_x", "ay": "acc_y", "az": "acc_z", "gx": "gyr_x", "gy": "gyr_y", "gz": "gyr_z"}

Mapping = dict[str, tuple[str, str | None]]  # key -> (column: a header name or "#N", unit or None)


def _kind(key: str) -> str:
    return "t" if key == "t" else "accel" if key in ACCEL else "gyro"


def parse_columns(spec: str) -> Mapping:
    """``t=time:ms,ax=accX:mps2,...`` as a mapping. Raises ValueError naming what is wrong: an
    unknown key or unit, a key twice, mixed units within the accelerometer or the gyroscope, an
    incomplete set of axes."""
    out: Mapping = {}
    for part in (p.strip() for p in spec.split(",")):
        key, eq, rest = part.partition("=")
        key = key.strip().lower()
        if key not in KEYS or not eq or not rest.strip():
            raise ValueError(f"{part!r}: write KEY=COLUMN[:UNIT] with KEY one of {', '.join(KEYS)}")
        if key in out:
            raise ValueError(f"{key} is mapped twice")
        column, unit = rest.strip(), None
        name, colon, maybe_unit = column.rpartition(":")
        if colon and maybe_unit.strip().lower() in UNITS[_kind(key)]:
            column, unit = name.strip(), maybe_unit.strip().lower()
        elif colon and name and maybe_unit.strip().isalnum():
            raise ValueError(f"{part!r}: {maybe_unit!r} is not a unit of {key}; one of "
                             f"{', '.join(UNITS[_kind(key)])}")
        out[key] = (column, unit)
    _check_sets(out)
    return out


def _check_sets(m: Mapping) -> None:
    for group, what in ((ACCEL, "accelerometer"), (GYRO, "gyroscope")):
        named = [k for k in group if k in m]
        if group is ACCEL and len(named) < 3:
            raise ValueError(f"map all three accelerometer axes (ax, ay, az); missing {', '.join(k for k in group if k not in m)}")
        if 0 < len(named) < 3:
            raise ValueError(f"map all three gyroscope axes (gx, gy, gz) or none; missing {', '.join(k for k in group if k not in m)}")
        units = {m[k][1] for k in named if m[k][1]}
        if len(units) > 1:
            said = ", ".join(f"{k} in {m[k][1]}" for k in named if m[k][1])
            raise ValueError(f"mixed units in the {what}: {said}: a sensor gives its three axes in one unit")


def _resolve(path: Path, header: list[str] | None, mapping: Mapping, width: int) -> dict[str, int]:
    """key -> column index; ImportFormatError naming the columns the file does not have."""
    out, missing = {}, []
    for key, (column, _) in mapping.items():
        if column.startswith("#") and column[1:].isdigit():
            idx = int(column[1:]) - 1
            if not 0 <= idx < width:
                missing.append(f"{column} (the file has {width} columns)")
            out[key] = idx
        elif header is None:
            raise ImportFormatError(f"{path}: no header line: name the columns by number, e.g. --columns "
                                    f"t=#1,ax=#2,ay=#3,az=#4", path=str(path))
        elif column in header:
            out[key] = header.index(column)
        else:
            missing.append(column)
    if missing:
        have = f" (it has: {', '.join(header)})" if header else ""
        todo = "" if "t" not in mapping or mapping["t"][0] not in missing else \
            " (a file without times: give --rate-hz)"
        raise ImportFormatError(f"{path}: missing column(s) {', '.join(missing)}{have}: map them with --columns{todo}",
                                path=str(path))
    return out


def _default_mapping(path: Path, header: list[str] | None, rate_hz: float | None) -> Mapping:
    if header is None:
        raise ImportFormatError(f"{path}: no header line: name the columns by number with --columns, e.g. "
                                f"t=#1,ax=#2,ay=#3,az=#4", path=str(path))
    wanted = [k for k in KEYS if k != "t" and (k in ACCEL or all(DEFAULT_COLUMNS[g] in header for g in GYRO))]
    if rate_hz is None:  # the times from the file's own column (or --rate-hz for a file without one)
        wanted.insert(0, "t")
    return {k: (DEFAULT_COLUMNS[k], None) for k in wanted}


def read(paths: list[Path], *, columns: str | Mapping | None = None, rate_hz: float | None = None,
         accel_unit: str = "g", gyro_unit: str = "dps", time_unit: str = "s") -> Recording:
    """The recording in ``paths`` (one CSV file). ``columns``: a mapping (``parse_columns``, or
    its text); ``rate_hz``: the rows' rate where the file has no time column; the ``*_unit``s
    apply to columns whose mapping gives none. Raises ImportFormatError (the file, the line)."""
    path, text = C.one_file(paths, "the generic CSV reads one file")
    seems = C.looks_like(text)
    other = f"; it looks like {seems}" if seems else ""
    try:
        table = C.open_table(text, str(path), str(path))
    except ImportFormatError as e:
        raise ImportFormatError(f"{e}{other}", path=str(path)) from None
    del text  # (its rows are the table's: a large file is not held twice)
    try:
        mapping = parse_columns(columns) if isinstance(columns, str) else columns
    except ValueError as e:
        raise ImportFormatError(f"--columns: {e}", path=str(path)) from None
    try:
        mapping = mapping or _default_mapping(path, table.header, rate_hz)
        index = _resolve(path, table.header, mapping, table.width)
    except ImportFormatError as e:  # not the columns asked for: perhaps not a generic CSV at all
        raise ImportFormatError(f"{e}{other}", path=str(path)) from None
    if "t" in mapping and rate_hz is not None and columns:
        raise ImportFormatError(f"{path}: both a time column (t={mapping['t'][0]}) and --rate-hz: give one",
                                path=str(path))
    if "t" not in mapping and rate_hz is None:
        raise ImportFormatError(f"{path}: no time column mapped (t=NAME) and no --rate-hz: the samples' times "
                                f"are unknown", path=str(path))
    keys = list(mapping)
    data = table.read([index[k] for k in keys])
    for i, k in enumerate(keys):
        table.filled(data[:, i], f"column {table.label(index[k])}")
    units = {kind: default for kind, default in (("t", time_unit), ("accel", accel_unit), ("gyro", gyro_unit))}
    for k in keys:
        if mapping[k][1]:
            units[_kind(k)] = mapping[k][1]
    col = {k: data[:, i] for i, k in enumerate(keys)}
    n_rows, notes = len(table.lines), []
    if "t" in col:
        t_s = (col["t"] - col["t"][0]) * UNITS["t"][units["t"]] if n_rows else np.zeros(0)
    else:
        t_s = np.arange(n_rows) / rate_hz
        notes.append(f"no time column: one row every 1/{rate_hz:g} s (--rate-hz)")
    accel = np.column_stack([col[k] for k in ACCEL]) * UNITS["accel"][units["accel"]]
    gyro = None
    if all(k in col for k in GYRO):
        gyro = np.column_stack([col[k] for k in GYRO]) * UNITS["gyro"][units["gyro"]]
    said = {"accel": C.UNIT_TEXT.get(units["accel"], units["accel"])}
    if gyro is not None:
        said["gyro"] = C.UNIT_TEXT.get(units["gyro"], units["gyro"])
    if "t" in col:
        said["t"] = units["t"]
    return Recording(t_s=t_s, accel_g=accel, gyro_dps=gyro, fmt="csv", files=[path.name], units=said,
                     nominal_rate_hz=rate_hz, notes=notes, lines=table.lines, sensor="", app="")


def describe(mapping: Mapping) -> str:
    """A mapping as --columns takes it."""
    return ",".join(f"{k}={c}" + (f":{u}" if u else "") for k, (c, u) in mapping.items())

