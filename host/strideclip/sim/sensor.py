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
from strideclip.stream import clip as _clip

SIM_FW_VERSION = (0, 1, 0)


def mounting_matrix(sensor: Sensor) -> np.ndarray:
    """Sensor-to-pelvis rotation: the recommended orientation turned by the mounting angles
    (yaw, pitch, roll about the sensor's own z, y, x axes)."""
    return _clip.mounting(sensor.mount_roll_deg, sensor.mount_pitch_deg, sensor.mount_yaw_deg)


def accel_ug_per_lsb(sensor: Sensor) -> int:
    return _clip.accel_ug_per_lsb(sensor.accel_fs_g)


def gyro_mdps_per_lsb_q8(sensor: Sensor) -> int:
    return _clip.gyro_mdps_per_lsb_q8(sensor.gyro_fs_dps)


def hello(sensor: Sensor, *, clip_id: int, session_id: int, samples_per_packet: int, battery_pct: int = 100) -> P.Hello:
    return _clip.make_hello(fw_version=SIM_FW_VERSION, imu_model=P.IMU_SIMULATED, rate_hz=sensor.rate_hz,
                            accel_fs_g=sensor.accel_fs_g, gyro_fs_dps=sensor.gyro_fs_dps, clip_id=clip_id,
                            session_id=session_id, samples_per_packet=samples_per_packet, battery_pct=battery_pct)


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
    return _clip.to_counts(accel_g, gyro_dps, sensor.accel_fs_g, sensor.gyro_fs_dps)
