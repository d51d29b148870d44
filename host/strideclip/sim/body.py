"""From steps to what the pelvis feels: specific force (g) and angular rate (dps) in the pelvis frame.

Pelvis frame: x forward, y left, z up (right-handed) when the runner stands upright. Angles:
rotation (yaw about z, + = pelvis turned left), drop (roll about x, + = left side up) and tilt
(pitch about y, + = anterior). The pelvis orientation in the world is Rz(heading + rotation) ·
Ry(tilt) · Rx(drop). Models and sources: docs/simulator.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from strideclip.sim.gait import IMPACT_SIGMA_S, RUN, WALK, Schedule, vertical_g
from strideclip.sim.scenario import Scenario

G_MPS2 = 9.80665
SACRUM_FROM_PELVIS_CENTRE_M = np.array([-0.08, 0.0, 0.0])  # the clip sits behind the rotation centre
# The clip does not follow the centre of mass rigidly: soft tissue and the waistband ring after
# each landing. A base-excited second-order "wobbling mass" (transmissibility, unity gain at DC)
# fitted to Alcantara's sacral accelerations: 22 Hz, damping 0.21 (docs/simulator.md).
SOFT_TISSUE_HZ = 22.0
SOFT_TISSUE_DAMPING = 0.21
INTERNAL_HZ_MIN = 1600  # forces are built at >= this rate (the impact lasts ~10 ms), then decimated
IMU_BANDWIDTH = 0.45  # the IMU's digital low-pass, as a fraction of its output rate
CHUNK_S = 30.0  # forces are built chunk by chunk so a 2-hour run stays small in memory
STANDING_TILT_DEG = 8.0


@dataclass
class BodySignals:
    t_s: np.ndarray
    specific_force_g: np.ndarray  # (n, 3) pelvis frame, at the sacrum
    angular_rate_dps: np.ndarray  # (n, 3) pelvis frame
    rotation_deg: np.ndarray  # pelvic angles relative to the heading
    drop_deg: np.ndarray
    tilt_deg: np.ndarray
    heading_deg: np.ndarray
    vertical_grf_bw: np.ndarray  # vertical specific force of the centre of mass as the clip sees it
    vertical_accel_g: np.ndarray  # world-vertical specific force at the sacrum (1 g standing)


def _stride_phase(steps: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Stride phase (rad): 0 at each left initial contact, pi at each right one, held in pauses."""
    knots_t, knots_p = [], []
    phase = 0.0 if steps[0]["side"] == 0 else math.pi
    for k, s in enumerate(steps):
        if k and s["ic_t_s"] - steps[k - 1]["ic_t_s"] > 1.6 * steps[k - 1]["step_time_s"]:
            knots_t.append(steps[k - 1]["ic_t_s"] + steps[k - 1]["step_time_s"])  # hold through a pause
            knots_p.append(phase)
        knots_t.append(s["ic_t_s"])
        knots_p.append(phase)
        phase += math.pi
    knots_t.append(steps[-1]["ic_t_s"] + steps[-1]["step_time_s"])
    knots_p.append(phase)
    return np.interp(t_s, knots_t, knots_p)


