"""Numbers over many windows of samples at once: the metrics engine's per-step arithmetic, batched.

Each step's windows (its own samples, its stride's, a margin for the filters) have their own
lengths; a batch lays them out as rows of one array, padded at the end with zeros, with a mask of
the real samples. Every reduction here ignores the padding, and every running sum or filter is
causal, so a row's values are those of its window alone: a batch of one step and a batch of a
whole log give the same numbers (up to the order of floating-point additions, docs/metrics.md).
"""
from __future__ import annotations

import numpy as np

G_MPS2 = 9.80665
_COUNT = np.arange(1 << 14)  # 0, 1, 2 ... (windows are shorter): sliced, not made in every call


def rows_index(starts: np.ndarray, lengths: np.ndarray, pad_at: int,
               width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index, mask) laying out segments ``x[starts[k]:starts[k] + lengths[k]]`` as rows ``x[index]``
    padded to one width with ``x[pad_at]``."""
    width = int(lengths.max()) if width is None else width
    ramp = _COUNT[:width]
    mask = ramp < lengths[:, None]
    return np.where(mask, starts[:, None] + ramp, pad_at), mask


def segment_sums(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of ``x[:, starts[k]:starts[k] + lengths[k]]`` (lengths >= 1; x has a column past the last end)."""
    bounds = np.empty(2 * len(starts), np.int64)
    bounds[0::2], bounds[1::2] = starts, starts + lengths
    return np.add.reduceat(x, bounds, axis=1)[:, ::2]


def segment_mean_cov(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (3, segments) and covariance (6: xx, xy, xz, yy, yz, zz; segments) of the 3-vectors
    (columns of x) in each segment: the mean of the products less the product of the means."""
    mean = segment_sums(x, starts, lengths) / lengths
    moments = segment_sums(products_of(x), starts, lengths) / lengths
    return mean, moments - mean[[0, 0, 0, 1, 1, 2]] * mean[[0, 1, 2, 1, 2, 2]]


def products_of(x: np.ndarray) -> np.ndarray:
    """The 6 distinct products of 3-vectors' components (columns of x): xx, xy, xz, yy, yz, zz."""
    out = np.empty((6, x.shape[1]))
    for row, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))):
        np.multiply(x[i], x[j], out=out[row])  # into one array: big temporaries cost more than the products
    return out


def masked_max(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, x, -np.inf).max(axis=1)


def _range_from_zero(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """max - min of each row's samples, the first of which is 0 (so the padding may be 0 too)."""
    x = x * mask
    return x.max(axis=1) - x.min(axis=1)


def _ramps(n: np.ndarray, width: int) -> np.ndarray:
    """Each row's 0 .. 1 over its own n samples (zeros for n = 1)."""
    return _COUNT[:width] / np.maximum(n - 1, 1)[:, None]


def _last(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    return x[_COUNT[:len(x)], n - 1]


def still_stats(accel_g: np.ndarray, gyro_dps: np.ndarray | None) -> tuple:
    """What decides whether spells (rows of equal length) were still: mean and SD of |a|, the mean
    specific force; the gyro's SD and mean per axis (None without a gyro)."""
    norm = np.sqrt((accel_g * accel_g).sum(axis=2))
    gyro = (None, None) if gyro_dps is None else (gyro_dps.std(axis=1), gyro_dps.mean(axis=1))
    return norm.mean(axis=1), norm.std(axis=1), accel_g.mean(axis=1), *gyro


def oscillation_cm(vertical_g: np.ndarray, mask: np.ndarray, n: np.ndarray, rate_hz: int) -> np.ndarray:
    """Vertical excursion over each step by double integration; the step is a cycle, so the mean
    acceleration (sensor bias, tilt) and the end-to-end drift of position are removed."""
    v = vertical_g * mask
    acc = (v - (v.sum(axis=1) / n)[:, None]) * G_MPS2 * mask
    vel = np.cumsum(acc, axis=1) / rate_hz
    vel -= ((vel * mask).sum(axis=1) / n)[:, None]
    pos = np.cumsum(vel * mask, axis=1) / rate_hz
    first = pos[:, :1]
    pos -= first + (_last(pos, n)[:, None] - first) * _ramps(n, pos.shape[1])
    return _range_from_zero(pos, mask) * 100


def angle_range_deg(rate_dps: np.ndarray, mask: np.ndarray, n: np.ndarray, rate_hz: int) -> np.ndarray:
    """Range of motion of an angle over each window from its rate (0 past a row's n samples); the
    window is taken as a whole cycle, so a straight line between its ends (gyro bias, a steady
    turn) is removed."""
    angle = np.cumsum(rate_dps, axis=1) / rate_hz
    angle -= angle[:, :1]
    angle -= _ramps(n, angle.shape[1]) * _last(angle, n)[:, None]
    return _range_from_zero(angle, mask)


def first_fall_below(x: np.ndarray, mask: np.ndarray, level: float) -> np.ndarray:
    """Index of the first sample under ``level`` after each row's peak (-1: none)."""
    peak = np.where(mask, x, -np.inf).argmax(axis=1)
    below = mask & (x < level) & (_COUNT[:x.shape[1]] >= peak[:, None])
    return np.where(below.any(axis=1), below.argmax(axis=1), -1)


class StepBatch:
    """Many steps' samples side by side: ``flat`` (6 channels: accel g, gyro dps; samples), each
    step's copy in turn, and where its windows lie in it (``windows``: start, length, samples in
    the step, which begins ``margin`` into the window; ``strides``: start, length, or None); with
    what the body frame learns from them: each step's braking window's mean and its stride's mean
    and covariance (None without a stride)."""

    def __init__(self, copies: list[np.ndarray], windows: list[tuple], strides: list[tuple | None], margin: int,
                 brake_n: int):
        sizes = np.array([len(c) for c in copies])
        base = np.cumsum(sizes) - sizes
        self.flat = np.concatenate([*(c.T for c in copies), np.zeros((6, 1))], axis=1)  # a zero column past every end
        w = np.array(windows)
        self.win_start, self.win_len, self.n_step = base + w[:, 0], w[:, 1], w[:, 2]
        brake_len = np.minimum(brake_n, self.win_len - margin)
        self.brake_mean = (segment_sums(self.flat[:3], self.win_start + margin, brake_len) / brake_len).T.tolist()
        s = np.array([(0, 0) if s is None else s for s in strides])
        self.stride_start, self.stride_len = base + s[:, 0], s[:, 1]  # length 0: no stride
        self.stride_mean: list = [None] * len(copies)
        self.stride_cov: list = [None] * len(copies)
        strided = np.flatnonzero(self.stride_len)
        if len(strided):
            mean, cov = segment_mean_cov(self.flat[:3], self.stride_start[strided], self.stride_len[strided])
            for k, m, c in zip(strided.tolist(), mean.T.tolist(), cov.T.tolist()):
                self.stride_mean[k], self.stride_cov[k] = m, c

    def rows(self, channels: slice, starts: np.ndarray, lengths: np.ndarray,
             width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The channels' segments as rows padded with zeros (rows_index): (channels, rows, width),
        and the mask."""
        idx, mask = rows_index(starts, lengths, self.flat.shape[1] - 1, width)
        return self.flat[channels].take(idx, axis=1), mask  # (take: several times quicker than [:, idx])


def along(x: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Rows of 3-vectors (3, rows, width) projected on each row's axis (rows, 3)."""
    return x[0] * axes[:, 0:1] + x[1] * axes[:, 1:2] + x[2] * axes[:, 2:3]
