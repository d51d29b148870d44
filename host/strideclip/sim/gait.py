"""Footfalls: when each foot lands, for how long, how hard, and the pelvic motion of its stride.

``plan_steps`` walks through the scenario's segments and returns one record per step. It decides
everything a step is (the truth); ``body`` turns the steps into forces and angles.
Models and sources: docs/simulator.md.
"""
from __future__ import annotations

import math

import numpy as np

from strideclip.sim.scenario import Scenario, Segment

LEFT, RIGHT = 0, 1
WALK, RUN, STOP = 1, 2, 3  # STOP: the last landing of a run, settling into standing
SPEED_RAMP_S = 4.0  # speed changes between segments take this long ...
START_RAMP_S = 1.5  # ... except starting to walk from standing
STOP_STANCE_S = 0.45  # a runner who stops lands once more and settles over this long
STOP_SETTLE_S = 0.08

STEP_DTYPE = np.dtype([
    ("ic_t_s", "f8"),  # exact time of initial contact
    ("ic_idx", "i8"),  # nearest sample index
    ("side", "u1"),  # 0 left, 1 right
    ("kind", "u1"),  # 1 walk, 2 run, 3 the landing that ends a run
    ("segment", "i4"),
    ("step_time_s", "f8"),  # to the next initial contact
    ("cadence_spm", "f8"),  # 60 / step_time_s
    ("contact_ms", "f8"),  # stance time of this foot
    ("speed_mps", "f8"),
    ("slope_pct", "f8"),
    ("fatigue_min", "f8"),  # minutes of fatigue drift applied
    ("peak_grf_bw", "f8"),  # peak vertical ground reaction force, body weights
    ("impact_gms", "f8"),  # impact impulse at the pelvis (g x ms): the landing transient
    ("impact_ms", "f8"),  # when the impact transient peaks after initial contact
    ("impact_g", "f8"),  # peak vertical acceleration at the sacrum (filled in by body)
    ("rotation_amp_deg", "f8"),  # model amplitude (range) used for this step's stride
    ("drop_amp_deg", "f8"),
    ("tilt_amp_deg", "f8"),
    ("tilt_mean_deg", "f8"),
    ("rotation_range_deg", "f8"),  # measured on the simulated angles: stride from this contact
    ("drop_range_deg", "f8"),  # same stride
    ("tilt_range_deg", "f8"),  # this step
])


class Schedule:
    """Segment lookup and the smoothly ramped speed at any time."""

    def __init__(self, segments: tuple[Segment, ...]):
        self.segments = segments
        self.starts_s = np.concatenate([[0.0], np.cumsum([s.duration_s for s in segments])])

    def index_at(self, t_s: float) -> int:
        return int(min(np.searchsorted(self.starts_s, t_s, side="right") - 1, len(self.segments) - 1))

    def speed_mps(self, t_s: np.ndarray | float) -> np.ndarray:
        """Speed with linear ramps of SPEED_RAMP_S at each segment boundary."""
        t = np.asarray(t_s, dtype=float)
        speeds = np.array([s.speed_mps for s in self.segments])
        knots_t, knots_v = [0.0], [speeds[0]]
        for i in range(1, len(self.segments)):
            b = self.starts_s[i]
            ramp = START_RAMP_S if self.segments[i - 1].kind == "stand" and self.segments[i].kind == "walk" else SPEED_RAMP_S
            knots_t += [b, b + min(ramp, self.segments[i].duration_s / 2)]
            knots_v += [speeds[i - 1], speeds[i]]
        knots_t.append(self.starts_s[-1])
        knots_v.append(speeds[-1])
        return np.interp(t, knots_t, knots_v)


def preferred_cadence_spm(scenario: Scenario, kind: int, speed_mps: float) -> float:
    r = scenario.runner
    if kind == RUN:
        return r.run_cadence_spm_at_3mps + r.run_cadence_spm_per_mps * (speed_mps - 3.0)
    # People take their walking rhythm within a step or two of starting: no shuffling at 70 spm.
    return max(90.0, r.walk_cadence_spm_at_1p3mps + r.walk_cadence_spm_per_mps * (speed_mps - 1.3))


def hill_cadence_factor(slope_pct: float) -> float:
    """Runners take quicker steps uphill (+0.4 % per % grade) and a little downhill (docs/simulator.md)."""
    return 1 + 0.004 * max(slope_pct, 0) + 0.001 * max(-slope_pct, 0)


def contact_s(kind: int, speed_mps: float, step_time_s: float, slope_pct: float = 0.0) -> float:
    """Stance time of one foot. Running: the regression fitted on the Alcantara force-treadmill
    trials (falls with speed and cadence, rises uphill); walking: ~62 % of the stride."""
    if kind == RUN:
        slope_deg = math.degrees(math.atan(slope_pct / 100))
        tc = 0.440 - 0.0263 * speed_mps + 0.0017 * slope_deg - 0.00067 * (60.0 / step_time_s)
        return float(np.clip(tc, 0.15, 0.34))
    return 2 * step_time_s * float(np.clip(0.66 - 0.03 * speed_mps, 0.58, 0.66))


