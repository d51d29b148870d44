"""The cadence plan: a metronome target that rises gradually over the weeks (issue #6).

From the runner's cadence when the plan starts, the target rises by 5 steps/min every 4 weeks,
spread evenly over the days, and never more than 10 % above that starting cadence. Raising step
rate by 5-10 % lowers hip and knee loading in running (Heiderscheit et al. 2011, Med Sci Sports
Exerc 43:296-302); gait retraining works when changes come gradually (Willy et al. 2016, Scand
J Med Sci Sports 26:197-205; Barton et al. 2016, Br J Sports Med 50:513-526). The target goes to
the cue policy as its metronome tempo (clipcore.cues K_TARGET_SPM, SET_CONFIG key 8, the
``target_spm`` cue setting), on the host and on the clip alike.

The start is given, or taken from the athlete's history: their first running session's median
cadence on that day (``strideclip.store.history.History.plan_target_spm``, ``strideclip plan --athlete``).
"""
from __future__ import annotations

import datetime as dt

SPM_PER_4_WEEKS = 5.0
MAX_RISE_PCT = 10.0
START_SPM_RANGE = (100, 240)  # a running cadence a plan can start from


def target_spm(start_spm: float, start: dt.date, today: dt.date, *, spm_per_4_weeks: float = SPM_PER_4_WEEKS,
               max_rise_pct: float = MAX_RISE_PCT) -> int:
    """The plan's target for today, whole steps/min (the clip's metronome takes whole numbers)."""
    if not START_SPM_RANGE[0] <= start_spm <= START_SPM_RANGE[1]:
        raise ValueError(f"a starting cadence of {start_spm} steps/min is not a running cadence "
                         f"({START_SPM_RANGE[0]}..{START_SPM_RANGE[1]})")
    if spm_per_4_weeks < 0 or max_rise_pct < 0:
        raise ValueError("the plan rises, never falls: the rate and the cap must be >= 0")
    days = max(0, (today - start).days)  # before the plan starts: the starting cadence
    rise = min(spm_per_4_weeks * days / 28.0, start_spm * max_rise_pct / 100.0)
    return int(start_spm + rise + 0.5)
