"""What to simulate: the runner, the route (segments), fatigue, the sensor and the radio link.

Every value has its unit in its name; sources for the defaults are in docs/simulator.md.
All classes are frozen dataclasses, so a scenario plus a seed fully determines a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from strideclip.errors import ConfigError

KINDS = ("stand", "walk", "run")


@dataclass(frozen=True)
class Segment:
    """A stretch of the route with one activity. Speed ramps smoothly from the previous segment."""

    kind: str  # "stand", "walk" or "run"
    duration_s: float
    speed_mps: float = 0.0
    slope_pct: float = 0.0  # + uphill, - downhill
    turn_deg: float = 0.0  # heading change spread over the segment (+ = left)
    cadence_spm: float | None = None  # None: the runner's own cadence at this speed
    label: str = ""  # e.g. "warm-up", "hill", "traffic light" (kept in the ground truth)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"segment kind {self.kind!r} is not one of {KINDS}", key="kind")
        if self.duration_s <= 0:
            raise ConfigError(f"segment duration {self.duration_s} s must be positive", key="duration_s")
        if self.kind == "walk" and not 0.5 <= self.speed_mps <= 2.2:
            raise ConfigError(f"walking speed {self.speed_mps} m/s outside 0.5..2.2", key="speed_mps")
        if self.kind == "run" and not 1.8 <= self.speed_mps <= 7.0:
            raise ConfigError(f"running speed {self.speed_mps} m/s outside 1.8..7.0", key="speed_mps")
        if self.cadence_spm is not None and not 60 <= self.cadence_spm <= 240:
            raise ConfigError(f"cadence {self.cadence_spm} steps/min outside 60..240", key="cadence_spm")
        if abs(self.slope_pct) > 20:
            raise ConfigError(f"slope {self.slope_pct} % outside -20..20", key="slope_pct")


@dataclass(frozen=True)
class Runner:
    """The athlete: cadence habits, variability, asymmetry and pelvic motion."""

    name: str = "sim-runner"
    mass_kg: float = 70.0
    run_cadence_spm_at_3mps: float = 166.0  # preferred running cadence at 3 m/s
    run_cadence_spm_per_mps: float = 7.0  # how preferred cadence grows with speed
    walk_cadence_spm_at_1p3mps: float = 110.0
    walk_cadence_spm_per_mps: float = 30.0
    step_time_cv_pct: float = 2.0  # step-to-step variability of step time
    asymmetry_pct: float = 1.5  # right step time longer than left by this much
    impact_asymmetry_pct: float = 5.0  # right landing harder than left by this much
    heel_strike: float = 0.6  # 0 forefoot .. 1 pronounced rear-foot strike (impact transient)
    rotation_range_deg: float = 12.0  # pelvic transverse rotation range per stride, running
    drop_range_deg: float = 8.0  # pelvic obliquity range per stride, running
    tilt_range_deg: float = 5.0  # pelvic sagittal tilt range per step, running
    tilt_mean_deg: float = 14.0  # mean anterior pelvic tilt while running

    def __post_init__(self):
        if not 30 <= self.mass_kg <= 150:
            raise ConfigError(f"mass {self.mass_kg} kg outside 30..150", key="mass_kg")
        if not 0 <= self.heel_strike <= 1:
            raise ConfigError(f"heel_strike {self.heel_strike} outside 0..1", key="heel_strike")
        if not 0 <= self.step_time_cv_pct <= 10:
            raise ConfigError(f"step time CV {self.step_time_cv_pct} % outside 0..10", key="step_time_cv_pct")


@dataclass(frozen=True)
class Fatigue:
    """Form breakdown from ``onset_s``: each quantity drifts at its rate for ``ramp_min`` minutes."""

    onset_s: float
    cadence_pct_per_min: float = -0.6  # negative: cadence falls
    rotation_pct_per_min: float = 4.0
    drop_pct_per_min: float = 3.0
    impact_pct_per_min: float = 1.5
    tilt_deg_per_min: float = 0.3
    ramp_min: float = 12.0  # after this the drift holds its level

    def level(self, t_s: float) -> float:
        """Minutes of drift accumulated at time t_s (0 before the onset, capped at ramp_min)."""
        return min(max(0.0, (t_s - self.onset_s) / 60.0), self.ramp_min)


@dataclass(frozen=True)
class Sensor:
    """The clip's IMU: rate, full scales, how it sits on the body, and its imperfections."""

    rate_hz: int = 208
    accel_fs_g: int = 16
    gyro_fs_dps: int = 2000
    # Mounting, on top of the recommended orientation (sensor x up, y left, z out of the back).
    mount_roll_deg: float = 0.0
    mount_pitch_deg: float = 0.0
    mount_yaw_deg: float = 0.0
    accel_noise_mg: float = 2.0  # white noise, RMS per axis
    accel_bias_mg: float = 20.0  # constant offset per axis, up to this (random sign and size)
    soft_tissue_g: float = 0.04  # band-limited wobble of skin and clothing, RMS
    gyro_noise_dps: float = 0.1  # white noise, RMS per axis
    gyro_bias_dps: float = 1.0  # zero-rate offset per axis, up to this
    gyro_drift_dps_per_min: float = 0.05  # random-walk drift of the bias, RMS per minute

    @classmethod
    def random_mounting(cls, rng: np.random.Generator, rate_hz: int = 208) -> Sensor:
        """A clip clipped on any way: any roll and yaw, pitched up to 30 degrees (the evaluations)."""
        return cls(rate_hz=rate_hz, mount_roll_deg=float(rng.uniform(-180, 180)),
                   mount_pitch_deg=float(rng.uniform(-30, 30)), mount_yaw_deg=float(rng.uniform(-180, 180)))

    def __post_init__(self):
        if self.rate_hz not in (104, 208, 416):
            raise ConfigError(f"sample rate {self.rate_hz} Hz: the clip samples at 104, 208 or 416 Hz", key="rate_hz")
        if self.accel_fs_g not in (2, 4, 8, 16):
            raise ConfigError(f"accelerometer full scale ±{self.accel_fs_g} g not one of 2, 4, 8, 16", key="accel_fs_g")
        if self.gyro_fs_dps not in (125, 250, 500, 1000, 2000):
            raise ConfigError(f"gyro full scale ±{self.gyro_fs_dps} dps not supported", key="gyro_fs_dps")