def _impact(scenario: Scenario, kind: int, speed_mps: float, step_s: float, slope_pct: float, side: int,
            fat_min: float, rng: np.random.Generator) -> tuple[float, float]:
    """Impulse (g x ms) and timing (ms after contact) of the landing transient at the pelvis.

    Running, from the fit to Alcantara's sacral data: ~17 g ms at 3.33 m/s for a rear-foot
    striker, +12 % per m/s, much larger downhill (+16 % per degree), fading uphill (-9 % per
    degree); it peaks ~27 ms after contact. Overstriding (a cadence under the runner's own)
    makes it larger; so does fatigue. Walking: a small heel-strike bump at ~40 ms.
    """
    r = scenario.runner
    if kind == WALK:  # heel strike: ~0.2 g over ~15 ms at L5 (Voisard median profile)
        return 8.0 * r.heel_strike * math.exp(0.25 * rng.standard_normal()), 30.0
    slope_deg = math.degrees(math.atan(slope_pct / 100))
    impulse = 17.0 * (0.4 + r.heel_strike) * (1 + 0.12 * (speed_mps - 3.33))
    impulse *= 1 + 0.16 * -slope_deg if slope_deg < 0 else max(0.15, 1 - 0.09 * slope_deg)
    pref = preferred_cadence_spm(scenario, RUN, speed_mps)
    impulse *= (pref / (60.0 / step_s)) ** 2  # overstriding
    impulse *= 1 + r.impact_asymmetry_pct / 200 * (1 if side == RIGHT else -1)
    if scenario.fatigue:
        impulse *= 1 + scenario.fatigue.impact_pct_per_min / 100 * fat_min
    impulse *= max(0.2, 1 + 0.3 * rng.standard_normal())  # step-to-step CV ~30 %
    return impulse, 27.0 + 5.0 * float(np.clip(rng.standard_normal(), -3, 3))


