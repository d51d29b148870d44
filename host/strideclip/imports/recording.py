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

    @property
    def n_samples(self) -> int:
        return len(self.t_s)
