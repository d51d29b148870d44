"""``strideclip evaluate-metrics``: the per-step metrics checked against references (docs/metrics.md).

- **alcantara**: peak vertical GRF and ground contact time against the force treadmill, the vGRF
  model scored with leave-condition-out cross-validation (a condition = speed x slope; every
  trial of it is left out together), and per-trial cadence against the force-plate cadence.
- **sim**: cadence, pelvic rotation / drop / tilt ranges, forward lean, impact, contact time and
  vertical oscillation against the simulator's truth at random mounting angles.
- **voisard**: the rotation path on real data: the gyro about the learnt vertical, integrated
  over each U-turn, against 180 degrees.

Recordings are fed as a clip would deliver them (``strideclip.evaluation.evaluate.to_counts``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from strideclip.analysis.metrics import (CADENCE_SMOOTH_STEPS, VGRF_COEF, MetricsEngine, feed_recording,
                                         metrics_for_counts)
from strideclip.analysis.steps import StepDetector
from strideclip.evaluation import datasets
from strideclip.evaluation.evaluate import ACCEL_UG_PER_LSB, GYRO_COUNTS_PER_DPS, to_counts
from strideclip.evaluation.scoring import match_events

if TYPE_CHECKING:  # (the simulator is imported when it is run)
    from strideclip.sim import SimulatedRun

ACCEL_G_PER_COUNT = ACCEL_UG_PER_LSB / 1e6
GYRO_DPS_PER_COUNT = 1 / GYRO_COUNTS_PER_DPS


def run_metrics(counts: np.ndarray, rate_hz: int, *, has_gyro: bool = True, accel_g_per_count: float = ACCEL_G_PER_COUNT,
                gyro_dps_per_count: float = GYRO_DPS_PER_COUNT) -> np.ndarray:
    """The product's path: clipcore detector, then the metrics engine."""
    ev = StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=round(accel_g_per_count * 1e6)).detect(counts).events_
    return metrics_for_counts(counts, ev, rate_hz=rate_hz, accel_g_per_count=accel_g_per_count,
                              gyro_dps_per_count=gyro_dps_per_count, has_gyro=has_gyro)


def _stats(err) -> dict:
    e = np.asarray(err, float)
    e = e[np.isfinite(e)]
    if not len(e):
        return {"n": 0}
    return {"n": int(len(e)), "bias": round(float(e.mean()), 3), "mae": round(float(np.abs(e).mean()), 3),
            "rmse": round(float(np.sqrt(np.mean(e ** 2))), 3), "p95_abs": round(float(np.percentile(np.abs(e), 95)), 3)}


# ---- Alcantara: force treadmill ------------------------------------------------------------

def alcantara_steps(rate_hz: int = 208, root: str | os.PathLike | None = None) -> dict:
    """Detected running steps matched to force-plate stances, with features and truth columns."""
    cols: dict[str, list] = {k: [] for k in ("trial", "condition", "peak_loading_g", "peak_vertical_g", "contact_ms",
                                             "peak_vgrf_bw", "true_peak_grf_bw", "true_contact_ms")}
    cadence = []
    for k, tr in enumerate(datasets.load_alcantara(root)):
        counts = to_counts(tr.accel_g, tr.gyro_dps, tr.rate_hz, rate_hz)
        m = run_metrics(counts, rate_hz, has_gyro=False)
        stances = [s for s in tr.info["stances"] if s[0] > 0 and s[1] < len(tr.info["grf_bw"])]
        ic_true = np.array([a for a, _ in stances]) / tr.rate_hz
        md, mr = match_events(m["t_s"], ic_true, 0.05)
        grf = tr.info["grf_bw"]
        for i, j in zip(md, mr):
            a, b = stances[j]
            cols["trial"].append(k)
            cols["condition"].append(f"{tr.info['speed_mps']} m/s, {tr.info['slope_deg']:+g} deg")
            for name in ("peak_loading_g", "peak_vertical_g", "contact_ms", "peak_vgrf_bw"):
                cols[name].append(float(m[name][i]))
            cols["true_peak_grf_bw"].append(float(grf[a:b].max()))
            cols["true_contact_ms"].append((b - a) / tr.rate_hz * 1000)
        ok = np.isfinite(m["step_time_s"])
        if ok.sum() >= 4 and len(ic_true) >= 5:
            cadence.append(float(60 / np.median(m["step_time_s"][ok]) - 60 / np.median(np.diff(ic_true))))
    out = {k: np.array(v) for k, v in cols.items()}
    out["cadence_error_spm_per_trial"] = np.array(cadence)
    return out


