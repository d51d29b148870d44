"""The clip's sample index mapped to host time: drift estimated, no jumps.

The clip's crystal runs tens of ppm off the host's clock, and every packet arrives some
milliseconds late, by a varying amount. The packets that arrive soonest show the link's floor:
per ``BUCKET_S`` of sample time the clock keeps the smallest (receive time - nominal sample
time) and fits a line through those minima over the last ``WINDOW_S`` (a lower-envelope fit,
as NTP-style clock filters do). Its slope is the drift, its intercept the offset plus the
link's minimum delay.

The published mapping never jumps: it is a continuous piecewise-linear function of the sample
index. When the fit moves, the mapping bends towards it over ``SLEW_S`` with its rate limited
to ``MAX_SLEW_PPM`` around the fitted drift, so times stay monotonic and smooth.
"""
from __future__ import annotations

from collections import deque

import numpy as np

BUCKET_S = 5.0
WINDOW_S = 600.0
SLEW_S = 10.0
MAX_SLEW_PPM = 2000.0


class SampleClock:
    def __init__(self, rate_hz: int):
        self.rate_hz = rate_hz
        self.minima: deque = deque(maxlen=int(WINDOW_S / BUCKET_S))  # (bucket centre s, min delay s)
        self._bucket: int | None = None
        self._bucket_min = np.inf
        self._bucket_x = 0.0
        self.drift_ppm = 0.0  # how fast the clip's crystal runs against the host's clock
        self.anchor_x: float | None = None  # sample time (s, nominal) where the current piece starts
        self.anchor_y = 0.0  # host time there
        self.slope = 1.0  # host seconds per nominal sample second on the current piece

    def add(self, sample_idx: int, t_host_s: float) -> None:
        """A sample (the last of a live packet) received at host time ``t_host_s``."""
        x = sample_idx / self.rate_hz
        if self.anchor_x is None:
            self.anchor_x, self.anchor_y = x, t_host_s
        bucket = int(x // BUCKET_S)
        if self._bucket is not None and bucket != self._bucket:
            self.minima.append((self._bucket_x, self._bucket_min))
            self._refit(x)
            self._bucket_min = np.inf
        self._bucket = bucket
        if t_host_s - x < self._bucket_min:
            self._bucket_min, self._bucket_x = t_host_s - x, x

    def _refit(self, x_now: float) -> None:
        xs = np.array([m[0] for m in self.minima])
        ys = np.array([m[1] for m in self.minima])
        if len(xs) >= 3 and xs[-1] - xs[0] >= 2 * BUCKET_S:
            slope, icpt = np.polyfit(xs - xs[-1], ys, 1)
            self.drift_ppm = float(-slope * 1e6)  # a fast clip clock: fewer host seconds per sample second
            target_at = lambda x: x + icpt + slope * (x - xs[-1])  # noqa: E731
        else:
            floor = float(ys.min())
            target_at = lambda x: x + floor  # noqa: E731
        # bend the published line towards the fit, continuously, at a limited rate
        y_now = self.host_time_s_at(x_now)
        rate = (target_at(x_now + SLEW_S) - y_now) / SLEW_S
        base = 1.0 - self.drift_ppm * 1e-6
        self.slope = float(np.clip(rate, base - MAX_SLEW_PPM * 1e-6, base + MAX_SLEW_PPM * 1e-6))
        self.anchor_x, self.anchor_y = x_now, y_now

    def host_time_s_at(self, x: float) -> float:
        if self.anchor_x is None:
            return float("nan")
        return self.anchor_y + (x - self.anchor_x) * self.slope

    def host_time_s(self, sample_idx: int) -> float:
        """Host time (time.monotonic seconds) at which the clip took sample ``sample_idx``,
        plus the link's minimum delay."""
        return self.host_time_s_at(sample_idx / self.rate_hz)