@dataclass(frozen=True)
class Link:
    """The BLE link as the host sees it: batching, lost packets, latency, clock drift."""

    samples_per_packet: int = 19
    drop_prob: float = 0.002  # chance a loss burst starts at a packet
    drop_burst_mean: float = 2.0  # mean packets lost per burst
    latency_ms: float = 20.0  # mean notify -> host delay
    latency_jitter_ms: float = 8.0
    clock_ppm: float = 25.0  # clip crystal vs host clock

    def __post_init__(self):
        if not 1 <= self.samples_per_packet <= 19:
            raise ConfigError("samples per packet must be 1..19 (one notification at MTU 247)", key="samples_per_packet")
        if not 0 <= self.drop_prob < 0.5:
            raise ConfigError(f"drop probability {self.drop_prob} outside 0..0.5", key="drop_prob")


@dataclass(frozen=True)
class Scenario:
    segments: tuple[Segment, ...]
    runner: Runner = field(default_factory=Runner)
    sensor: Sensor = field(default_factory=Sensor)
    link: Link = field(default_factory=Link)
    fatigue: Fatigue | None = None
    seed: int = 0
    name: str = "custom"

    def __post_init__(self):
        if not self.segments:
            raise ConfigError("a scenario needs at least one segment", key="segments")

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)


def steady_run(minutes: float, *, speed_mps: float = 3.3, cadence_spm: float | None = None, seed: int = 0,
               fatigue_onset_min: float | None = None, rate_hz: int = 208, **sensor: float) -> Scenario:
    """A short walk, a steady run, and a stop: the plainest useful session."""
    run_s = max(10.0, minutes * 60 - 40)
    segments = (
        Segment("stand", 5, label="start"),
        Segment("walk", 20, speed_mps=1.3, label="warm-up walk"),
        Segment("run", run_s, speed_mps=speed_mps, cadence_spm=cadence_spm, label="run"),
        Segment("walk", 10, speed_mps=1.2, label="cool-down walk"),
        Segment("stand", 5, label="stop"),
    )
    fatigue = Fatigue(onset_s=fatigue_onset_min * 60) if fatigue_onset_min is not None else None
    return Scenario(segments, sensor=Sensor(rate_hz=rate_hz, **sensor), fatigue=fatigue, seed=seed, name="steady")


def demo_run(seed: int = 7, *, minutes: float = 30.0, rate_hz: int = 208) -> Scenario:
    """The demo: warm-up walk, a run with a turn, a hill and a traffic light, fatigue at ~60 %."""
    total_s = minutes * 60
    if total_s < 300:
        raise ConfigError(f"the demo run needs at least 5 minutes, not {minutes}", key="minutes")
    part = [  # (kind, share of the session, speed, slope %, turn deg, label)
        ("stand", 0.005, 0.0, 0, 0, "start"),
        ("walk", 0.05, 1.4, 0, 0, "warm-up walk"),
        ("run", 0.26, 3.2, 0, 0, "easy running"),
        ("run", 0.02, 3.2, 0, 180, "turn"),
        ("run", 0.13, 3.4, 5, 0, "hill"),
        ("run", 0.09, 3.3, -4, 0, "downhill"),
        ("stand", 0.02, 0.0, 0, 0, "traffic light"),
        ("run", 0.36, 3.3, 0, 0, "steady running"),
        ("walk", 0.04, 1.3, 0, 0, "cool-down walk"),
        ("stand", 0.005, 0.0, 0, 0, "stop"),
    ]
    seg = tuple(Segment(kind, share * total_s, speed_mps=speed, slope_pct=slope, turn_deg=turn, label=label)
                for kind, share, speed, slope, turn, label in part)
    onset_s = total_s * 0.6
    return Scenario(seg, sensor=Sensor(rate_hz=rate_hz, mount_roll_deg=8, mount_pitch_deg=-15, mount_yaw_deg=5),
                    fatigue=Fatigue(onset_s=onset_s), seed=seed, name="demo")


def with_sensor(scenario: Scenario, **changes: float) -> Scenario:
    return replace(scenario, sensor=replace(scenario.sensor, **changes))