def _stepping(steps: np.ndarray, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stepping, activity): a hard mask of the steps' windows, and a copy that fades in and out
    over half a second, for the stride-locked angles."""
    stepping = np.zeros(len(t_s), dtype=bool)
    for s in steps:
        a = np.searchsorted(t_s, s["ic_t_s"])
        b = np.searchsorted(t_s, s["ic_t_s"] + s["step_time_s"])
        stepping[a:b] = True
    rate_hz = 1.0 / (t_s[1] - t_s[0])
    win = int(0.5 * rate_hz)
    activity = np.convolve(stepping.astype(float), np.ones(win) / win, mode="same")
    return stepping, np.clip(activity, 0, 1)


def _forces_g(steps: np.ndarray, n: int, rate_hz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical, fore-aft and lateral specific force (g) of the pelvis in the heading frame, as the
    clip feels them: built at a high internal rate, passed through the soft-tissue response and
    the IMU's own low-pass filter, then decimated to the output rate."""
    k = max(1, math.ceil(INTERNAL_HZ_MIN / rate_hz))
    fs = rate_hz * k
    wn = 2 * math.pi * SOFT_TISSUE_HZ
    mount_b, mount_a = signal.bilinear([2 * SOFT_TISSUE_DAMPING * wn, wn**2], [1, 2 * SOFT_TISSUE_DAMPING * wn, wn**2], fs=fs)
    aa = signal.butter(2, IMU_BANDWIDTH * rate_hz, fs=fs, output="sos")
    z_mount = [signal.lfilter_zi(mount_b, mount_a) * x0 for x0 in (1.0, 0.0)]
    z_aa = [signal.sosfilt_zi(aa) * x0 for x0 in (1.0, 0.0, 0.0)]
    out = np.zeros((3, n))
    ic, step_s = steps["ic_t_s"], steps["step_time_s"]
    chunk = int(CHUNK_S * rate_hz)
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        t = np.arange(c0 * k, c1 * k) / fs
        v, ap, ml = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
        stepping = np.zeros(len(t), dtype=bool)
        lo = np.searchsorted(ic + 2 * step_s, t[0])
        hi = np.searchsorted(ic, t[-1] + 3 * IMPACT_SIGMA_S)
        for s in steps[lo:hi]:
            a = max(0, np.searchsorted(t, s["ic_t_s"] - 3 * IMPACT_SIGMA_S))
            b = np.searchsorted(t, s["ic_t_s"] + max(s["step_time_s"], s["contact_ms"] / 1000 if s["kind"] == RUN else 0))
            if a >= b:
                continue
            tau = t[a:b] - s["ic_t_s"]
            v[a:b] += vertical_g(s, tau)
            stepping[a + np.searchsorted(tau, 0): np.searchsorted(t, s["ic_t_s"] + s["step_time_s"])] = True
            tc = s["contact_ms"] / 1000
            x = np.clip(tau / tc, 0, 1)
            inside = (tau >= 0) & (tau <= tc)
            # Fore-aft: braking then propulsion over the stance, plus a braking jolt with the impact
            # that the rest of the stance pays back (no net change of speed).
            push = (0.08 * s["speed_mps"] if s["kind"] == RUN else (0.18 if s["kind"] == WALK else 0.0)) * (1 - 0.03 * s["slope_pct"])
            jolt_gs = 0.5 * s["impact_gms"] / 1000
            jolt = jolt_gs / (IMPACT_SIGMA_S * math.sqrt(2 * math.pi)) * np.exp(
                -0.5 * ((tau - s["impact_ms"] / 1000) / IMPACT_SIGMA_S) ** 2)
            payback = np.where(inside, jolt_gs * math.pi / (2 * tc) * np.sin(math.pi * x), 0.0)
            ap[a:b] += np.where(inside, -push * np.sin(2 * math.pi * x), 0.0) - jolt + payback
            medial = -1.0 if s["side"] == 0 else 1.0  # the left foot pushes the body right (-y)
            ml[a:b] += np.where(inside, medial * (0.07 if s["kind"] == RUN else 0.05) * np.sin(math.pi * x), 0.0)
        v = np.where(stepping, v, 1.0)  # between bouts the floor carries the runner: 1 g
        v, z_mount[0] = signal.lfilter(mount_b, mount_a, v, zi=z_mount[0])
        ap, z_mount[1] = signal.lfilter(mount_b, mount_a, ap, zi=z_mount[1])
        for i, x in enumerate((v, ap, ml)):
            y, z_aa[i] = signal.sosfilt(aa, x, zi=z_aa[i])
            out[i, c0:c1] = y[::k]
    return out[0], out[1], out[2]


def _per_step(steps: np.ndarray, t_s: np.ndarray, field: str) -> np.ndarray:
    return np.interp(t_s, steps["ic_t_s"], steps[field])


