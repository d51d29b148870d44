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

import math
from dataclasses import dataclass

import numpy as np

from strideclip.analysis.stepwindows import segment_mean_cov, still_stats

UP_TAU_STRIDES = 20.0  # blend of stride gravity estimates
FORWARD_TAU_STEPS = 40.0  # blend of braking directions
BRAKE_MS = 80.0  # the braking window after a contact
STILL_MAX_SD_DPS = 1.0  # ... and, for the gyro offset, the rate varies less than this
MAX_GYRO_BIAS_DPS = 5.0  # a larger mean rate is a slow turn, not an offset (MEMS offsets: ~1 dps)
STILL_MAX_SD_G = 0.06  # a spell whose |a| varies less than this is still (walking: 0.15+)
MIN_LINE_QUALITY = 0.2  # below this the fore-aft axis is not known
MIN_FORWARD_AGREEMENT = 0.3  # below this the sign of forward is not trusted (no forward lean)


Vec = tuple[float, float, float]  # a vector in sensor axes, as plain floats (3-vectors in numpy cost µs per call)


def _dot(u: Vec, v: Vec) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _unit(v: Vec) -> Vec:
    x, y, z = v
    n = math.sqrt(x * x + y * y + z * z)
    return (x / n, y / n, z / n) if n > 0 else v


def _blend(old: tuple, new: tuple, k: float) -> tuple:
    """(1 - k) * old + k * new, element by element (3 or 6 elements)."""
    j = 1 - k
    if len(old) == 3:
        return j * old[0] + k * new[0], j * old[1] + k * new[1], j * old[2] + k * new[2]
    (o0, o1, o2, o3, o4, o5), (n0, n1, n2, n3, n4, n5) = old, new  # (written out: a step's covariance, every step)
    return j * o0 + k * n0, j * o1 + k * n1, j * o2 + k * n2, j * o3 + k * n3, j * o4 + k * n4, j * o5 + k * n5


def body_rows(up: Vec, forward: Vec) -> tuple[Vec, Vec, Vec]:
    """The rotation from sensor to body axes, as its rows (forward, left, up); left = up x forward."""
    (ux, uy, uz), (fx, fy, fz) = up, forward
    return forward, (uy * fz - uz * fy, uz * fx - ux * fz, ux * fy - uy * fx), up


def _principal_horizontal(h: tuple, up: Vec) -> tuple[float, Vec]:
    """The horizontal principal axis of the covariance h (xx, xy, xz, yy, yz, zz) and its quality,
    1 - minor / major variance: the 2 x 2 eigenproblem in the plane normal to up, in closed form."""
    ux, uy, uz = up
    ax, ay, az = abs(ux), abs(uy), abs(uz)
    # The plane is spanned by e1, the sensor axis furthest from up made horizontal, and up x e1.
    if ax <= ay and ax <= az:
        e1 = _unit((1 - ux * ux, -ux * uy, -ux * uz))
    elif ay <= az:
        e1 = _unit((-uy * ux, 1 - uy * uy, -uy * uz))
    else:
        e1 = _unit((-uz * ux, -uz * uy, 1 - uz * uz))
    (x1, y1, z1), (x2, y2, z2) = e1, body_rows(up, e1)[1]
    hxx, hxy, hxz, hyy, hyz, hzz = h
    h1 = (hxx * x1 + hxy * y1 + hxz * z1, hxy * x1 + hyy * y1 + hyz * z1, hxz * x1 + hyz * y1 + hzz * z1)
    a, b = x1 * h1[0] + y1 * h1[1] + z1 * h1[2], x2 * h1[0] + y2 * h1[1] + z2 * h1[2]
    c = (x2 * (hxx * x2 + hxy * y2 + hxz * z2) + y2 * (hxy * x2 + hyy * y2 + hyz * z2)
         + z2 * (hxz * x2 + hyz * y2 + hzz * z2))
    mid, r = (a + c) / 2, math.hypot((a - c) / 2, b)
    major, minor = mid + r, mid - r
    p, q = (major - c, b) if a >= c else (b, major - a)  # its eigenvector in (e1, e2)
    return (1 - minor / major if major > 0 else 0.0), _unit((p * x1 + q * x2, p * y1 + q * y2, p * z1 + q * z2))


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
        return np.array(body_rows(tuple(self.up.tolist()), tuple(self.forward.tolist())))

    def as_dict(self) -> dict:
        r = lambda v: None if v is None else [round(float(x), 4) for x in v]  # noqa: E731
        return {"up": r(self.up), "forward": r(self.forward), "up_spread_deg": round(self.up_spread_deg, 2),
                "line_quality": round(self.line_quality, 3),
                "forward_agreement": round(self.forward_agreement, 3), "strides": self.strides,
                "standing_up": r(self.standing_up)}


