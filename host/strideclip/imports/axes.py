"""How a recording's sensor sat on the body, where the user knows it (``--axes``, ``--mount``):
its samples are then turned into the clip's recommended orientation (x up, y left, z out of the
back; docs/frames.md) before they are written. Without either they are written as recorded and
the analysis learns the body frame from the motion, as it does for a clip (docs/import.md)."""
from __future__ import annotations

import numpy as np

from strideclip.stream.clip import SENSOR_TO_PELVIS_RECOMMENDED, mounting

# body directions in the pelvis frame (x forward, y left, z up)
DIRECTIONS = {"forward": (1, 0, 0), "back": (-1, 0, 0), "left": (0, 1, 0), "right": (0, -1, 0),
              "up": (0, 0, 1), "down": (0, 0, -1)}
RECOMMENDED_AXES = "x=up,y=left,z=back"


def parse_axes(spec: str) -> np.ndarray:
    """``x=up,y=left,z=back`` (each of the recording's axes and the body direction it points to:
    forward, back, left, right, up, down) as the sensor-to-pelvis rotation, its columns the
    sensor's axes. Raises ValueError, saying why, for anything but a right-handed frame."""
    named: dict[str, str] = {}
    for part in spec.split(","):
        axis, eq, direction = (s.strip().lower() for s in part.partition("="))
        if axis not in ("x", "y", "z") or not eq:
            raise ValueError(f"{part.strip()!r}: write each axis as x=, y= or z= and a direction, e.g. {RECOMMENDED_AXES}")
        if direction not in DIRECTIONS:
            raise ValueError(f"{part.strip()!r}: the direction is one of {', '.join(DIRECTIONS)}")
        if axis in named:
            raise ValueError(f"{axis} is named twice")
        named[axis] = direction
    if len(named) != 3:
        raise ValueError(f"name all three axes, e.g. {RECOMMENDED_AXES}")
    m = np.array([DIRECTIONS[named[a]] for a in ("x", "y", "z")], float).T
    if abs(np.linalg.det(m)) < 0.5:
        raise ValueError(f"{spec}: two axes point along one line")
    if np.linalg.det(m) < 0:
        raise ValueError(f"{spec}: a mirror image (left-handed); a sensor's axes are right-handed: check one sign")
    return m


def to_clip_frame(axes: np.ndarray | None, mount_deg: tuple[float, float, float] | None) -> np.ndarray | None:
    """The rotation taking the recording's vectors into a clip in the recommended orientation:
    ``axes`` (parse_axes) names where the sensor's axes point, ``mount_deg`` (roll, pitch, yaw, as
    ``strideclip simulate --mount``) turns it from there (from the recommended orientation without
    ``axes``). None when neither is known: the samples stay as recorded."""
    if axes is None and mount_deg is None:
        return None
    base = SENSOR_TO_PELVIS_RECOMMENDED if axes is None else axes
    sensor_to_pelvis = base if mount_deg is None else mounting(*mount_deg, base=base)
    return SENSOR_TO_PELVIS_RECOMMENDED.T @ sensor_to_pelvis
