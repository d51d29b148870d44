"""How well the cue policy coaches (issue #6), on simulated runs with known fatigue.

Two families of runs, a runner and a route drawn per seed (``strideclip evaluate-cues``):

- **fatigue runs** (35 min): a warm-up walk, running with a hill, a turn and a traffic light,
  and fatigue from minute 10-18 that is either cadence-led (cadence -0.5..-1.0 %/min) or
  rotation-led (rotation +3..+6 %/min). A run is cued in time when its first cue after the onset
  comes at most 60 s after the earlier of "cadence 5 % down" and "rotation 30 % up" (the
  simulator's truth); a cue before the onset is a false cue.
- **steady runs** (40 min, no fatigue): hills up and down, pace changes, traffic-light stops,
  walking breaks and turns. Every cue is a false cue.

Cues come from exactly what the host and the clip run: clipcore's step detector on the raw
counts, then clipcore.cues on each step (as strideclip.session.pipeline does).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clipcore import cues as C
from clipcore import protocol as P
from strideclip.analysis.fatigue import FatigueTracker
from strideclip.analysis.metrics import metrics_for_counts
from strideclip.analysis.steps import StepDetector
from strideclip.coaching.policy import cue_for_step
from strideclip.sim import Fatigue, Runner, Scenario, Segment, Sensor, SimulatedRun, simulate

FATIGUE_RUN_MIN = 35.0
STEADY_RUN_MIN = 40.0
IN_TIME_S = 60.0


def _runner(rng) -> Runner:
    return Runner(run_cadence_spm_at_3mps=float(rng.uniform(164, 182)), rotation_range_deg=float(rng.uniform(8, 16)),
                  step_time_cv_pct=float(rng.uniform(1.5, 3.0)), heel_strike=float(rng.uniform(0.2, 0.9)))


def fatigue_scenario(seed: int, rate_hz: int = 208) -> Scenario:
    rng = np.random.default_rng(10_000 + seed)
    v = float(rng.uniform(2.9, 3.6))
    onset_s = float(rng.uniform(10, 18)) * 60
    segs = (Segment("stand", 10, label="start"), Segment("walk", 60, speed_mps=1.4, label="warm-up walk"),
            Segment("run", 300, speed_mps=v, label="easy"), Segment("run", 120, speed_mps=v, slope_pct=4, label="hill"),
            Segment("run", 60, speed_mps=v, turn_deg=180, label="turn"), Segment("stand", 30, label="traffic light"),
            Segment("run", FATIGUE_RUN_MIN * 60 - 580, speed_mps=v, label="steady"))
    if rng.random() < 0.5:
        fatigue = Fatigue(onset_s, cadence_pct_per_min=-float(rng.uniform(0.5, 1.0)), rotation_pct_per_min=1.5)
    else:
        fatigue = Fatigue(onset_s, cadence_pct_per_min=-0.2, rotation_pct_per_min=float(rng.uniform(3, 6)))
    return Scenario(segs, runner=_runner(rng), sensor=Sensor.random_mounting(rng, rate_hz), fatigue=fatigue,
                    seed=seed, name="fatigue")


def steady_scenario(seed: int, rate_hz: int = 208) -> Scenario:
    rng = np.random.default_rng(20_000 + seed)
    v = float(rng.uniform(2.9, 3.5))
    segs = [Segment("stand", 10, label="start"), Segment("walk", 60, speed_mps=1.4, label="warm-up walk")]
    left_s = STEADY_RUN_MIN * 60 - 70
    while left_s > 0:  # a route of random pieces until the time is up
        kind = rng.choice(["easy", "hill", "downhill", "faster", "slower", "turn", "traffic light", "walk break"],
                          p=[0.3, 0.15, 0.1, 0.1, 0.1, 0.1, 0.08, 0.07])
        dur = float(min(left_s, rng.uniform(60, 300)))
        if kind == "traffic light":
            seg = Segment("stand", min(dur, 45), label=kind)
        elif kind == "walk break":
            seg = Segment("walk", min(dur, 90), speed_mps=1.4, label=kind)
        else:
            speed = v * {"faster": 1.12, "slower": 0.88}.get(kind, 1.0)
            slope = {"hill": float(rng.uniform(3, 8)), "downhill": -float(rng.uniform(3, 6))}.get(kind, 0.0)
            seg = Segment("run", dur, speed_mps=speed, slope_pct=slope, turn_deg=180 if kind == "turn" else 0, label=kind)
        segs.append(seg)
        left_s -= seg.duration_s
    return Scenario(tuple(segs), runner=_runner(rng), sensor=Sensor.random_mounting(rng, rate_hz), seed=seed,
                    name="steady")


def threshold_s(truth: dict) -> float:
    """When a fatigue run reached a coaching threshold: cadence 5 % down or rotation 30 % up."""
    return min(truth.get("cadence_drop_5pct_s", np.inf), truth.get("rotation_rise_30pct_s", np.inf))


def step_events(run: SimulatedRun) -> np.ndarray:
    """The clip's step detector over the run's raw counts."""
    h = run.hello
    return StepDetector(sampling_rate_hz=h.rate_hz, accel_ug_per_lsb=h.accel_ug_per_lsb).detect(run.counts).events_


def cues_of(events: np.ndarray, rate_hz: int, config: dict | None = None) -> list[tuple[float, str]]:
    """(t_s, reason) of every cue the policy (with ``config``: {K_*: value}) asks for."""
    cfg, st = C.make_config(rate_hz), C.make_state()
    for key, value in (config or {}).items():
        cfg[key] = value
    out = []
    for ev in events:
        reason = cue_for_step(cfg, st, ev)
        if reason:
            out.append((float(ev["ic_idx"]) / rate_hz, P.REASON_NAMES[reason]))
    return out


def fatigue_entries(run: SimulatedRun, events: np.ndarray) -> list[float]:
    """Times (s) at which the host's fatigue state (strideclip.analysis.fatigue) became "fatigued"."""
    h = run.hello
    table = metrics_for_counts(run.counts, events, rate_hz=h.rate_hz, accel_g_per_count=h.accel_ug_per_lsb / 1e6,
                               gyro_dps_per_count=h.gyro_mdps_per_lsb_q8 / 256 / 1000)
    tracker, out = FatigueTracker(), []
    for row in table:
        before = tracker.state
        if tracker.add_step(row).state == "fatigued" and before != "fatigued":
            out.append(float(row["ic_idx"]) / h.rate_hz)
    return out


