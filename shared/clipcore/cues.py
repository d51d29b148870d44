"""When to cue: the first, minimal cue policy, on the clip and the host alike (issue #6 grows it).

Fed once per detected running step, it learns the runner's own baseline after a warm-up and
asks for a metronome cue when form holds a breakdown for a sustained time:

* cadence drop: smoothed cadence more than DROP_PCT below the baseline,
* cadence floor: smoothed cadence under the floor (160 steps/min by default),
* rotation rise: smoothed pelvic rotation more than ROT_RISE_PCT above the baseline.

A condition must hold for SUSTAIN_S of running; it clears with hysteresis (half the margin).
After a cue nothing more for COOLDOWN_S. Escalation: a cue the runner did not recover from
(no condition cleared before the next) makes the next metronome longer (CUE_S x 2, then x 3),
and at the top level the cool-down doubles; a recovery starts again from the first level. Only running steps count (the detector flags a flight
phase), so a walk or a stop neither triggers nor clears anything. The baselines are running
medians (each step moves them a quarter step/min, or ~1.5 % for rotation, toward its own value),
so a few odd steps do not move them.

Formats: cadence in steps/min x 16 (``_q4``); rotation in detector yaw units (as reported per
stride); times in samples. All state in one int array; O(1) per step; no allocation.
"""
import array

from clipcore.wire import (REASON_CADENCE_DROP, REASON_CADENCE_FLOOR, REASON_ROTATION_SPIKE, RESULT_OK,
                           RESULT_OUT_OF_RANGE, RESULT_UNKNOWN_KEY)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# config[] indices and defaults
K_RATE = const(0)
K_FLOOR_SPM = const(1)
K_DROP_PCT = const(2)
K_ROT_RISE_PCT = const(3)
K_WARMUP_S = const(4)  # running time before the baselines are trusted
K_SUSTAIN_S = const(5)
K_COOLDOWN_S = const(6)
K_CUE_S = const(7)  # how long the metronome plays
K_TARGET_SPM = const(8)  # the metronome's tempo: a target from the cadence plan (0: the baseline)
N_CONFIG = const(9)
# rotation: a 25 % rise of the clip's yaw proxy, held 20 s, caught 24 of 24 simulated rotation
# and cadence breakdowns within a minute of the truth's 30 % / 5 % points with no false cue in
# 21.5 h without fatigue (strideclip evaluate-cues, docs/cues.md)
DEFAULTS = (208, 160, 5, 25, 240, 20, 120, 30, 0)

# SET_CONFIG keys (docs/protocol.md): key -> (config index, lowest, highest allowed). The clip
# checks a config command and the host a TOML file against the same ranges.
CONFIG_KEYS = {
    1: (K_FLOOR_SPM, 100, 220),
    2: (K_DROP_PCT, 1, 30),
    3: (K_ROT_RISE_PCT, 5, 200),
    4: (K_WARMUP_S, 0, 3600),
    5: (K_SUSTAIN_S, 5, 600),
    6: (K_COOLDOWN_S, 10, 3600),
    7: (K_CUE_S, 5, 600),
    8: (K_TARGET_SPM, 100, 240),  # or 0: no target
}
OFF_KEYS = (8,)  # keys where 0 means "not set"

NO_CUE = const(0)  # otherwise on_step returns the protocol's REASON_* code

# state[] indices
T_RUN = const(0)  # running samples seen
T_LAST_IC = const(1)
CAD_Q4 = const(2)  # smoothed cadence (EMA over ~8 steps)
BASE_CAD_Q4 = const(3)
ROT = const(4)  # smoothed rotation (EMA over ~4 strides)
BASE_ROT = const(5)
T_DROP = const(6)  # how long each condition has held, samples
T_FLOOR = const(7)
T_ROT = const(8)
T_LAST_CUE = const(9)
TEMPO_SPM = const(10)  # tempo of the cue just asked for
CUE_S = const(11)  # how long it plays
LEVEL = const(12)  # escalation: 0 first cue; +1 for each cue the runner did not recover from (max 2)
RECOVERED = const(13)  # 1 once every condition cleared since the last cue
N_STATE = const(14)
MAX_LEVEL = const(2)


def make_config(rate_hz):
    cfg = array.array("i", DEFAULTS)
    cfg[K_RATE] = rate_hz
    return cfg


def set_config(cfg, key, value):
    """Change one setting by its SET_CONFIG key; returns a wire RESULT_* code. On an unknown
    key or a value out of range nothing changes."""
    code = check_config(key, value)
    if code == RESULT_OK:
        cfg[CONFIG_KEYS[key][0]] = value
    return code


def check_config(key, value):
    """RESULT_OK if value is allowed for the SET_CONFIG key, else why not (wire RESULT_* code)."""
    if key not in CONFIG_KEYS:
        return RESULT_UNKNOWN_KEY
    _, lo, hi = CONFIG_KEYS[key]
    if lo <= value <= hi or (value == 0 and key in OFF_KEYS):
        return RESULT_OK
    return RESULT_OUT_OF_RANGE