def fit_vgrf(rows: dict, mask: np.ndarray | None = None) -> tuple[float, float, float]:
    """Least squares: true peak vGRF ~ A0 + A1 loading peak + A2 raw vertical peak."""
    mask = np.ones(len(rows["trial"]), bool) if mask is None else mask
    ok = mask & np.isfinite(rows["peak_loading_g"]) & np.isfinite(rows["peak_vertical_g"])
    x = np.c_[np.ones(ok.sum()), rows["peak_loading_g"][ok], rows["peak_vertical_g"][ok]]
    coef = np.linalg.lstsq(x, rows["true_peak_grf_bw"][ok], rcond=None)[0]
    return tuple(float(c) for c in coef)


def vgrf_leave_condition_out(rows: dict) -> np.ndarray:
    """Prediction errors (BW) with every condition predicted by a model fitted without it."""
    err = np.full(len(rows["trial"]), np.nan)
    for cond in np.unique(rows["condition"]):
        test = rows["condition"] == cond
        a0, a1, a2 = fit_vgrf(rows, ~test)
        err[test] = a0 + a1 * rows["peak_loading_g"][test] + a2 * rows["peak_vertical_g"][test] - rows["true_peak_grf_bw"][test]
    return err


def evaluate_alcantara(rate_hz: int = 208, root: str | os.PathLike | None = None) -> dict:
    rows = alcantara_steps(rate_hz, root)
    loco = vgrf_leave_condition_out(rows)
    shipped = rows["peak_vgrf_bw"] - rows["true_peak_grf_bw"]
    return {
        "steps_matched": int(len(rows["trial"])),
        "conditions": int(len(np.unique(rows["condition"]))),
        "peak_vgrf_bw_leave_condition_out": _stats(loco),
        "peak_vgrf_bw_shipped_model": _stats(shipped),
        "peak_vgrf_true_bw_sd": round(float(np.std(rows["true_peak_grf_bw"])), 3),
        "contact_ms": _stats(rows["contact_ms"] - rows["true_contact_ms"]),
        "cadence_abs_error_spm_median": round(float(np.median(np.abs(rows["cadence_error_spm_per_trial"]))), 3),
        "model_refit_all": [round(c, 4) for c in fit_vgrf(rows)],
        "model_shipped": list(VGRF_COEF),
    }


# ---- simulator -------------------------------------------------------------------------------

def sim_runs(rate_hz: int = 208, seeds: Iterable[int] = range(4), minutes: float = 4.0) -> Iterator[SimulatedRun]:
    from strideclip.sim import Scenario, Segment, Sensor, simulate

    for seed in seeds:
        rng = np.random.default_rng(500 + seed)
        run_s = minutes * 60 / 3
        segs = (Segment("stand", 10), Segment("walk", 20, speed_mps=1.3),
                Segment("run", run_s, speed_mps=float(rng.uniform(2.6, 4.5))),
                Segment("run", run_s, speed_mps=3.3, slope_pct=float(rng.choice([-6, 6])), label="hill"),
                Segment("run", run_s, speed_mps=float(rng.uniform(2.8, 4.2)), turn_deg=180, label="turn"),
                Segment("stand", 5))
        sensor = Sensor.random_mounting(rng, rate_hz)
        yield simulate(Scenario(segs, sensor=sensor, seed=seed))


