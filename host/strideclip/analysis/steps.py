"""The host's face of ``clipcore.steps``: the very code the clip runs, fed from numpy arrays.

    det = StepDetector(sampling_rate_hz=208).detect(counts)   # (n, 6) int16 raw counts
    det.events_                                               # one row per step

Streaming use (live sessions, replay): ``feed(counts)`` returns the steps confirmed by that block,
``resync(next_idx)`` after a gap in the stream.
"""
from __future__ import annotations

import array

import numpy as np

from clipcore import steps as core

EVENT_DTYPE = np.dtype([
    ("ic_idx", "i8"),  # sample index of the initial contact
    ("side", "u1"),  # 0 left, 1 right, 255 unknown
    ("impact_mg", "i4"),  # peak |a| of the step
    ("step_samples", "i4"),  # samples since the previous contact (0: none)
    ("emit_idx", "i8"),  # sample index at which the detector confirmed the step
    ("rotation_units", "i4"),  # yaw range of the stride ending here, detector units (0: none)
    ("flags", "u1"),  # bit 0: first step after a reset
])


class StepDetector:
    def __init__(self, *, sampling_rate_hz: int = 208, accel_ug_per_lsb: int = 488, max_events: int = 64,
                 first_idx: int = 0):
        self.sampling_rate_hz = sampling_rate_hz
        self.accel_ug_per_lsb = accel_ug_per_lsb
        self._core = core.StepDetector(sampling_rate_hz, accel_ug_per_lsb, max_events)
        self._offset = first_idx  # clip sample index of the first sample fed
        self.events_ = np.zeros(0, EVENT_DTYPE)

    def detect(self, counts: np.ndarray, *, first_idx: int = 0) -> StepDetector:
        """Run over a whole recording (from a fresh state); fills ``events_``."""
        self._core = core.StepDetector(self.sampling_rate_hz, self.accel_ug_per_lsb, self._core.max_events)
        self._offset = first_idx
        self.events_ = self.feed(counts)
        return self

    def feed(self, counts: np.ndarray) -> np.ndarray:
        """Feed the next block of samples; return the steps it confirmed (EVENT_DTYPE rows)."""
        counts = np.ascontiguousarray(counts, dtype=np.int16)
        flat = array.array("h", counts.reshape(-1).tobytes())
        n = len(counts)
        rows = []
        done = 0
        while done < n:
            n_ev = self._core.feed(flat, done, n - done)
            used = self._core.consumed
            ev = self._core.events
            for k in range(n_ev):
                e = k * core.EV_FIELDS
                rows.append((ev[e + core.E_IC] + self._offset, ev[e + core.E_SIDE], ev[e + core.E_IMPACT_MG],
                             ev[e + core.E_STEP_SAMPLES], ev[e + core.E_EMIT] + self._offset, ev[e + core.E_ROT],
                             ev[e + core.E_FLAGS]))
            done += used
        return np.array(rows, dtype=EVENT_DTYPE)

    def resync(self, next_idx: int) -> None:
        """The stream jumped to clip sample next_idx (samples were lost)."""
        self._core.resync(next_idx - self._offset)
