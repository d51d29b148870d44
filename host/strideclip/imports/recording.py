"""What every format's reader returns: the recording as the file holds it, in physical units,
before anything is resampled or converted to a clip's counts (docs/import.md)."""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Recording:
    """One sensor's recording. ``t_s`` are the file's own sample times (seconds from its first
    sample; irregular spacing, gaps and repeated times are left as the file has them: the
    conversion to a session log turns gaps into the log's gaps and never invents samples).
    Axes are the sensor's own; ``gyro_dps`` is None when the sensor or the file has no gyro."""

    t_s: np.ndarray  # (n,) float64, seconds
    accel_g: np.ndarray  # (n, 3) float64, g (1 g = 9.80665 m/s^2), sensor axes
    gyro_dps: np.ndarray | None  # (n, 3) float64, degrees/s on the same times, or None
    fmt: str  # the format's name, as --format takes it
    files: list[str]  # the source files' names (no folders: a log may travel)
    sensor: str = ""  # what recorded it, as the file says (model, serial) where it says
    app: str = ""  # the app or logger that wrote the file, with its version where known
    units: dict = field(default_factory=dict)  # the file's own units: {"accel": "m/s^2", "gyro": "rad/s", "t": "ms"}
    nominal_rate_hz: float | None = None  # the rate the file states, if it states one
    start_utc: str | None = None  # ISO 8601, when the file says when it started
    notes: list[str] = field(default_factory=list)  # what the reader had to decide, for the log's provenance
    lines: np.ndarray | None = None  # each sample's line in its file (1-based), where one file holds them: for messages

    @property
    def n_samples(self) -> int:
        return len(self.t_s)


def provenance_said(imported: dict) -> tuple[str, list[str]]:
    """A log header's ``imported`` (docs/import.md) in words, as replay and report say it: where
    the recording came from (its files, then its format, sensor and app, and its rate: "run.csv
    (csv) at 100.0 Hz"), and each group of metrics it cannot have, with why ("pelvic drop, pelvic
    rotation, pelvic tilt (no gyroscope in the recording)")."""
    what = ", ".join(str(x) for x in (imported.get("format"), imported.get("sensor"), imported.get("app")) if x)
    files = imported.get("files")
    source = f"{', '.join(map(str, files if isinstance(files, list) else []))} ({what}) at {imported.get('rate_hz')} Hz"
    blank: dict[str, list[str]] = {}
    not_measured = imported.get("not_measured")  # (a log's header is untrusted: a damaged one may hold anything)
    for metric, why in (not_measured.items() if isinstance(not_measured, dict) else ()):
        blank.setdefault(str(why), []).append(str(metric).removesuffix("_deg").replace("_", " "))
    return source, [f"{', '.join(metrics)} ({why})" for why, metrics in blank.items()]


def utc_iso(epoch_s: float) -> str | None:
    """A start time the file gives in seconds since 1970 as ISO 8601 UTC (to the ms); None for a
    value no clock gives (not finite, before year 1 or after 9999: a damaged file's)."""
    if not math.isfinite(epoch_s):
        return None
    try:
        return _dt.datetime.fromtimestamp(epoch_s, _dt.timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return None