def make_state():
    st = array.array("i", bytes(4 * N_STATE))  # no temporary list: the clip's heap is small
    st[T_LAST_IC] = -1
    st[T_LAST_CUE] = -0x3FFFFFFF
    return st


def _median_step(base, x, unit):
    """Move a running median one unit toward x."""
    if x > base:
        return base + unit
    if x < base:
        return base - unit
    return base


def on_step(cfg, st, ic_idx, step_samples, running, rot):
    """One detected step; returns a reason code (NO_CUE if none). st[TEMPO_SPM] holds the tempo."""
    rate = cfg[K_RATE]
    last = st[T_LAST_IC]
    st[T_LAST_IC] = ic_idx
    if not running or step_samples <= 0 or last < 0:
        return NO_CUE  # walking, a stop, or the first step after a gap: nothing counts
    dt = ic_idx - last
    st[T_RUN] += dt
    cad_q4 = (60 * 16 * rate) // step_samples
    if st[CAD_Q4] == 0:
        st[CAD_Q4] = cad_q4
        st[BASE_CAD_Q4] = cad_q4
    st[CAD_Q4] += (cad_q4 - st[CAD_Q4]) >> 3
    if rot > 0:
        if st[ROT] == 0:
            st[ROT] = rot
            st[BASE_ROT] = rot
        st[ROT] += (rot - st[ROT]) >> 2
    warm = st[T_RUN] >= cfg[K_WARMUP_S] * rate
    if not warm:  # learning the runner's own cadence and rotation
        st[BASE_CAD_Q4] = _median_step(st[BASE_CAD_Q4], cad_q4, 4)  # 1/4 step/min per step
        if rot > 0:
            st[BASE_ROT] = _median_step(st[BASE_ROT], rot, 1 + (st[BASE_ROT] >> 6))
        return NO_CUE
    cad = st[CAD_Q4]
    base = st[BASE_CAD_Q4]
    drop = cfg[K_DROP_PCT]
    drop_ok = cad * 200 >= base * (200 - drop)
    st[T_DROP] = _held(st[T_DROP], dt, cad * 100 < base * (100 - drop), drop_ok)
    floor_q4 = cfg[K_FLOOR_SPM] << 4
    floor_ok = cad >= floor_q4 + 32
    st[T_FLOOR] = _held(st[T_FLOOR], dt, cad < floor_q4, floor_ok)
    rise = cfg[K_ROT_RISE_PCT]
    rb = st[BASE_ROT]
    rot_ok = rb <= 0 or st[ROT] * 200 <= rb * (200 + rise)
    st[T_ROT] = _held(st[T_ROT], dt, rb > 0 and st[ROT] * 100 > rb * (100 + rise), rot_ok)
    if drop_ok and floor_ok and rot_ok:
        st[RECOVERED] = 1  # back within every margin (hysteresis) since the last cue
    # cool-down, longer at the top level so a runner who cannot hold the form is not nagged
    cooldown = cfg[K_COOLDOWN_S] * rate
    if st[LEVEL] == MAX_LEVEL:
        cooldown += cooldown
    if ic_idx - st[T_LAST_CUE] < cooldown:
        return NO_CUE
    need = cfg[K_SUSTAIN_S] * rate
    reason = NO_CUE
    if st[T_FLOOR] >= need:
        reason = REASON_CADENCE_FLOOR
    elif st[T_DROP] >= need:
        reason = REASON_CADENCE_DROP
    elif st[T_ROT] >= need:
        reason = REASON_ROTATION_SPIKE
    if reason == NO_CUE:
        return NO_CUE
    tempo = cfg[K_TARGET_SPM]  # the plan's target ...
    if tempo == 0:
        tempo = (base + 8) >> 4  # ... or the runner's own cadence ...
    if tempo < cfg[K_FLOOR_SPM]:
        tempo = cfg[K_FLOOR_SPM]  # ... but never under the floor
    st[TEMPO_SPM] = tempo
    # escalation: a runner who did not recover since the last cue gets a longer metronome
    if st[T_LAST_CUE] >= 0 and not st[RECOVERED]:
        if st[LEVEL] < MAX_LEVEL:
            st[LEVEL] += 1
    else:
        st[LEVEL] = 0
    st[RECOVERED] = 0
    st[CUE_S] = cfg[K_CUE_S] * (1 + st[LEVEL])
    st[T_LAST_CUE] = ic_idx
    st[T_DROP] = st[T_FLOOR] = st[T_ROT] = 0
    return reason


def _held(t, dt, bad, good):
    """How long a condition has held: grows while bad, clears once good (hysteresis between)."""
    if bad:
        return t + dt
    if good:
        return 0
    return t
