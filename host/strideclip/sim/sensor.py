"""The clip's IMU: mounting, bias, drift, noise, soft-tissue wobble, quantisation, saturation.

Turns pelvis-frame signals into the raw int16 counts a real clip would send, and the HELLO
record that says how to read them. The sensitivities declared in HELLO are the ones used to
quantise, so converting counts back with them is exact up to rounding.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import signal

from clipcore import protocol as P
from strideclip.sim.scenario import Sensor

# Recommended orientation (hardware/, docs/frames.md): sensor x up, y left, z out of the back.
# Columns are the sensor axes expressed in the pelvis frame (x forward, y left, z up).
SENSOR_TO_PELVIS_RECOMMENDED = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
SIM_FW_VERSION = (0, 1, 0)


def mounting_matrix(sensor: Sensor) -> np.ndarray:
    """Sensor-to-pelvis rotation: the recommended orientation turned by the mounting angles
    (yaw, pitch, roll about the sensor's own z, y, x axes)."""
    y, p, r = (math.radians(a) for a in (sensor.mount_yaw_deg, sensor.mount_pitch_deg, sensor.mount_roll_deg))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    return SENSOR_TO_PELVIS_RECOMMENDED @ rz @ ry @ rx


def accel_ug_per_lsb(sensor: Sensor) -> int:
    return round(sensor.accel_fs_g * 1e6 / 32768)


def gyro_mdps_per_lsb_q8(sensor: Sensor) -> int:
    return round(sensor.gyro_fs_dps * 1e6 / 32768 / 1000 * 256)


def hello(sensor: Sensor, *, clip_id: int, session_id: int, samples_per_packet: int, battery_pct: int = 100) -> P.Hello:
    return P.Hello(SIM_FW_VERSION, P.IMU_SIMULATED, sensor.rate_hz, sensor.accel_fs_g, sensor.gyro_fs_dps,
                   accel_ug_per_lsb(sensor), gyro_mdps_per_lsb_q8(sensor), clip_id, session_id, battery_pct,
                   samples_per_packet, P.HELLO_FLAG_BACKFILL)


def to_counts(sensor: Sensor, specific_force_g: np.ndarray, angular_rate_dps: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """(n, 6) int16 raw counts: accel x, y, z then gyro x, y, z in the sensor frame."""
    n = len(specific_force_g)
    m = mounting_matrix(sensor)
    accel_g = specific_force_g @ m  # (M^T f) for each row
    gyro_dps = angular_rate_dps @ m
    accel_g = accel_g + rng.uniform(-1, 1, 3) * sensor.accel_bias_mg / 1000
    accel_g = accel_g + rng.standard_normal((n, 3)) * sensor.accel_noise_mg / 1000
    if sensor.soft_tissue_g > 0:  # skin and clothing: band-limited, 8-30 Hz
        sos = signal.butter(2, [8, min(30, 0.45 * sensor.rate_hz)], btype="bandpass", fs=sensor.rate_hz, output="sos")
        wobble = signal.sosfilt(sos, rng.standard_normal((n, 3)), axis=0)
        accel_g = accel_g + wobble * (sensor.soft_tissue_g / max(wobble.std(), 1e-12))
    walk = np.cumsum(rng.standard_normal((n, 3)), axis=0) * math.sqrt(1 / (sensor.rate_hz * 60))
    gyro_dps = gyro_dps + rng.uniform(-1, 1, 3) * sensor.gyro_bias_dps
    gyro_dps = gyro_dps + walk * sensor.gyro_drift_dps_per_min  # bias random walk
    gyro_dps = gyro_dps + rng.standard_normal((n, 3)) * sensor.gyro_noise_dps
    accel_counts = accel_g * 1e6 / accel_ug_per_lsb(sensor)
    gyro_counts = gyro_dps * 256 * 1000 / gyro_mdps_per_lsb_q8(sensor)
    counts = np.concatenate([accel_counts, gyro_counts], axis=1)
    return np.clip(np.round(counts), -32768, 32767).astype(np.int16)  # saturation at full scale
