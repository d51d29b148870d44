"""A clip's stream made on the host, for the code that plays a clip without one: the simulator
(``strideclip.sim``) and an imported recording (``strideclip.imports``), siblings that share this.

- the clip's recommended orientation on the body and a mounting turned from it (docs/frames.md);
- the sensitivities a HELLO declares for its full scales, the counts they give, and the HELLO itself;
- the stream a host receives: the HELLO first and again once a minute, as a clip sends it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from clipcore import protocol as P
from strideclip.stream.packets import encode_packet

# Recommended orientation (hardware/, docs/frames.md): sensor x up, y left, z out of the back.
# Columns are the sensor axes expressed in the pelvis frame (x forward, y left, z up).
SENSOR_TO_PELVIS_RECOMMENDED = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
HELLO_EVERY_MS = 60_000  # firmware/clipfw/battery.py REPORT_S


def mounting(roll_deg: float, pitch_deg: float, yaw_deg: float,
             base: np.ndarray = SENSOR_TO_PELVIS_RECOMMENDED) -> np.ndarray:
    """Sensor-to-pelvis rotation of a sensor turned from ``base`` (a sensor-to-pelvis rotation,
    default the recommended orientation) by yaw, pitch and roll about its own z, y, x axes."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    return base @ rz @ ry @ rx


def accel_ug_per_lsb(accel_fs_g: int) -> int:
    """The accelerometer's sensitivity a HELLO declares for a full scale of +-``accel_fs_g``."""
    return round(accel_fs_g * 1e6 / 32768)


def gyro_mdps_per_lsb_q8(gyro_fs_dps: int) -> int:
    """The gyro's sensitivity (mdps per count, x 256) a HELLO declares for +-``gyro_fs_dps``."""
    return round(gyro_fs_dps * 1e6 / 32768 / 1000 * 256)


def to_counts(accel_g: np.ndarray, gyro_dps: np.ndarray, accel_fs_g: int, gyro_fs_dps: int) -> np.ndarray:
    """(n, 6) int16 raw counts (accel x, y, z then gyro x, y, z) at the sensitivities the HELLO
    declares for these full scales, so converting back with them is exact up to rounding;
    saturating at full scale as the chip does."""
    accel_counts = np.asarray(accel_g, float) * (1e6 / accel_ug_per_lsb(accel_fs_g))
    gyro_counts = np.asarray(gyro_dps, float) * (256 * 1000 / gyro_mdps_per_lsb_q8(gyro_fs_dps))
    counts = np.concatenate([accel_counts, gyro_counts], axis=1)
    return np.clip(np.round(counts), -32768, 32767).astype(np.int16)


def make_hello(*, fw_version: tuple[int, int, int], imu_model: int, rate_hz: int, accel_fs_g: int,
               gyro_fs_dps: int, clip_id: int, session_id: int, samples_per_packet: int,
               battery_pct: int = 100, flags: int = P.HELLO_FLAG_BACKFILL) -> P.Hello:
    """The HELLO that says how to read counts quantised at these full scales."""
    return P.Hello(fw_version, imu_model, rate_hz, accel_fs_g, gyro_fs_dps, accel_ug_per_lsb(accel_fs_g),
                   gyro_mdps_per_lsb_q8(gyro_fs_dps), clip_id, session_id, battery_pct, samples_per_packet, flags)


def with_hellos(hello: P.Hello, packets: Iterable[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Every packet the host receives, (t_ms, packet) in order: the HELLO first and again once a
    minute (as the clip sends it with its battery report), then ``packets`` as they come."""
    pkt = encode_packet(hello)
    out, next_hello_ms = [(0, pkt)], HELLO_EVERY_MS
    for t_ms, sample_pkt in packets:
        while t_ms >= next_hello_ms:
            out.append((next_hello_ms, pkt))
            next_hello_ms += HELLO_EVERY_MS
        out.append((t_ms, sample_pkt))
    return out