def simulate_runs(seeds: int, rate_hz: int = 208, *, fatigue_state: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Step events and truth of every run (the slow part), for scoring one or more policies;
    with ``fatigue_state`` also when the host's fatigue tracker declared fatigue.
    ``progress(runs done, runs)`` after each run."""
    out = {"fatigue": [], "steady": [], "rate_hz": rate_hz, "entries": {}}
    for seed in range(seeds):
        for kind, make in (("fatigue", fatigue_scenario), ("steady", steady_scenario)):
            if progress:
                progress(len(out["fatigue"]) + len(out["steady"]), 2 * seeds)
            run = simulate(make(seed, rate_hz))
            events = step_events(run)
            out[kind].append((seed, events, run.fatigue_truth(), run.scenario.duration_s))
            if fatigue_state:
                out["entries"][kind, seed] = fatigue_entries(run, events)
    if progress:
        progress(2 * seeds, 2 * seeds)
    return out


def score_fatigue_state(runs: dict) -> dict:
    """The host's fatigue state scored like the cues: entered within 60 s of the 5 %/30 % point
    on fatigue runs, never without fatigue."""
    in_time, lags, false, hours = [], [], 0, 0.0
    for seed, _events, truth, _dur in runs["fatigue"]:
        due_s = threshold_s(truth)
        entries = runs["entries"]["fatigue", seed]
        after = [t for t in entries if t >= truth["onset_s"]]
        false += len(entries) - len(after)
        hours += truth["onset_s"] / 3600
        in_time.append(bool(after and after[0] <= due_s + IN_TIME_S))
        if after:
            lags.append(after[0] - due_s)
    for seed, _events, _truth, dur in runs["steady"]:
        false += len(runs["entries"]["steady", seed])
        hours += dur / 3600
    return {"fatigue_state_in_time_pct": round(100 * float(np.mean(in_time)), 1),
            "fatigue_state_lag_s_median": round(float(np.median(lags)), 1) if lags else None,
            "fatigue_state_lag_s_max": round(float(np.max(lags)), 1) if lags else None,
            "false_fatigue_per_hour": round(false / hours, 2)}


def score(runs: dict, config: dict | None = None) -> dict:
    rate = runs["rate_hz"]
    fatigue_runs, steady_runs = [], []
    for seed, events, truth, _dur in runs["fatigue"]:
        due_s = threshold_s(truth)
        cues = cues_of(events, rate, config)
        early = [c for c in cues if c[0] < truth["onset_s"]]
        after = [c for c in cues if c[0] >= truth["onset_s"]]
        first = after[0] if after else None
        fatigue_runs.append({"seed": seed, "onset_s": round(truth["onset_s"], 1), "due_s": round(due_s, 1),
                             "first_cue_s": round(first[0], 1) if first else None,
                             "reason": first[1] if first else None,
                             "lag_s": round(first[0] - due_s, 1) if first else None,
                             "in_time": bool(first and first[0] <= due_s + IN_TIME_S), "false_cues": len(early)})
    for seed, events, _truth, dur in runs["steady"]:
        cues = cues_of(events, rate, config)
        steady_runs.append({"seed": seed, "minutes": round(dur / 60, 1), "cues": len(cues),
                            "cue_times_s": [round(c[0], 1) for c in cues], "reasons": [c[1] for c in cues]})
    lags = [r["lag_s"] for r in fatigue_runs if r["lag_s"] is not None]
    hours = sum(r["minutes"] for r in steady_runs) / 60 + sum(r["onset_s"] for r in fatigue_runs) / 3600
    false = sum(r["cues"] for r in steady_runs) + sum(r["false_cues"] for r in fatigue_runs)
    return {
        "seeds": len(fatigue_runs), "rate_hz": rate,
        "fatigue_cued_in_time_pct": round(100 * float(np.mean([r["in_time"] for r in fatigue_runs])), 1),
        "cue_lag_s_median": round(float(np.median(lags)), 1) if lags else None,
        "cue_lag_s_max": round(float(np.max(lags)), 1) if lags else None,
        "false_cues_per_hour": round(false / hours, 2), "hours_without_fatigue": round(hours, 1),
        "fatigue_runs": fatigue_runs, "steady_runs": steady_runs,
    }


def evaluate_cues(seeds: int = 20, rate_hz: int = 208, config: dict | None = None, *,
                  fatigue_state: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    runs = simulate_runs(seeds, rate_hz, fatigue_state=fatigue_state, progress=progress)
    out = score(runs, config)
    if fatigue_state:
        out.update(score_fatigue_state(runs))
    return out