def sim_errors(run: SimulatedRun) -> dict:
    """Per-step errors of one simulated run, running steps only."""
    from strideclip.sim.body import STANDING_TILT_DEG

    h = run.hello
    m = run_metrics(run.counts, run.rate_hz, accel_g_per_count=h.accel_ug_per_lsb / 1e6,
                    gyro_dps_per_count=h.gyro_mdps_per_lsb_q8 / 256 / 1000)
    truth = run.steps
    md, mr = match_events(m["t_s"], truth["ic_t_s"], 0.05)
    ours, t = m[md], truth[mr]
    run_ok = t["kind"] == 2
    # The stride metrics of step k cover the stride from the previous contact: truth of step k-1.
    prev = truth[np.clip(mr - 1, 0, None)]
    n = CADENCE_SMOOTH_STEPS
    true_smooth = np.array([60 * len(truth["step_time_s"][max(0, j - n + 1):j + 1]) / truth["step_time_s"][max(0, j - n + 1):j + 1].sum()
                            for j in mr])
    out = {
        "cadence_spm": ours["cadence_spm"] - t["cadence_spm"],
        "cadence_smoothed_spm": ours["cadence_smoothed_spm"] - true_smooth,
        "pelvic_rotation_deg": ours["pelvic_rotation_deg"] - prev["rotation_range_deg"],
        "pelvic_drop_deg": ours["pelvic_drop_deg"] - prev["drop_range_deg"],
        "pelvic_tilt_deg": ours["pelvic_tilt_deg"] - t["tilt_range_deg"],
        "forward_lean_deg": ours["forward_lean_deg"] - (t["tilt_mean_deg"] - STANDING_TILT_DEG),
        "peak_vertical_g": ours["peak_vertical_g"] - t["impact_g"],
        "contact_ms": ours["contact_ms"] - t["contact_ms"],
        "vertical_oscillation_cm": ours["vertical_oscillation_cm"] - _true_oscillation_cm(run, t),
    }
    return {k: v[run_ok & (mr > 0)] for k, v in out.items()}


def _true_oscillation_cm(run, truth_steps) -> np.ndarray:
    """The same double integration on the simulator's exact centre-of-mass acceleration."""
    from strideclip.analysis.stepwindows import oscillation_cm

    g = run.body.vertical_grf_bw
    out = np.full(len(truth_steps), np.nan)
    for k, s in enumerate(truth_steps):
        a, b = int(s["ic_idx"]), int(s["ic_idx"] + round(s["step_time_s"] * run.rate_hz))
        if 0 <= a and b <= len(g) and b - a > 4:
            out[k] = oscillation_cm(g[None, a:b], np.ones((1, b - a), bool), np.array([b - a]), run.rate_hz)[0]
    return out


def evaluate_sim(rate_hz: int = 208, seeds: Iterable[int] = range(4)) -> dict:
    errs: dict[str, list] = {}
    for run in sim_runs(rate_hz, seeds):
        for k, v in sim_errors(run).items():
            errs.setdefault(k, []).extend(v)
    return {k: _stats(v) for k, v in errs.items()}


