"""The body frame: which of the clip's sensor axes point up, forward and left (docs/frames.md).

The clip can sit at any angle, so the host learns the rotation from the runner's own motion and
keeps it updated:

- **Up** is gravity: the mean specific force over a whole stride (the runner's accelerations
  average out over a stride at a steady pace) or over a still spell. Stride estimates are blended
  with a time constant of ``UP_TAU_STRIDES`` strides, so a clip that slips is followed.
- **The forward line** is the horizontal direction in which the pelvis accelerates most: the
  braking and propulsion of every step are larger than the side-to-side sway, at L5 and at the
  sacrum, walking and running (Zijlstra & Hof 2003; Lee et al. 2010). It is the principal axis
  of the horizontal acceleration over strides.
- **Its sign**: the pelvis brakes in the first ``BRAKE_MS`` after each contact, so the mean
  horizontal acceleration there points backwards. Left and right landings push the pelvis
  sideways in opposite directions and cancel over a stride.

Quality: ``up_spread_deg`` is how far single strides' gravity estimates scatter around the
mean (large on hills and in speed changes); ``line_quality`` is 1 - (side-to-side variance /
fore-aft variance) (0: no dominant axis); ``forward_agreement`` is the length of the mean of the
unit braking directions (1: every step agreed on the sign; near 0: the sign is a guess).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UP_TAU_STRIDES = 20.0  # blend of stride gravity estimates
FORWARD_TAU_STEPS = 40.0  # blend of braking directions
BRAKE_MS = 80.0  # the braking window after a contact
STILL_MAX_SD_DPS = 1.0  # ... and, for the gyro offset, the rate varies less than this
MAX_GYRO_BIAS_DPS = 5.0  # a larger mean rate is a slow turn, not an offset (MEMS offsets: ~1 dps)
STILL_MAX_SD_G = 0.06  # a spell whose |a| varies less than this is still (walking: 0.15+)
MIN_LINE_QUALITY = 0.2  # below this the fore-aft axis is not known
MIN_FORWARD_AGREEMENT = 0.3  # below this the sign of forward is not trusted (no forward lean)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@dataclass
class BodyFrame:
    """Unit vectors in sensor axes. ``matrix() @ v_sensor`` gives (forward, left, up) components."""

    up: np.ndarray
    forward: np.ndarray | None
    up_spread_deg: float
    line_quality: float
    forward_agreement: float
    strides: int
    standing_up: np.ndarray | None  # gravity while standing still, for the forward lean

    def matrix(self) -> np.ndarray:
        if self.forward is None:
            raise ValueError("the forward axis is not known yet")
        (ux, uy, uz), (fx, fy, fz) = self.up.tolist(), self.forward.tolist()
        # up x forward, written out: np.cross costs ~50 us a step on 3-vectors
        return np.array([[fx, fy, fz], [uy * fz - uz * fy, uz * fx - ux * fz, ux * fy - uy * fx], [ux, uy, uz]])

    def as_dict(self) -> dict:
        r = lambda v: None if v is None else [round(float(x), 4) for x in v]  # noqa: E731
        return {"up": r(self.up), "forward": r(self.forward), "up_spread_deg": round(self.up_spread_deg, 2),
                "line_quality": round(self.line_quality, 3),
                "forward_agreement": round(self.forward_agreement, 3), "strides": self.strides,
                "standing_up": r(self.standing_up)}


class FrameCalibrator:
    """Learns the body frame from strides and still spells; ``frame`` is the current estimate."""

    def __init__(self, rate_hz: int):
        self.rate_hz = rate_hz
        self._up_sum = np.zeros(3)  # exponentially weighted sums of stride gravity vectors
        self._up_w = 0.0
        self._spread2 = 0.0  # weighted mean of squared angle to the mean, rad^2
        self._fwd_sum = np.zeros(3)  # weighted sum of braking vectors (g)
        self._fwd_unit_sum = np.zeros(3)  # ... and of their unit vectors
        self._fwd_w = 0.0
        self._hcov = np.zeros((3, 3))  # weighted covariance of the accelerations over strides
        self._standing: np.ndarray | None = None
        self.gyro_bias_dps = np.zeros(3)  # from the last still spell
        self.strides = 0

    def add_still(self, accel_g: np.ndarray, gyro_dps: np.ndarray | None = None) -> bool:
        """Offer a spell of samples; if the clip was still, it sets up, the gyro's zero-rate offset
        and (before the first stride) the standing posture."""
        if len(accel_g) < self.rate_hz // 2:
            return False
        norm = np.linalg.norm(accel_g, axis=1)
        if norm.std() > STILL_MAX_SD_G or not 0.8 < norm.mean() < 1.2:
            return False
        g = _unit(accel_g.mean(axis=0))
        if self._standing is None or not self.strides:
            # The forward lean's zero: standing before the first stride (or the first stop, in a
            # session that starts on the move). A later stop - a traffic light, a runner bent
            # over to get their breath - does not move it, or every lean after it would move too.
            self._standing = g
        if gyro_dps is not None and np.all(gyro_dps.std(axis=0) < STILL_MAX_SD_DPS) and \
                np.linalg.norm(gyro_dps.mean(axis=0)) < MAX_GYRO_BIAS_DPS:
            self.gyro_bias_dps = gyro_dps.mean(axis=0)  # not turning either: what is left is offset
        if self._up_w == 0:
            self._up_sum, self._up_w = g.copy(), 1.0
        return True

    def add_stride(self, accel_g: np.ndarray) -> None:
        """One whole stride of samples (contact to the same foot's next contact). Before the
        first stride a single step is accepted: the vertical motion is a cycle per step too."""
        a_mean = accel_g.mean(axis=0)
        if not 0.7 < np.linalg.norm(a_mean) < 1.4:
            return  # not a steady stride (a stop, a jump): no gravity estimate
        g = _unit(a_mean)
        k = 1.0 / UP_TAU_STRIDES
        if self._up_w:
            mean = _unit(self._up_sum)
            ang2 = float(np.arccos(np.clip(g @ mean, -1, 1))) ** 2
            self._spread2 = (1 - k) * self._spread2 + k * ang2
        self._up_sum = (1 - k) * self._up_sum + k * g if self._up_w else g.copy()
        self._up_w = 1.0
        d = accel_g - a_mean
        cov = d.T @ d / len(d)
        self._hcov = (1 - k) * self._hcov + k * cov if self.strides else cov
        self.strides += 1

    def add_contact(self, accel_after_contact_g: np.ndarray) -> None:
        """The samples of the first ``BRAKE_MS`` after a contact."""
        if self._up_w == 0 or not len(accel_after_contact_g):
            return
        up = _unit(self._up_sum)
        a = accel_after_contact_g.mean(axis=0)
        brake = -(a - (a @ up) * up)  # the horizontal part, reversed: the braking points backwards
        n = float(np.linalg.norm(brake))
        if n == 0:
            return
        k = 1.0 / FORWARD_TAU_STEPS
        self._fwd_sum = (1 - k) * self._fwd_sum + k * brake
        self._fwd_unit_sum = (1 - k) * self._fwd_unit_sum + k * brake / n
        self._fwd_w = (1 - k) * self._fwd_w + k

    @property
    def has_up(self) -> bool:
        return self._up_w > 0

    @property
    def frame(self) -> BodyFrame | None:
        if self._up_w == 0:
            return None
        up = _unit(self._up_sum)
        forward = None
        agreement = float(np.linalg.norm(self._fwd_unit_sum) / self._fwd_w) if self._fwd_w else 0.0
        p = np.eye(3) - np.outer(up, up)  # the horizontal plane
        w, v = np.linalg.eigh(p @ self._hcov @ p)
        quality = float(1 - w[1] / w[2]) if w[2] > 0 else 0.0
        if quality >= MIN_LINE_QUALITY and self.strides >= 2:
            line = _unit(v[:, 2] - (v[:, 2] @ up) * up)
            forward = line if line @ self._fwd_sum >= 0 else -line
        return BodyFrame(up=up, forward=forward, up_spread_deg=float(np.degrees(np.sqrt(self._spread2))),
                         line_quality=quality, forward_agreement=agreement, strides=self.strides,
                         standing_up=self._standing)
