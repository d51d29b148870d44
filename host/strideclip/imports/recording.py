"""What every format's reader returns: the recording as the file holds it, in physical units,
before anything is resampled or converted to a clip's counts (docs/import.md)."""
from __future__ import annotations

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
    source = f"{', '.join(map(str, imported.get('files') or []))} ({what}) at {imported.get('rate_hz')} Hz"
    blank: dict[str, list[str]] = {}
    for metric, why in (imported.get("not_measured") or {}).items():
        blank.setdefault(str(why), []).append(str(metric).removesuffix("_deg").replace("_", " "))
    return source, [f"{', '.join(metrics)} ({why})" for why, metrics in blank.items()]
