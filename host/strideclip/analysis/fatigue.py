"""The runner's fatigue state, from the per-step metrics against their own warm-up baseline.

Fatigue shows as form drifting the same way for minutes: cadence down, pelvic rotation and
drop up, landings harder (Mizrahi et al. 2000, Gait Posture 11:210-216 on fatigue and impact in
running; Schütte et al. 2015, Med Sci Sports Exerc 47:2436-2445 on trunk and pelvis
accelerations as fatigue sets in; Strohrmann et al. 2012, IEEE TITB 16:983-990 on wearable
running-technique changes with fatigue). What else moves these values - a hill, a change of
pace, a stop - moves them differently:

- Only running steps count, and running time is the clock: stops and walking breaks neither
  add evidence nor take it away.
- **Baseline**: medians of each metric over running time 60-240 s (after the first minute).
  The lean needs a standing spell first (its zero is the standing posture): in a session that
  starts on the move, its baseline is its first 30 s once it is known.
  With the athlete's history (``prior``: their usual form, the median of their latest sessions;
  strideclip.store.history; not the lean, which is measured against each session's own standing
  posture), a metric whose warm-up value is already past its threshold against the
  usual form - by the evidence rules below, except that any drop in impact marks a slower run,
  as pace differs more between sessions than within one - keeps the usual form as its baseline:
  a runner who starts a session already tired is measured against their normal self, not
  against today.
- **Now**: medians over the last 30 s of running (at least 20 running steps).
- **Evidence**, each in units of its threshold: cadence 5 % down, rotation 30 % up, drop 30 %
  up, impact (peak vertical g) 30 % up, forward lean (the stride's mean pelvic pitch against
  the standing posture) 4° more. Impact rises steeply downhill and with speed, cadence falls
  when the runner slows, a climber leans into the hill: so a cadence drop or a lean only counts
  while impact is not also down by more than 10 % (slowing down, climbing), and an impact rise
  only counts with another sign of fatigue (it is capped at the largest of the others).
- **Index**: the strongest piece of evidence.
- **State** with hysteresis: ``watch`` at index 0.6 (until it falls under 0.5); ``fatigued`` once the index held 0.9 for
  15 s of running; back to ``fresh`` after 60 s under 0.6. (Requiring two signs to agree, or
  a 60 s window and 30 s hold, declared fatigue 1-2.5 minutes after the coaching thresholds on
  the simulator: docs/cues.md.)

The thresholds follow the coaching rules of the cue policy (docs/cues.md); how the state was
measured is in docs/cues.md ("Fatigue state").
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

BASELINE_FROM_S, BASELINE_TO_S = 60.0, 240.0
WINDOW_S = 30.0
MIN_STEPS = 20
THRESHOLDS = {"cadence": 0.05, "rotation": 0.30, "drop": 0.30, "impact": 0.30}  # relative changes
LEAN_THRESHOLD_DEG = 4.0  # forward lean is an angle from the standing posture: its change in degrees
SLOWING_IMPACT_DOWN = 0.10
PRIOR_SLOWING_IMPACT_DOWN = 0.0  # across sessions pace differs more: any drop in impact is a slower run
WATCH, FATIGUED = 0.6, 0.9
WATCH_LEAVE = 0.5  # watch ends under this: an index hovering at 0.6 does not flap between states
ENTER_S, LEAVE_S = 15.0, 60.0
STATES = ("warming up", "fresh", "watch", "fatigued")

_COLUMNS = {"cadence": "cadence_smoothed_spm", "rotation": "pelvic_rotation_deg", "drop": "pelvic_drop_deg",
            "impact": "peak_vertical_g", "lean": "forward_lean_deg"}
_LEAN = list(_COLUMNS).index("lean")


@dataclass(slots=True)
class FatigueReading:
    state: str
    index: float | None
    evidence: dict  # metric -> evidence units (1.0 = its threshold)
    running_s: float


def prior_from_history(baseline: dict | None) -> dict | None:
    """The tracker's prior from ``History.baseline`` (session medians of the latest sessions)."""
    if not baseline:
        return None
    prior = {"cadence": baseline.get("cadence_spm"), "rotation": baseline.get("pelvic_rotation_deg"),
             "drop": baseline.get("pelvic_drop_deg"), "impact": baseline.get("peak_vertical_g")}
    return {m: float(v) for m, v in prior.items() if v is not None}


