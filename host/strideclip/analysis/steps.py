"""The host's face of ``clipcore.steps``: the very code the clip runs, fed from numpy arrays.

    det = StepDetector(sampling_rate_hz=208).detect(counts)   # (n, 6) int16 raw counts
    det.events_                                               # one row per step

Streaming use (live sessions, replay): ``feed(counts)`` returns the steps confirmed by that block
(``feed_events``: the same steps as tuples of plain ints, which a session reads),
``resync(next_idx)`` after a gap in the stream.

Two engines run the one source, ``clipcore.steps.detect_block``, with identical events: plain
Python (the reference and the fallback) and the same functions compiled ahead of time by numba
(steps_compiled.py; 50-100x faster on whole recordings). ``engine``, by default
$STRIDECLIP_DETECTOR, else "auto":

- "python": plain Python only;
- "compiled": compiled from the first sample (loading the build takes milliseconds, building it
  the first time ~10 s);
- "auto": compiled from the first sample when the build is there. Else plain Python, and once
  this process has fed COMPILE_AFTER_SAMPLES (so a short command never starts a build), a
  process of its own builds it on another core while plain Python goes on, never stalling; the
  detector takes the build when it is done. A block of COMPILE_AFTER_SAMPLES or more (a whole
  recording) waits for the build in any case.

Without numba, or if it fails on this source, both of the last two run plain Python.
"""
from __future__ import annotations

import array
import os

import numpy as np

from clipcore import steps as core
from strideclip.analysis import steps_compiled
from strideclip.errors import ConfigError

EVENT_DTYPE = np.dtype([
    ("ic_idx", "i8"),  # sample index of the initial contact
    ("side", "u1"),  # 0 left, 1 right, 255 unknown
    ("impact_mg", "i4"),  # peak |a| of the step
    ("step_samples", "i4"),  # samples since the previous contact (0: none)
    ("emit_idx", "i8"),  # sample index at which the detector confirmed the step
    ("rotation_units", "i4"),  # yaw range of the stride ending here, detector units (0: none)
    ("flags", "u1"),  # bit 0: first step after a reset
])
assert (core.E_IC, core.E_SIDE, core.E_IMPACT_MG, core.E_STEP_SAMPLES, core.E_EMIT, core.E_ROT, core.E_FLAGS,
        core.EV_FIELDS) == tuple(range(8))  # clipcore's event layout is EVENT_DTYPE's order

ENGINES = ("auto", "compiled", "python")
ENGINE_ENV = "STRIDECLIP_DETECTOR"
# A process that feeds fewer samples (5 1/4 min at 208 Hz) never starts a build: plain Python
# takes ~0.2 s for them. One that feeds more usually has a run of 30-60 min to go, where the
# compiled detector saves ~2 s an hour.
COMPILE_AFTER_SAMPLES = 1 << 16
_python_samples = 0  # fed through plain Python by "auto" detectors in this process
_looked_for_build = False  # whether an "auto" detector of this process has looked for a build
_NO_EVENTS = np.zeros(0, EVENT_DTYPE)  # what most feeds return: one shared empty array
_INT16 = np.int16  # (looked up once: feed_events runs for every packet)


def default_engine() -> str:
    """$STRIDECLIP_DETECTOR, else "auto"."""
    engine = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
    if engine not in ENGINES:
        raise ConfigError(f"${ENGINE_ENV}={engine!r} is not one of {', '.join(ENGINES)}", key=ENGINE_ENV)
    return engine