def plan_steps(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Every step of the scenario, in time order."""
    sched = Schedule(scenario.segments)
    runner, fatigue = scenario.runner, scenario.fatigue
    end_s = sched.starts_s[-1]
    rows = []
    side = int(rng.integers(0, 2))
    t = 0.0
    while t < end_s - 0.2:
        i = sched.index_at(t)
        seg = scenario.segments[i]
        if seg.kind == "stand":
            t = sched.starts_s[i + 1]
            continue
        kind = RUN if seg.kind == "run" else WALK
        v = float(sched.speed_mps(t))
        fat_min = fatigue.level(t) if fatigue and kind == RUN else 0.0
        hill = seg.slope_pct
        cadence = seg.cadence_spm or preferred_cadence_spm(scenario, kind, v) * hill_cadence_factor(hill)
        if fatigue:
            cadence *= 1 + fatigue.cadence_pct_per_min / 100 * fat_min
        step_s = 60.0 / cadence
        step_s *= 1 + (runner.asymmetry_pct / 200) * (1 if side == RIGHT else -1)
        step_s *= 1 + runner.step_time_cv_pct / 100 * float(np.clip(rng.standard_normal(), -3.5, 3.5))
        tc = contact_s(kind, v, step_s, hill)
        if kind == RUN:
            tc *= 1 + 0.004 * fat_min
        impulse_gms, impact_ms = _impact(scenario, kind, v, step_s, hill, side, fat_min, rng)
        rot, drop, tilt_amp, tilt_mean = _pelvis_amplitudes(scenario, kind, fat_min, hill)
        rows.append((
            t, int(round(t * scenario.sensor.rate_hz)), side, kind, i, step_s, 60.0 / step_s, tc * 1000, v, hill,
            fat_min, 0.0, impulse_gms, impact_ms, 0.0, rot, drop, tilt_amp, tilt_mean, 0.0, 0.0, 0.0,
        ))
        side ^= 1
        t_next = t + step_s
        j = sched.index_at(t_next)
        if scenario.segments[j].kind == "stand" and j != i:
            if kind == RUN:  # the last landing, into standing: a real contact, a soft full stance
                settle_s = min(STOP_STANCE_S, scenario.segments[j].duration_s)
                rows.append((
                    t_next, int(round(t_next * scenario.sensor.rate_hz)), side, STOP, j, settle_s, 60.0 / settle_s,
                    settle_s * 1000, 0.0, hill, fat_min, 0.0, impulse_gms / 2, impact_ms, 0.0, rot, drop, tilt_amp,
                    tilt_mean, 0.0, 0.0, 0.0,
                ))
                side ^= 1
            t_next = sched.starts_s[j + 1]  # the next bout starts after the pause
        t = t_next
    steps = np.array(rows, dtype=STEP_DTYPE)
    if len(steps):
        steps["peak_grf_bw"] = [peak_grf_bw(s) for s in steps]
    return steps


def _pelvis_amplitudes(scenario: Scenario, kind: int, fat_min: float, slope_pct: float):
    r, f = scenario.runner, scenario.fatigue
    if kind == RUN:
        rot, drop, tilt, tilt_mean = r.rotation_range_deg, r.drop_range_deg, r.tilt_range_deg, r.tilt_mean_deg
        if f:
            rot *= 1 + f.rotation_pct_per_min / 100 * fat_min
            drop *= 1 + f.drop_pct_per_min / 100 * fat_min
            tilt_mean += f.tilt_deg_per_min * fat_min
        tilt_mean += 0.4 * max(slope_pct, 0)  # leaning into a hill
    else:
        rot, drop, tilt, tilt_mean = 0.7 * r.rotation_range_deg, 0.8 * r.drop_range_deg, 0.6 * r.tilt_range_deg, r.tilt_mean_deg - 4
    return rot, drop, tilt, tilt_mean


# --- forces of one step: the shapes that both body.py and the truth use ------------------------

IMPACT_SIGMA_S = 0.004  # width of the impact transient at the pelvis (Alcantara fit)
WALK_HEEL_SIGMA_S = 0.015  # a heel strike in walking is softer and broader (Voisard, L5)
ACTIVE_GAMMA = 0.85  # active peak shape sin(pi x^gamma): the peak comes slightly before mid-stance


def vertical_g(step: np.void, tau_s: np.ndarray) -> np.ndarray:
    """Vertical specific force of the centre of mass (g = body weights) from one foot's stance,
    at times tau_s after its initial contact.

    Running: an active half-sine plus the impact transient (a Gaussian of the step's impulse).
    Walking: the double hump sin(pi x) + k sin(3 pi x) plus a heel-strike bump. Either way the
    active part is scaled so that the stance's impulse equals one body weight times the step
    time, which keeps the centre of mass level on average (spring-mass model).
    """
    tc = step["contact_ms"] / 1000
    x = np.clip(tau_s / tc, 0, 1)
    inside = (tau_s >= 0) & (tau_s <= tc)
    sigma = WALK_HEEL_SIGMA_S if step["kind"] == WALK else IMPACT_SIGMA_S
    amp = step["impact_gms"] / 1000 / (sigma * math.sqrt(2 * math.pi))
    impact = amp * np.exp(-0.5 * ((tau_s - step["impact_ms"] / 1000) / sigma) ** 2)
    impact_impulse = step["impact_gms"] / 1000
    if step["kind"] == STOP:  # land, then settle to standing (1 g) with the legs absorbing it
        settle = 1.0 - np.exp(-np.clip(tau_s, 0, None) / STOP_SETTLE_S) * np.cos(2 * math.pi * 3.0 * np.clip(tau_s, 0, None))
        return np.where(inside, settle, 0.0) + np.where(tau_s > -3 * sigma, impact, 0.0)
    if step["kind"] == RUN:
        area = tc * _half_sine_area(ACTIVE_GAMMA)
        active = max(0.2 * step["step_time_s"], step["step_time_s"] - impact_impulse) / area
        return np.where(inside, active * np.sin(math.pi * x**ACTIVE_GAMMA), 0.0) + np.where(tau_s > -3 * sigma, impact, 0.0)
    # Walking: the centre of mass rides a step-periodic oscillation that peaks just after contact
    # (loading response), the heel strike adds a transient, and a smaller bump follows at ~150 ms
    # (the median profile of Voisard's 3746 contacts at L5, docs/simulator.md). Its shape spans
    # the whole step; the transients' impulse is taken back evenly so the mean stays 1 g.
    T = step["step_time_s"]
    in_step = (tau_s >= 0) & (tau_s < T)
    osc = WALK_OSC_G * (0.8 + 0.4 * (step["speed_mps"] - 1.0)) * np.cos(2 * math.pi * (tau_s - WALK_PEAK_FRAC * T) / T)
    second = WALK_SECOND_G * np.exp(-0.5 * ((tau_s - 0.15) / 0.025) ** 2)
    second_impulse = WALK_SECOND_G * 0.025 * math.sqrt(2 * math.pi)
    level = 1.0 - (impact_impulse + second_impulse) / T
    return np.where(in_step, level + osc + second, 0.0) + np.where(tau_s > -3 * sigma, impact, 0.0)


WALK_OSC_G = 0.20  # amplitude of the step-periodic vertical oscillation at 1.3 m/s
WALK_SECOND_G = 0.12  # the bump ~150 ms after contact
WALK_PEAK_FRAC = 0.12  # the oscillation peaks this far into the step


def _half_sine_area(gamma: float) -> float:
    x = np.linspace(0, 1, 2001)
    return float(np.trapezoid(np.sin(math.pi * x**gamma), x))


def peak_grf_bw(step: np.void) -> float:
    tau = np.linspace(0, step["contact_ms"] / 1000, 800)
    return float(vertical_g(step, tau).max())