class FatigueTracker:
    def __init__(self, prior: dict | None = None):
        self.prior = prior or {}  # metric -> the athlete's usual value (prior_from_history)
        self.baseline_source: dict = {}  # metric -> "session" or "history"
        self.running_s = 0.0
        self.recent: deque = deque()  # (running_s, {metric: value})
        self._sorted: list[list] = [[] for _ in _COLUMNS]  # the finite values in ``recent``, sorted, per metric
        self.baseline_rows: list = []
        self.baseline: dict | None = None
        self.state = STATES[0]
        self._above_since: float | None = None
        self._below_since: float | None = None
        self.entered_s: list = []  # running time at each entry into "fatigued"
        self.last = FatigueReading(self.state, None, {}, 0.0)

    def add_step(self, row: np.void) -> FatigueReading:
        """One completed step (a STEP_METRICS_DTYPE row)."""
        return self._add(bool(row["running"]), float(row["step_time_s"]), [float(row[c]) for c in _COLUMNS.values()])

    def add_steps(self, rows: np.ndarray) -> list[FatigueReading]:
        """Completed steps in order (STEP_METRICS_DTYPE rows): the reading after each, as add_step
        row by row gives; the columns are read once (a field of one row costs about as much)."""
        columns = [rows[c].tolist() for c in ("running", "step_time_s", *_COLUMNS.values())]
        return [self._add(bool(running), step_s, values) for running, step_s, *values in zip(*columns)]

    def _add(self, running: bool, step_time_s: float, metric_values: list) -> FatigueReading:
        if not running or not math.isfinite(step_time_s):
            return self.last
        self.running_s += step_time_s
        if self.baseline is None:
            if self.running_s >= BASELINE_FROM_S:
                self.baseline_rows.append(dict(zip(_COLUMNS, metric_values)))
            if self.running_s >= BASELINE_TO_S:
                own = {m: _median([r[m] for r in self.baseline_rows]) for m in _COLUMNS}
                self.baseline, self.baseline_source = self._with_prior(own)
                self.state = "fresh"
            return self._reading(None, {})
        # (every running step comes here: lists in _COLUMNS' order, a dict only for what is said)
        recent, columns, isfinite = self.recent, self._sorted, math.isfinite
        recent.append((self.running_s, metric_values))
        for column, v in zip(columns, metric_values):
            if isfinite(v):
                bisect.insort(column, v)
        while recent and recent[0][0] < self.running_s - WINDOW_S:
            for column, v in zip(columns, recent.popleft()[1]):
                if isfinite(v):
                    del column[bisect.bisect_left(column, v)]
        if len(recent) < MIN_STEPS:
            return self._reading(None, {})
        now = dict(zip(_COLUMNS, map(_middle, columns)))
        if not isfinite(self.baseline["lean"]) and len(columns[_LEAN]) >= MIN_STEPS:
            self.baseline["lean"] = now["lean"]  # no lean in the warm-up (no standing spell yet): from the first one
        evidence = _evidence(now, self.baseline)
        index = _index(evidence)
        self._advance(index)
        return self._reading(index, evidence)

    def _with_prior(self, own: dict) -> tuple[dict, dict]:
        """Today's warm-up, except where it already shows a breakdown against the usual form."""
        prior = {m: self.prior.get(m, float("nan")) for m in _COLUMNS}
        off_form = _evidence(own, prior, slowing_impact_down=PRIOR_SLOWING_IMPACT_DOWN)
        use_prior = {m: off_form[m] >= 1.0 and np.isfinite(prior[m]) for m in _COLUMNS}
        return ({m: prior[m] if use_prior[m] else own[m] for m in _COLUMNS},
                {m: "history" if use_prior[m] else "session" for m in _COLUMNS})

    def _advance(self, index: float) -> None:
        t = self.running_s
        if index >= FATIGUED:
            self._above_since = t if self._above_since is None else self._above_since
        else:
            self._above_since = None
        if index < WATCH:
            self._below_since = t if self._below_since is None else self._below_since
        else:
            self._below_since = None
        if self.state != "fatigued":
            if self._above_since is not None and t - self._above_since >= ENTER_S:
                self.state = "fatigued"
                self.entered_s.append(t)
            else:
                watching = index >= WATCH or (self.state == "watch" and index >= WATCH_LEAVE)
                self.state = "watch" if watching else "fresh"
        elif self._below_since is not None and t - self._below_since >= LEAVE_S:
            self.state = "fresh"

    def _reading(self, index, evidence) -> FatigueReading:
        self.last = FatigueReading(self.state, None if index is None else round(index, 2), evidence, self.running_s)
        return self.last