class StepDetector:
    def __init__(self, *, sampling_rate_hz: int = 208, accel_ug_per_lsb: int = 488, max_events: int = 64,
                 first_idx: int = 0, engine: str | None = None):
        if engine is not None and engine not in ENGINES:
            raise ConfigError(f"detector engine {engine!r} is not one of {', '.join(ENGINES)}", key="engine")
        self.sampling_rate_hz = sampling_rate_hz
        self.accel_ug_per_lsb = accel_ug_per_lsb
        self.engine = engine or default_engine()
        self._start(max_events, first_idx)
        self.events_ = np.zeros(0, EVENT_DTYPE)
        self.engine_ = ""  # the engine that ran the last block: "compiled" or "python"

    def _start(self, max_events: int, first_idx: int) -> None:
        self._core = core.StepDetector(self.sampling_rate_hz, self.accel_ug_per_lsb, max_events)
        c = self._core
        self._buffers = (c.cfg, c.state, c.table, c.ring_n, c.ring_d, c.ring_y, c.ring_th, c.events)
        self._views = None  # numpy views of the same buffers, for the compiled engine
        self._block = None  # the compiled detect_block once this detector has run it
        self._offset = first_idx  # clip sample index of the first sample fed

    def detect(self, counts: np.ndarray, *, first_idx: int = 0) -> StepDetector:
        """Run over a whole recording (from a fresh state); fills ``events_``."""
        self._start(self._core.max_events, first_idx)
        self.events_ = self.feed(counts)
        return self

    def feed(self, counts: np.ndarray) -> np.ndarray:
        """Feed the next block of samples; return the steps it confirmed (EVENT_DTYPE rows)."""
        events = self.feed_events(counts)
        return np.array(events, EVENT_DTYPE) if events else _NO_EVENTS

    def feed_events(self, counts: np.ndarray) -> list[tuple]:
        """``feed``, each step a tuple of plain ints in EVENT_DTYPE's field order (a session's path,
        a block per packet: no array is built for it to take apart again)."""
        counts = np.ascontiguousarray(counts, dtype=_INT16)
        n = len(counts)
        block = self._block or self._compiled(n)  # (a session feeds a block per packet: the usual case first)
        if block is None:
            block, samples, bufs = core.detect_block, array.array("h", counts.tobytes()), self._buffers
            self.engine_ = "python"
        else:
            if self._views is None:
                self._views = steps_compiled.buffers(self._core)
                self._block = block  # compiled from now on: the build does not go away
            samples, bufs = counts.ravel(), self._views  # (a view: counts is contiguous)
            self.engine_ = "compiled"
        state, max_events = self._core.state, self._core.max_events
        before = state[core.S_IDX]
        n_ev = block(samples, 0, n, *bufs, max_events)
        done = state[core.S_IDX] - before
        events = self._rows(n_ev) if n_ev else []
        while done < n:  # the events buffer filled up (a long block): read it and go on where it stopped
            before = state[core.S_IDX]
            n_ev = block(samples, done, n - done, *bufs, max_events)
            done += state[core.S_IDX] - before
            if n_ev:
                events += self._rows(n_ev)
        return events

    def _compiled(self, n: int) -> steps_compiled.Block | None:
        """The compiled detect_block for a block of n samples, or None for plain Python."""
        global _python_samples, _looked_for_build
        if self.engine == "python":
            return None
        block = steps_compiled.loaded()
        if block is not None or steps_compiled.failure():
            return block
        if self.engine == "compiled" or n >= COMPILE_AFTER_SAMPLES:
            return steps_compiled.load()
        if not _looked_for_build:  # a build there already loads in milliseconds
            _looked_for_build = True
            if steps_compiled.cached():
                return steps_compiled.load()
        if _python_samples >= COMPILE_AFTER_SAMPLES:
            block = steps_compiled.load_soon()
        if block is None:
            _python_samples += n
        return block

    def _rows(self, n_ev: int) -> list[tuple]:
        ev, off = self._core.events, self._offset  # fields in EVENT_DTYPE's order (clipcore's E_*)
        return [(ev[e] + off, ev[e + 1], ev[e + 2], ev[e + 3], ev[e + 4] + off, ev[e + 5], ev[e + 6])
                for e in range(0, n_ev * core.EV_FIELDS, core.EV_FIELDS)]

    def resync(self, next_idx: int) -> None:
        """The stream jumped to clip sample next_idx (samples were lost)."""
        self._core.resync(next_idx - self._offset)