def rotation_drift_deg(hours: float = 2.0, rate_hz: int = 208, seed: int = 7) -> dict:
    """Rotation error in the first and the last 10 minutes of a long simulated run: drift shows as a trend."""
    from strideclip.sim import simulate, steady_run

    run = simulate(steady_run(hours * 60, seed=seed, rate_hz=rate_hz))
    e = sim_errors(run)["pelvic_rotation_deg"]
    n = max(1, len(e) // int(hours * 6))  # ~10 minutes of steps
    return {"first_10min": _stats(e[:n]), "last_10min": _stats(e[-n:]), "all": _stats(e)}


# ---- Voisard: U-turns ------------------------------------------------------------------------

TURN_SIDE_S = 2.0  # the heading is averaged over this much walking on each side of a U-turn
TURN_MARGIN_S = 0.5  # ... starting this far from the data set's marked turn


def evaluate_voisard_uturns(rate_hz: int = 208, root: str | os.PathLike | None = None) -> dict:
    """Gyro about the learnt vertical (the engine's body frame), integrated over each U-turn."""
    turns = []
    stills = 0
    for tr in datasets.load_voisard(root):
        counts = to_counts(tr.accel_g, tr.gyro_dps, tr.rate_hz, rate_hz)
        u0, u1 = (int(round(x * rate_hz)) for x in tr.info["uturn_s"])
        eng = _engine(rate_hz)  # the body frame as a live session would have learnt it by the turn
        feed_recording(eng, counts, _detect(counts, rate_hz), stop_idx=u0)
        frame = eng.calibrator.frame
        if frame is None:
            continue
        up = frame.standing_up if frame.standing_up is not None else frame.up  # a still spell: purest gravity
        stills += frame.standing_up is not None
        # The heading over the walk just after the turn against just before it (TURN_SIDE_S each
        # side, TURN_MARGIN_S from the marked turn): about two strides, so the pelvis's own yaw
        # swing averages out, and near enough that how straight the walker walks the legs does
        # not enter.
        yaw_dps = (counts[:, 3:6].astype(float) * GYRO_DPS_PER_COUNT - eng.calibrator.gyro_bias_dps) @ up
        heading = np.cumsum(yaw_dps) / rate_hz
        lo, hi = (int(x * rate_hz) for x in tr.eval_window_s)
        side, margin = int(TURN_SIDE_S * rate_hz), int(TURN_MARGIN_S * rate_hz)
        before = heading[max(lo, u0 - margin - side):u0 - margin]
        after = heading[u1 + margin:min(hi, u1 + margin + side)]
        if len(before) < rate_hz // 4 or len(after) < rate_hz // 4:
            continue
        turns.append(abs(float(after.mean() - before.mean())))
    err = np.array(turns) - 180.0
    return {"uturns": len(turns), "with_still_spell": stills, "turn_deg": _stats(turns) | {"median": round(float(np.median(turns)), 2)},
            "error_deg": _stats(err), "within_10deg_pct": round(100 * float(np.mean(np.abs(err) <= 10)), 1),
            "max_abs_error_deg": round(float(np.abs(err).max()), 2) if len(err) else math.nan}


# ---- the body frame on real data -------------------------------------------------------------

def _engine(rate_hz: int) -> MetricsEngine:
    return MetricsEngine(rate_hz=rate_hz, accel_g_per_count=ACCEL_G_PER_COUNT, gyro_dps_per_count=GYRO_DPS_PER_COUNT)


def _detect(counts: np.ndarray, rate_hz: int) -> np.ndarray:
    return StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=ACCEL_UG_PER_LSB).detect(counts).events_


def _learnt_frame(counts: np.ndarray, rate_hz: int):
    """The body frame a live session would have learnt by the end of the recording."""
    eng = _engine(rate_hz)
    feed_recording(eng, counts, _detect(counts, rate_hz))
    return eng.calibrator.frame


def evaluate_frames(rate_hz: int = 208, root: str | os.PathLike | None = None) -> dict:
    """Is the forward axis found, and the same, in every trial of a data set recorded with one
    sensor placement? Alcantara: the sensor's z is antero-posterior. Voisard: one placement at L5."""
    out = {}
    for name, trials in (("alcantara", datasets.load_alcantara(root)), ("voisard", datasets.load_voisard(root))):
        frames = [_learnt_frame(to_counts(t.accel_g, t.gyro_dps, t.rate_hz, rate_hz), rate_hz) for t in trials]
        fwd = np.array([f.forward for f in frames if f is not None and f.forward is not None])
        agree = np.array([f.forward_agreement for f in frames if f is not None])
        res = {"trials": len(trials), "forward_found": int(len(fwd)),
               "forward_agreement_median": round(float(np.median(agree)), 2) if len(agree) else None}
        if len(fwd):
            w, v = np.linalg.eigh(fwd.T @ fwd)  # the common axis, sign-free
            axis = v[:, 2]
            ang = np.degrees(np.arccos(np.minimum(1.0, np.abs(fwd @ axis))))
            res["line_deg_from_common_axis_median"] = round(float(np.median(ang)), 1)
            res["line_deg_from_common_axis_p90"] = round(float(np.percentile(ang, 90)), 1)
            res["same_sign_pct"] = round(100 * float(max(np.mean(fwd @ axis > 0), np.mean(fwd @ axis < 0))), 1)
        if name == "alcantara" and len(fwd):
            res["forward_deg_from_sensor_ap_axis_median"] = round(float(np.median(np.degrees(np.arccos(np.abs(fwd[:, 2]))))), 1)
        out[name] = res
    return out
