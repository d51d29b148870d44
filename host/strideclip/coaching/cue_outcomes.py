"""Did the cue help? For each cue of a session, from the per-step metrics after it:

- ``recovered_after_s``: running time from the cue until the runner was back - smoothed cadence
  within 2 % of the cue's tempo (cadence cues), or pelvic rotation back under its warm-up level
  plus 15 % (rotation cues, half the 30 % rise that cues) - and stayed there for 10 s; None if
  not within the 5 minutes after the cue (``watched_s``: how much of them the log holds);
  ``outcome_text`` says it in words, for every view;
- ``in_zone_pct``: the share of running steps in the cue and the 2 minutes after it with their
  cadence within 3 % of the tempo.

Only running steps count, as for the cue policy itself.
"""
from __future__ import annotations

import numpy as np

RECOVER_CADENCE_PCT = 2.0
RECOVER_ROTATION_PCT = 15.0
HOLD_S = 10.0
LOOK_S = 300.0
ZONE_PCT = 3.0
ZONE_AFTER_S = 120.0
WARMUP_S = 240.0  # the cue policy's warm-up (clipcore.cues default)


def cue_outcomes(table: np.ndarray, cues: list[dict], rate_hz: int) -> list[dict]:
    run = table[table["running"] == 1]
    if not len(run) or not rate_hz:
        return [_no_outcome(c) for c in cues]
    t = run["ic_idx"] / rate_hz
    cad = run["cadence_smoothed_spm"]
    rot = run["pelvic_rotation_deg"]
    warm = t < t[0] + WARMUP_S
    rot_base = float(np.nanmedian(rot[warm])) if np.isfinite(rot[warm]).any() else np.nan
    out = []
    for c in cues:
        if c["t_s"] is None:  # a cue the clip sent before it said its rate: no time to measure from
            out.append(_no_outcome(c))
            continue
        tempo = c.get("tempo_spm") or np.nan
        if c["reason"] == "rotation_spike":
            ok = rot <= rot_base * (1 + RECOVER_ROTATION_PCT / 100)
        else:
            ok = np.abs(cad - tempo) <= tempo * RECOVER_CADENCE_PCT / 100
        out.append({"t_s": c["t_s"], "reason": c["reason"],
                    "recovered_after_s": _recovered_after(t, ok, c["t_s"]),
                    "watched_s": round(float(np.clip(t[-1] - c["t_s"], 0, LOOK_S)), 1),  # running left in the log
                    "in_zone_pct": _in_zone(t, cad, tempo, c["t_s"], c["t_s"] + (c.get("duration_s") or 0) + ZONE_AFTER_S)})
    return out


def outcome_text(outcome: dict) -> str:
    """A cue's recovery in words, the one wording of ``replay`` and the report: "recovered after
    42 s"; "no recovery within 5 min" when the log holds the 5 minutes after the cue; "no recovery
    in the 57 s the log still has" when it ends sooner; "not measured: ..." for a cue without a time."""
    if outcome["recovered_after_s"] is not None:
        return f"recovered after {outcome['recovered_after_s']:.0f} s"
    if outcome["t_s"] is None:
        return "not measured: the clip sent the cue before it said its rate"
    watched_s = outcome.get("watched_s", LOOK_S)
    if watched_s >= LOOK_S:
        return f"no recovery within {LOOK_S / 60:.0f} min"
    return f"no recovery in the {watched_s:.0f} s the log still has"


def _no_outcome(cue: dict) -> dict:
    return {"t_s": cue["t_s"], "reason": cue["reason"], "recovered_after_s": None, "watched_s": 0.0,
            "in_zone_pct": None}


def _recovered_after(t: np.ndarray, ok: np.ndarray, t_cue: float) -> float | None:
    """Seconds after t_cue at which ``ok`` began a spell of at least HOLD_S (within LOOK_S)."""
    start = None
    for ti, good in zip(t[(t >= t_cue) & (t <= t_cue + LOOK_S)], ok[(t >= t_cue) & (t <= t_cue + LOOK_S)]):
        if good and start is None:
            start = ti
        elif not good:
            start = None
        if start is not None and ti - start >= HOLD_S:
            return round(float(start - t_cue), 1)
    return None


def _in_zone(t: np.ndarray, cad: np.ndarray, tempo: float, t0: float, t1: float) -> float | None:
    sel = (t >= t0) & (t <= t1) & np.isfinite(cad)
    if not sel.any() or not np.isfinite(tempo):
        return None
    return round(float(100 * np.mean(np.abs(cad[sel] - tempo) <= tempo * ZONE_PCT / 100)), 1)
