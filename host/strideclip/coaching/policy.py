"""The host's glue to the clip's cue policy (clipcore.cues): one detector event through the same
policy the clip runs on its own, and the metronome a clip plays, read from its cue log."""
from __future__ import annotations

import math
from array import array

import numpy as np

from clipcore import cues as cue_policy
from clipcore.steps import FLAG_RUNNING
from strideclip.coaching.cue import Cue


def cue_for_step(cfg: array[int], state: array[int], ev: np.void) -> int:
    """The clip's cue policy (clipcore.cues) for one detector event: a REASON_* code or NO_CUE."""
    return cue_for_event(cfg, state, int(ev["ic_idx"]), int(ev["step_samples"]), int(ev["flags"]),
                         int(ev["rotation_units"]))


def cue_for_event(cfg: array[int], state: array[int], ic_idx: int, step_samples: int, flags: int,
                  rotation_units: int) -> int:
    """``cue_for_step`` from the event's fields as plain ints (a session's steps: a field of a
    numpy row costs about half a microsecond)."""
    return cue_policy.on_step(cfg, state, ic_idx, step_samples, bool(flags & FLAG_RUNNING), rotation_units)


def playing_metronome(cues: list[Cue], now_s: float) -> dict | None:
    """The metronome a clip plays at ``now_s`` (clip time), from its cue log: the newest start or
    stop that reached the clip decides (a buzz leaves a metronome playing). None when none plays.
    A start of 0 s plays until stopped (the clip's haptics)."""
    for q in reversed(cues):
        if not q.sent:
            continue
        if q.t_s is None or q.played == "metronome_stop":
            return None
        if q.played == "metronome_start" and q.tempo_spm:
            left_s = math.inf if not q.duration_s else q.t_s + q.duration_s - now_s
            if left_s <= 0:
                return None
            return {"tempo_spm": int(q.tempo_spm), "remaining_s": round(left_s, 2) if math.isfinite(left_s) else None,
                    "cue_t_s": q.t_s}
    return None