def _evidence(now: dict, b: dict, *, slowing_impact_down: float = SLOWING_IMPACT_DOWN) -> dict:
    """Each metric's change from the baseline ``b``, in units of its threshold (fatigue's sign)."""
    impact = _change(now["impact"], b["impact"])
    ev_cadence = max(0.0, -_change(now["cadence"], b["cadence"])) / THRESHOLDS["cadence"]
    ev_rotation = max(0.0, _change(now["rotation"], b["rotation"])) / THRESHOLDS["rotation"]
    ev_drop = max(0.0, _change(now["drop"], b["drop"])) / THRESHOLDS["drop"]
    lean_deg = now["lean"] - b["lean"] if math.isfinite(now["lean"]) and math.isfinite(b["lean"]) else 0.0
    ev_lean = max(0.0, lean_deg) / LEAN_THRESHOLD_DEG
    if impact < -slowing_impact_down:
        ev_cadence = ev_lean = 0.0  # slowing down or climbing: cadence falls, a climber leans in
    ev_impact = min(max(0.0, impact) / THRESHOLDS["impact"], max(ev_cadence, ev_rotation, ev_drop, ev_lean))
    return {"cadence": round(ev_cadence, 2), "rotation": round(ev_rotation, 2), "drop": round(ev_drop, 2),
            "lean": round(ev_lean, 2), "impact": round(ev_impact, 2)}


def _change(value: float, base: float) -> float:
    """The relative change of a metric from its baseline (0 where either is unknown)."""
    return (value - base) / base if base and math.isfinite(base) and math.isfinite(value) else 0.0


def _index(evidence: dict) -> float:
    return max(evidence.values())


def _median(values) -> float:
    """Median of the finite values (nan if none)."""
    return _middle(sorted(x for x in values if math.isfinite(x)))


def _middle(v: list) -> float:
    """Median of a sorted list (nan if empty). The window's values are kept sorted as steps come
    and go: four numpy medians per step were a quarter of a whole log's replay time."""
    n = len(v)
    if not n:
        return float("nan")
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def fatigue_marks(changes: list[dict]) -> dict:
    """When the fatigue state first showed (``watch_s``: the start of the watch spell that became
    ``fatigued``, else the first watch) and when it became fatigued (``fatigued_s``); None for
    what did not happen. ``changes``: the summary's state changes in time order."""
    fatigued = next((c for c in changes if c["state"] == "fatigued"), None)
    if fatigued is None:
        watch = next((c for c in changes if c["state"] == "watch"), None)
    else:  # each entry is a change of state: the spell fatigue came from is the entry before it
        before = changes[:changes.index(fatigued)]
        watch = before[-1] if before and before[-1]["state"] == "watch" else None
    return {"watch_s": watch["t_s"] if watch else None, "fatigued_s": fatigued["t_s"] if fatigued else None}