def simulate_body(scenario: Scenario, steps: np.ndarray, rng: np.random.Generator) -> BodySignals:
    rate_hz = scenario.sensor.rate_hz
    n = int(round(scenario.duration_s * rate_hz))
    t_s = np.arange(n) / rate_hz
    dt = 1.0 / rate_hz

    spec_v, spec_ap, spec_ml = _forces_g(steps, n, rate_hz)

    # Centre-of-mass acceleration in the heading frame (forward, left, up), m/s^2.
    sched = Schedule(scenario.segments)
    speed = sched.speed_mps(t_s)
    heading_rate = np.zeros(n)
    for i, seg in enumerate(scenario.segments):
        if seg.turn_deg:
            a, b = (np.searchsorted(t_s, sched.starts_s[i]), np.searchsorted(t_s, sched.starts_s[i + 1]))
            heading_rate[a:b] = math.radians(seg.turn_deg) / seg.duration_s
    heading = np.cumsum(heading_rate) * dt
    _, activity = _stepping(steps, t_s)
    a_heading = np.stack([
        spec_ap * G_MPS2 + np.gradient(speed, dt),
        spec_ml * G_MPS2 + speed * heading_rate,  # centripetal acceleration in turns
        (spec_v - 1.0) * G_MPS2,
    ], axis=1)

    # Pelvic angles, locked to the stride, plus slow postural sway when standing.
    if len(steps):
        phase = _stride_phase(steps, t_s)
        tc_frac = _per_step(steps, t_s, "contact_ms") / 1000 / _per_step(steps, t_s, "step_time_s")
        rot_amp = _per_step(steps, t_s, "rotation_amp_deg") * activity
        drop_amp = _per_step(steps, t_s, "drop_amp_deg") * activity
        tilt_amp = _per_step(steps, t_s, "tilt_amp_deg") * activity
        tilt_mean = STANDING_TILT_DEG + (_per_step(steps, t_s, "tilt_mean_deg") - STANDING_TILT_DEG) * activity
        rotation = -0.5 * rot_amp * np.cos(phase)  # left hip forward at left contact
        drop = 0.5 * drop_amp * np.cos(phase - math.pi * tc_frac / 2)  # swing side lowest at mid-stance
        tilt = tilt_mean + 0.5 * tilt_amp * np.cos(2 * phase - 2 * math.pi * tc_frac)  # most anterior at toe-off
    else:
        rotation = drop = np.zeros(n)
        tilt = np.full(n, STANDING_TILT_DEG)
    sway = _slow_noise(rng, n, rate_hz, 0.5, 0.5)  # postural sway: ~0.5 deg below 0.5 Hz
    rotation, drop, tilt = rotation + sway[:, 0], drop + sway[:, 1], tilt + sway[:, 2]

    yaw = heading + np.radians(rotation)
    pitch, roll = np.radians(tilt), np.radians(drop)
    R = _rotation_zyx(yaw, pitch, roll)  # pelvis -> world
    yaw_rate, pitch_rate, roll_rate = (np.gradient(x, dt) for x in (yaw, pitch, roll))
    omega = np.stack([  # body rates of a ZYX sequence, rad/s, pelvis frame
        roll_rate - yaw_rate * np.sin(pitch),
        pitch_rate * np.cos(roll) + yaw_rate * np.cos(pitch) * np.sin(roll),
        -pitch_rate * np.sin(roll) + yaw_rate * np.cos(pitch) * np.cos(roll),
    ], axis=1)

    heading_to_world = _rotation_zyx(heading, np.zeros(n), np.zeros(n))
    a_world = np.einsum("nij,nj->ni", heading_to_world, a_heading)
    f_world = a_world + np.array([0.0, 0.0, G_MPS2])
    f_pelvis = np.einsum("nji,nj->ni", R, f_world)  # R^T f
    alpha = np.gradient(omega, dt, axis=0)
    r = SACRUM_FROM_PELVIS_CENTRE_M
    lever = np.cross(alpha, r) + np.cross(omega, np.cross(omega, r))
    f_sacrum = (f_pelvis + lever) / G_MPS2
    return BodySignals(
        t_s=t_s,
        specific_force_g=f_sacrum,
        vertical_accel_g=np.einsum("nij,nj->ni", R, f_sacrum)[:, 2],
        angular_rate_dps=np.degrees(omega),
        rotation_deg=rotation, drop_deg=drop, tilt_deg=tilt,
        heading_deg=np.degrees(heading),
        vertical_grf_bw=spec_v,
    )


def _rotation_zyx(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], axis=-1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], axis=-1),
        np.stack([-sp, cp * sr, cp * cr], axis=-1),
    ], axis=-2)


def _slow_noise(rng: np.random.Generator, n: int, rate_hz: int, rms: float, cutoff_hz: float) -> np.ndarray:
    """Low-pass Gaussian noise (n, 3) with the given RMS: postural sway and trunk wobble."""
    sos = signal.butter(2, cutoff_hz, fs=rate_hz, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal((n, 3)), axis=0)
    return x * (rms / max(x.std(), 1e-12))