class FrameCalibrator:
    """Learns the body frame from strides and still spells; ``frame`` is the current estimate.

    The state is plain floats, updated from each spell's or stride's statistics (``still``,
    ``stride``, ``contact``: the metrics engine computes those for many windows at once); the
    ``add_*`` methods take samples. The frame is worked out again only after a change."""

    def __init__(self, rate_hz: int):
        self.rate_hz = rate_hz
        self._up_sum: Vec = (0.0, 0.0, 0.0)  # exponentially weighted sum of stride gravity vectors
        self._up: Vec = self._up_sum  # ... as a unit vector (set with it: every step reads it two or three times)
        self._up_w = 0.0
        self._spread2 = 0.0  # weighted mean of squared angle to the mean, rad^2
        self._fwd_sum: Vec = (0.0, 0.0, 0.0)  # weighted sum of braking vectors (g)
        self._fwd_unit_sum: Vec = (0.0, 0.0, 0.0)  # ... and of their unit vectors
        self._fwd_w = 0.0
        self._hcov = (0.0,) * 6  # weighted covariance of the accelerations over strides: xx, xy, xz, yy, yz, zz
        self._standing: Vec | None = None
        self.gyro_bias_dps = np.zeros(3)  # from the last still spell
        self.strides = 0
        self._now: tuple | None = None  # (up, forward or None, quality, agreement), None: to work out

    def add_still(self, accel_g: np.ndarray, gyro_dps: np.ndarray | None = None) -> bool:
        """Offer a spell of samples; if the clip was still, it sets up, the gyro's zero-rate offset
        and (before the first stride) the standing posture."""
        if len(accel_g) < self.rate_hz // 2:
            return False
        stats = still_stats(accel_g[None], None if gyro_dps is None else gyro_dps[None])
        return self.still(*(None if v is None else v[0].tolist() for v in stats))

    def still(self, norm_mean_g: float, norm_sd_g: float, accel_mean_g: list, gyro_sd_dps: list | None,
              gyro_mean_dps: list | None) -> bool:
        """``add_still`` from the spell's statistics (stepwindows.still_stats)."""
        if norm_sd_g > STILL_MAX_SD_G or not 0.8 < norm_mean_g < 1.2:
            return False
        g = _unit(tuple(accel_mean_g))
        if self._standing is None or not self.strides:
            # The forward lean's zero: standing before the first stride (or the first stop, in a
            # session that starts on the move). A later stop - a traffic light, a runner bent
            # over to get their breath - does not move it, or every lean after it would move too.
            self._standing = g
        if gyro_sd_dps is not None and max(gyro_sd_dps) < STILL_MAX_SD_DPS and \
                math.sqrt(_dot(gyro_mean_dps, gyro_mean_dps)) < MAX_GYRO_BIAS_DPS:
            self.gyro_bias_dps = np.array(gyro_mean_dps)  # not turning either: what is left is offset
        if self._up_w == 0:
            self._up_sum, self._up_w = g, 1.0
            self._up = _unit(self._up_sum)
        self._now = None
        return True

    def add_stride(self, accel_g: np.ndarray) -> None:
        """One whole stride of samples (contact to the same foot's next contact). Before the
        first stride a single step is accepted: the vertical motion is a cycle per step too."""
        x = np.concatenate([accel_g, np.zeros((1, 3))]).T  # a column past the end (segment_sums)
        mean, cov = segment_mean_cov(x, np.array([0]), np.array([len(accel_g)]))
        self.stride(mean[:, 0].tolist(), cov[:, 0].tolist())

    def stride(self, mean_g: list, cov: list) -> None:
        """``add_stride`` from the stride's mean specific force and its covariance (xx, xy, xz, yy, yz, zz)."""
        mx, my, mz = mean_g
        n = math.sqrt(mx * mx + my * my + mz * mz)
        if not 0.7 < n < 1.4:
            return  # not a steady stride (a stop, a jump): no gravity estimate
        g = (mx / n, my / n, mz / n)
        k = 1.0 / UP_TAU_STRIDES
        if self._up_w:
            ang = math.acos(max(-1.0, min(1.0, _dot(g, self._up))))
            self._spread2 = (1 - k) * self._spread2 + k * ang * ang
            self._up_sum = _blend(self._up_sum, g, k)
        else:
            self._up_sum, self._up_w = g, 1.0
        self._up = _unit(self._up_sum)
        self._hcov = _blend(self._hcov, cov, k) if self.strides else tuple(cov)
        self.strides += 1
        self._now = None

    def add_contact(self, accel_after_contact_g: np.ndarray) -> None:
        """The samples of the first ``BRAKE_MS`` after a contact."""
        if len(accel_after_contact_g):
            self.contact(accel_after_contact_g.mean(axis=0).tolist())

    def contact(self, mean_g: list) -> None:
        """``add_contact`` from the mean specific force of those samples."""
        if self._up_w == 0:
            return
        ux, uy, uz = self._up
        ax, ay, az = mean_g
        d = ax * ux + ay * uy + az * uz
        bx, by, bz = d * ux - ax, d * uy - ay, d * uz - az  # the horizontal part, reversed: braking points back
        n = math.sqrt(bx * bx + by * by + bz * bz)
        if n == 0:
            return
        k = 1.0 / FORWARD_TAU_STEPS
        self._fwd_sum = _blend(self._fwd_sum, (bx, by, bz), k)
        self._fwd_unit_sum = _blend(self._fwd_unit_sum, (bx / n, by / n, bz / n), k)
        self._fwd_w = (1 - k) * self._fwd_w + k
        self._now = None

    @property
    def has_up(self) -> bool:
        return self._up_w > 0

    def now(self) -> tuple | None:
        """(up, forward or None, line quality, forward agreement) as floats; None before up is known."""
        if self._now is None and self._up_w:
            up = self._up
            agreement = math.sqrt(_dot(self._fwd_unit_sum, self._fwd_unit_sum)) / self._fwd_w if self._fwd_w else 0.0
            quality, line = _principal_horizontal(self._hcov, up)
            forward = None
            if quality >= MIN_LINE_QUALITY and self.strides >= 2:
                forward = line if _dot(line, self._fwd_sum) >= 0 else (-line[0], -line[1], -line[2])
            self._now = (up, forward, quality, agreement)
        return self._now

    @property
    def standing_up(self) -> Vec | None:
        return self._standing

    @property
    def frame(self) -> BodyFrame | None:
        now = self.now()
        if now is None:
            return None
        up, forward, quality, agreement = now
        return BodyFrame(up=np.array(up), forward=None if forward is None else np.array(forward),
                         up_spread_deg=math.degrees(math.sqrt(self._spread2)), line_quality=quality,
                         forward_agreement=agreement, strides=self.strides,
                         standing_up=None if self._standing is None else np.array(self._standing))


def forward_lean_deg(rows: tuple[Vec, Vec, Vec], standing_up: Vec, gravity: Vec) -> float:
    """The pelvis's pitch now against standing (+ forward), from the gravity seen over a stride
    and while standing, in the body frame ``rows`` (forward, left, up): pitching forward turns the
    gravity seen by the clip towards its back (-forward)."""
    f, _, u = rows
    return math.degrees(math.atan2(_dot(f, standing_up), _dot(u, standing_up))
                        - math.atan2(_dot(f, gravity), _dot(u, gravity)))
