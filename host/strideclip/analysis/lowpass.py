"""The metrics' low-pass filters without scipy: a 2nd-order Butterworth run forwards and then
backwards over each window (zero phase), each pass started from steady state at its first sample
(``scipy.signal.lfilter`` with ``lfilter_zi`` times that sample, as the engine first did).

Importing ``scipy.signal`` took about a second of CPU, more than a minute's log takes to analyse,
for three functions: the coefficients have a closed form (``butter2``), and a pass of this
linear filter over a window is a matrix product. ``y = T @ x`` with ``T`` lower triangular: the
impulse response on its diagonals, plus, in its first column, the response to the steady-state
start. A causal filter's first n outputs do not depend on later samples, so one matrix serves
every window up to its size, and a batch of windows is one product per pass (docs/metrics.md:
it agrees with the recursion to ~1e-15 of the signal).
"""
from __future__ import annotations

import functools
import math

import numpy as np


def butter2(fc_hz: float, rate_hz: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(b, a) of ``scipy.signal.butter(2, fc_hz, fs=rate_hz)``: the analogue prototype through the
    bilinear transform, pre-warped at fc."""
    k = math.tan(math.pi * fc_hz / rate_hz)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b0 = k * k * norm
    return (b0, 2.0 * b0, b0), (1.0, 2.0 * (k * k - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k * k) * norm)


def steady_state(b: tuple[float, float, float], a: tuple[float, float, float]) -> tuple[float, float]:
    """The filter's state (transposed direct form II) after a long input of 1: ``scipy.signal.lfilter_zi``."""
    (b0, b1, b2), (_, a1, a2) = b, a
    z0 = (b1 + b2 - (a1 + a2) * b0) / (1.0 + a1 + a2)
    return z0, b2 - a2 * (b0 + z0)


def filter_pass(x: list[float], b: tuple[float, float, float], a: tuple[float, float, float],
                z: tuple[float, float]) -> list[float]:
    """One pass of the recursion from state z, sample by sample, in scipy.signal.lfilter's order."""
    (b0, b1, b2), (_, a1, a2) = b, a
    z0, z1 = z
    out = []
    for v in x:
        y = z0 + b0 * v
        z0 = z1 + v * b1 - y * a1
        z1 = v * b2 - y * a2
        out.append(y)
    return out


@functools.lru_cache(maxsize=8)
def _pass_matrix_t(fc_hz: float, rate_hz: float, n: int) -> np.ndarray:
    """T transposed (n, n): a pass over a row x of up to n samples, from steady state at x[0], is x @ T.T."""
    b, a = butter2(fc_hz, rate_hz)
    h = np.array(filter_pass([1.0] + [0.0] * (n - 1), b, a, (0.0, 0.0)))
    t = np.zeros((n, n))
    lag = np.subtract.outer(np.arange(n), np.arange(n))
    t[lag >= 0] = h[lag[lag >= 0]]
    t[:, 0] += filter_pass([0.0] * n, b, a, steady_state(b, a))  # the steady-state start, scaled by x[0]
    return np.ascontiguousarray(t.T)


class ZeroPhaseLowPass:
    """Butterworth low-passes (2nd order, one per cut-off) applied forwards and backwards to rows of
    up to ``max_len`` samples."""

    def __init__(self, fcs_hz: tuple[float, ...], rate_hz: int, max_len: int):
        self.max_len = max_len
        self._t = np.stack([_pass_matrix_t(float(fc), float(rate_hz), max_len) for fc in fcs_hz])

    def __call__(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """x (rows, width): each row's first ``lengths`` samples filtered by every cut-off:
        (cut-offs, rows, width); what lies past a row's length is not defined."""
        width = x.shape[1]
        if width > self.max_len:
            raise ValueError(f"a window of {width} samples: the filters were made for {self.max_len}")
        out = np.empty((len(self._t), *x.shape))
        if (lengths == width).all():  # (one window, say) each row reversed is the array's columns reversed
            for f, t in enumerate(self._t[:, :width, :width]):  # 2-D products: one BLAS call each
                out[f] = ((x @ t)[:, ::-1] @ t)[:, ::-1]
            return out
        # Each row reversed in place, as positions in the flattened array (np.take: the quickest gather).
        back = (np.arange(len(x))[:, None] * width + np.maximum(lengths[:, None] - 1 - np.arange(width), 0)).ravel()
        for f, t in enumerate(self._t[:, :width, :width]):
            y = (x @ t).take(back).reshape(x.shape)
            out[f] = (y @ t).take(back).reshape(x.shape)
        return out
