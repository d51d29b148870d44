"""Streaming fixed-point step detector: the same code on the clip (MicroPython) and the host.

Algorithm (docs/step-detector.md has the reasoning and the measurements):

1. |a|, the acceleration norm in mg: orientation-free, so no calibration is needed to count steps.
2. A 2nd-order Butterworth low-pass of |a| whose cutoff follows the cadence (2 / step period
   running, 1.625 / step period walking, 2.5..8 Hz): one hump per step in walking and running.
3. A hump starts when the filtered |a| rises above its trough by a prominence that adapts to the
   recent step amplitude (which decays when steps stop, so a walk after a run is still seen),
   and is lower when a walking step is due.
4. The contact is where the rise crosses a fraction of the expected step height, less the
   filter's delay: 20 % after a flight phase (running: the trough of the lightly smoothed |a|
   is near 0 g), 78 % without one (walking: the trough stays near 0.8 g, or above 0.35 g at a
   walking cadence); in between both blend.
5. After a flight phase the estimate is refined to the first clear rise of the lightly
   smoothed |a| near it: the landing itself.
6. The step is emitted as soon as its contact is known (~70 ms after it when running).
Side: gravity is tracked with a slow low-pass, the gyro projected on it and integrated with a
leak; in the 150 ms before a left contact the pelvis yaws clockwise (seen from above), before a
right one anticlockwise (measured on Voisard's 3746 labelled contacts), and these votes, which
alternate with the steps, settle which step is which. Per stride the yaw
range is reported (a pelvic rotation proxy for the clip's own cues).

On the clip the per-sample code is MicroPython viper (machine words, direct array access; ~12x
faster than bytecode); under CPython the same source runs as plain Python.

Formats (integers only; ranges hold for any int16 input, so no value reaches 2^30, neither the
ESP32's 32-bit viper words nor its small ints overflow, and nothing allocates):
  accel                 mg: |x| <= 16 000 at +-16 g ((counts x K_ACC + 2^12) >> 13, K_ACC <= 2^14),
                        clamped to +-16 383
  |a|                   mg, <= 28 376; clamped to 8191 before the low-pass
  filtered |a|          y, mg x 2 (Q1), <= 16 382
  step height           mg x 2^5, <= 5.3e5 (its decay by 2^-shift per sample needs the bits)
  filter coefficients   b0 and the poles' distance from (-2, 1), d1 and d2, in Q16/Q17/Q18 at
                        104/208/416 Hz (steps_table.py); each product <= 7.6e8, their sum
                        with the carried remainder <= 1.6e9 < 2^31
  smoothed |a| slope    d = sum of W newest minus W previous |a|, mg x W
  gravity               mg x 2^12 (<= 6.8e7); its norm mg x 4 (components clamped to +-4 g); up x 2^14
  yaw                   theta = leaky sum of (gyro counts >> 2) . up, |theta| <= 2^23
  times                 sample index from the first sample fed; sub-sample times x 16 (_q4)
"""
import array

from clipcore.steps_table import FC_MIN_Q4, FC_ROWS, FC_STEP_Q4, TABLES

try:
    import micropython
    from micropython import const
except ImportError:  # CPython: the viper functions run as plain Python (clipcore.viper)
    from clipcore.viper import micropython, ptr16, ptr32

    def const(x):
        return x

from clipcore.viper import SX


RATES_HZ = (104, 208, 416)

# Tuning, in physical units; one configuration for all data sets (docs/step-detector.md).
FC_MULT_Q4 = const(32)  # low-pass cutoff = 2 / step period (x 16) after a flight phase ...
FC_WALK_Q4 = const(26)  # ... 1.625 / step period in walking: fewer within-step bumps survive
PERIOD_INIT_MS = const(550)
PROM_MIN_MG = const(160)  # a hump must rise at least this much ...
PROM_FRAC_Q8 = const(128)  # ... and 50 % of the recent step height;
PROM_RHY_MIN_MG = const(80)  # within 1.5 step periods of the last contact (the rhythm expects a
# step) this much suffices: a walk's first hump, a weight shift before the first contact, is smaller
PROM_DUE_Q8 = const(230)  # walking, from 90 % of a step period after the last contact (the next
PROM_DUE_FRAC_Q8 = const(51)  # step is due) 20 % of the step height suffices: slowing, closing steps
FALL_FRAC_Q8 = const(64)  # the hump has passed when |a| fell 25 % of the prominence
TOP_FRAC_Q8 = const(16)  # a hump that tops out below the expected level is timed (at its own
# fraction) once |a| fell 6 % of the prominence from its top, not 25 %: sooner emitted
REFRACTORY_Q8 = const(150)  # no new hump within 59 % of a step period
F_RUN_Q8 = const(51)  # contact at 20 % of the rise after a flight phase ...
F_WALK_Q8 = const(200)  # ... 78 % without one
F_TOP_Q8 = const(128)  # a hump that tops out below the level: at 50 % of its own rise (walking)
EXPECT_Q8 = const(192)  # the expected rise: 75 % of the recent step height (or the hump's rise
# so far, or in walking twice the trough's depth below 1 g, if larger)
TROUGH_RUN_MG = const(300)  # smoothed |a| trough below this: a flight phase (running)
TROUGH_WALK_MG = const(700)  # above this: no flight (walking); and a trough above WALK_TROUGH_MG
WALK_TROUGH_MG = const(350)  # at a step period over WALK_PERIOD_MS (under 140 steps/min) is walking
WALK_PERIOD_MS = const(430)  # too: some walkers' |a| dips to 0.4 g (Voisard subjects 11 and 17)
D0_RUN_MS = const(-5)  # extra lag, running, beyond the filter's delay
D0_WALK_MS = const(-30)  # extra lag, walking
REFINE_BEFORE_MS = const(60)  # landing search window around the estimate
REFINE_AFTER_MS = const(60)
REFINE_LAG_MS = const(15)  # the landing's steepest rise comes this long after the contact
REFINE_FIRST_Q8 = const(77)  # the first slope peak of at least 30 % of the window's largest
AMP_INIT_MG = const(400)
PERIOD_SHIFT = const(2)  # the step period follows each new step by 1/4
AMP_SHIFT = const(1)  # the step height follows each new step by 1/2
AMP_DECAY_S_Q4 = const(13)  # with no steps the step height decays with a 0.8 s time constant
YAW_LEAK_SHIFT = const(9)  # leaky yaw integrator (~2.5 s at 208 Hz): turns and gyro bias fade
SIDE_MIN = const(40)  # yaw change below this gives no side evidence
SIDE_WINDOW_MS = const(150)  # the yaw change over this long before the contact
CLAMP_MG = const(8191)
ACC_MAX_MG = const(16383)  # accel components are clamped here (+-16 g is the widest full-scale)
RING = const(256)  # history of |a|, its slope and the filtered |a| (1.2 s at 208 Hz)
MASK = const(255)

# cfg[] indices
C_K_ACC = const(0)
C_W = const(1)  # light smoothing window, samples (~10 ms)
C_W_SHIFT = const(2)
C_G_SHIFT = const(3)  # gravity low-pass time constant 2^shift samples (~1.2 s)
C_RATE = const(4)
C_D0_RUN_Q4 = const(5)
C_D0_WALK_Q4 = const(6)
C_REF_BEFORE = const(7)
C_REF_AFTER = const(8)
C_REF_LAG_Q4 = const(9)  # refine lag plus the slope window's centre, samples x 16
C_DECAY_SHIFT = const(10)
C_MIN_PERIOD = const(11)  # 0.25 s, samples
C_MAX_PERIOD = const(12)  # 1.6 s, samples
C_MAX_STEP = const(13)  # 2.0 s: longer gaps give no step_samples
C_SIDE_WIN = const(14)  # SIDE_WINDOW_MS in samples
N_CFG = const(15)

# state[] indices
S_IDX = const(0)
S_GX = const(1)
S_GY = const(2)
S_GZ = const(3)
S_UX = const(4)
S_UY = const(5)
S_UZ = const(6)
S_NORM = const(7)
S_SUM1 = const(8)
S_SUM2 = const(9)
S_X1 = const(10)  # filter input history (mg x 2)
S_X2 = const(11)
S_Y1 = const(12)  # filter output history (mg x 2)
S_Y2 = const(13)
S_ERR = const(14)  # the filter's last two rounding remainders (error feedback)
S_ROW = const(15)  # filter table row in use
S_PERIOD_Q4 = const(16)
S_AMP = const(17)  # recent step height, mg x 2^5 (filtered units x 16: the decay needs the bits)
S_STATE = const(18)  # 0 seeking a hump, 1 rising, 2 waiting for the hump to pass
S_TR_V = const(19)  # trough of the filtered |a|
S_TR_I = const(20)
S_PK_V = const(21)
S_RAW_TR = const(22)  # trough of the lightly smoothed |a| since the last contact, mg
S_LAST_IC_Q4 = const(23)  # last contact, samples x 16 (-1: none since reset)
S_LAST_RISE = const(24)
S_LEVEL = const(25)
S_CROSS_Q4 = const(26)  # -1 while the rise has not crossed the level
S_MODE_Q8 = const(27)  # 0 running .. 256 walking, for the step in hand
S_PEND_Q4 = const(28)  # contact waiting to be emitted (-1: none)
S_PEND_AT = const(29)
S_PEND_MODE = const(30)
S_FIRST_AMP = const(31)
S_PEAK_MG = const(32)  # largest |a| since the last contact (the step's impact)
S_THETA = const(33)
S_TH_MIN = const(34)
S_TH_MAX = const(35)
S_SIDE_SCORE = const(36)
S_PARITY = const(37)
S_RESYNC = const(38)
S_STEPS = const(39)
S_GNORM_Q2 = const(40)  # |gravity|, mg x 4: the walking oscillation is centred on it
S_ERR2 = const(41)
N_STATE = const(42)

# events[] layout
E_IC = const(0)  # sample index of the initial contact
E_SIDE = const(1)  # 0 left, 1 right, 255 unknown
E_IMPACT_MG = const(2)  # largest |a| between the previous contact and this step's emission
E_STEP_SAMPLES = const(3)  # samples since the previous contact, 0 if none
E_EMIT = const(4)  # sample index at which the step was emitted
E_ROT = const(5)  # yaw range of the stride that ended at this contact (0 on odd steps)
E_FLAGS = const(6)  # FLAG_* bits
EV_FIELDS = const(7)
FLAG_RESYNC = const(1)  # the first step after a reset or resync: nothing before it is measured against it
FLAG_RUNNING = const(2)  # a flight phase before this contact (the cue policy counts only running steps)

SIDE_LEFT = const(0)
SIDE_RIGHT = const(1)
SIDE_UNKNOWN = const(255)


def _samples(ms, rate_hz):
    return (ms * rate_hz + (500 if ms >= 0 else -500)) // 1000


def make_config(rate_hz, accel_ug_per_lsb):
    """Integer configuration for one sampling rate and accelerometer sensitivity."""
    if rate_hz not in RATES_HZ:
        raise ValueError("step detector runs at 104, 208 or 416 Hz, not %d" % rate_hz)
    if not 1 <= accel_ug_per_lsb <= 2000:
        raise ValueError("accelerometer sensitivity %d ug/count out of range" % accel_ug_per_lsb)
    w_shift = 0 if rate_hz == 104 else (1 if rate_hz == 208 else 2)
    w = 1 << w_shift
    cfg = array.array("i", bytes(4 * N_CFG))
    cfg[C_K_ACC] = (accel_ug_per_lsb * 8192 + 500) // 1000  # Q13: 0.01 % scale error at +-16 g
    cfg[C_W] = w
    cfg[C_W_SHIFT] = w_shift
    cfg[C_G_SHIFT] = 7 + w_shift
    cfg[C_RATE] = rate_hz
    cfg[C_D0_RUN_Q4] = (D0_RUN_MS * rate_hz * 16) // 1000
    cfg[C_D0_WALK_Q4] = (D0_WALK_MS * rate_hz * 16) // 1000
    cfg[C_REF_BEFORE] = _samples(REFINE_BEFORE_MS, rate_hz)
    cfg[C_REF_AFTER] = _samples(REFINE_AFTER_MS, rate_hz)
    # The slope d at sample k spans the two W-sample windows ending at k: centred W - 1/2 back.
    cfg[C_REF_LAG_Q4] = (REFINE_LAG_MS * rate_hz * 16) // 1000 + 16 * w - 8
    # time constant AMP_DECAY_S at this rate, as a shift: 2^shift ~ 0.8 s x rate
    shift = 0
    while (1 << (shift + 1)) <= (AMP_DECAY_S_Q4 * rate_hz) // 16:
        shift += 1
    cfg[C_DECAY_SHIFT] = shift
    cfg[C_MIN_PERIOD] = rate_hz // 4
    cfg[C_MAX_PERIOD] = (rate_hz * 8) // 5
    cfg[C_MAX_STEP] = rate_hz * 2
    cfg[C_SIDE_WIN] = _samples(SIDE_WINDOW_MS, rate_hz)
    return cfg


def make_state(rate_hz):
    st = array.array("i", bytes(4 * N_STATE))  # no temporary list: the clip's heap is small
    st[S_PERIOD_Q4] = (PERIOD_INIT_MS * rate_hz * 16) // 1000
    st[S_ROW] = filter_row(st[S_PERIOD_Q4], rate_hz, FC_MULT_Q4)
    st[S_AMP] = AMP_INIT_MG << 5
    reset(st, 0)
    return st


def reset(st, next_idx):
    """Forget the step in hand (after a gap in the stream); keep gravity and the learned rhythm."""
    st[S_IDX] = next_idx
    st[S_STATE] = 0
    st[S_TR_V] = 0x3FFFFFFF
    st[S_TR_I] = next_idx
    st[S_RAW_TR] = 0x3FFFFFFF
    st[S_LAST_IC_Q4] = -1
    st[S_LAST_RISE] = -0x3FFFFFFF
    st[S_CROSS_Q4] = -1
    st[S_PEND_Q4] = -1
    st[S_PEAK_MG] = 0
    st[S_RESYNC] = 1
    st[S_SUM1] = -1  # refill the histories from the next sample
    st[S_FIRST_AMP] = 1
    st[S_SIDE_SCORE] = 0


_RATE_TABLES = {}  # rate -> int array of the table's rows, made on first use


def rate_table(rate_hz):
    """The filter table of one rate as an unsigned 16-bit array (5 values per row: steps_table.py), made once."""
    t = _RATE_TABLES.get(rate_hz)
    if t is None:
        t = array.array("H", TABLES[rate_hz])
        _RATE_TABLES[rate_hz] = t
    return t


def filter_row(period_q4, rate_hz, mult_q4):
    """Table row for a cutoff of mult_q4 / 16 / period, clamped to the table."""
    fc_q4 = (mult_q4 * 16 * rate_hz) // (period_q4 if period_q4 > 0 else 1)
    row = (fc_q4 - FC_MIN_Q4 + FC_STEP_Q4 // 2) // FC_STEP_Q4
    if row < 0:
        return 0
    if row >= FC_ROWS:
        return FC_ROWS - 1
    return row


@micropython.viper
def _isqrt(n: int, guess: int) -> int:
    """floor(sqrt(n)) for 0 <= n < 2^30 by Newton's method from above."""
    if n <= 0:
        return 0
    y = guess
    if y * y < n:
        y = n if n < 32768 else 32768
    while True:
        z = (y + n // y) >> 1
        if z >= y:
            return y
        y = z


@micropython.viper
def _cross_back(ring_y, level: int, lo: int, hi: int) -> int:
    """Where the filtered |a| last rose through level between samples lo and hi (x 16);
    lo x 16 if it was already above it at lo."""
    ry = ptr32(ring_y)
    sx = int(SX)
    j = hi
    while j > lo and ((ry[(j - 1) & MASK] << sx) >> sx) >= level:
        j -= 1
    if j == lo:
        return lo << 4
    y0 = (ry[(j - 1) & MASK] << sx) >> sx
    y1 = (ry[j & MASK] << sx) >> sx
    return ((j - 1) << 4) + (((level - y0) << 4) // (y1 - y0 if y1 > y0 else 1))


@micropython.viper
def _refine(ring_d, coarse_q4: int, now: int, before: int, after: int, lag_q4: int) -> int:
    """The first clear rise of the lightly smoothed |a| near a contact estimate (running)."""
    rd = ptr32(ring_d)
    sx = int(SX)
    a = (coarse_q4 >> 4) - before
    b = (coarse_q4 >> 4) + after
    if b > now:
        b = now
    if a < now - MASK + 1:
        a = now - MASK + 1
    if b - a < 2:
        return coarse_q4
    top = (rd[a & MASK] << sx) >> sx
    k = a + 1
    while k <= b:
        v = (rd[k & MASK] << sx) >> sx
        if v > top:
            top = v
        k += 1
    if top <= 0:
        return coarse_q4
    need = (top * REFINE_FIRST_Q8) >> 8
    best = -1
    k = a + 1
    while k < b:
        v = (rd[k & MASK] << sx) >> sx
        if v >= need and v >= ((rd[(k - 1) & MASK] << sx) >> sx) and v >= ((rd[(k + 1) & MASK] << sx) >> sx):
            best = k
            break
        k += 1
    if best < 0:
        return coarse_q4
    # parabola through the three slopes around the peak: sub-sample position, x 16
    dm = (rd[(best - 1) & MASK] << sx) >> sx
    dk = (rd[best & MASK] << sx) >> sx
    dp = (rd[(best + 1) & MASK] << sx) >> sx
    curv = dm - 2 * dk + dp
    frac_q4 = ((dm - dp) << 3) // curv if curv < 0 else 0
    return (best << 4) + frac_q4 - lag_q4


@micropython.viper
def detect_block(samples, start: int, n: int, cfg, st, table, ring_n, ring_d, ring_y, ring_th, events,
                 max_events: int) -> int:
    """Feed samples[start*6 : (start+n)*6] (int16 counts ax, ay, az, gx, gy, gz per sample).

    Writes up to max_events steps into events (EV_FIELDS ints each) and returns how many. When
    the events are full it stops early: st[S_IDX] tells how far it got; feed the rest after
    reading the events. No step is ever dropped. table is rate_table(cfg[C_RATE]).

    On the clip this is viper code: machine-word integers in registers and direct array access.
    Array loads are sign-extended by hand ((v << sx) >> sx for int32, which a 64-bit port
    zero-extends; ((v + 0x8000) & 0xFFFF) - 0x8000 for the int16 samples); under CPython the
    arrays are indexed as they are and the same expressions change nothing.
    """
    smp = ptr16(samples)
    cf = ptr32(cfg)
    s_ = ptr32(st)
    tb = ptr16(table)  # every table value is positive and < 2^16 (steps_table.py)
    rn = ptr32(ring_n)
    rdl = ptr32(ring_d)
    ry = ptr32(ring_y)
    rth = ptr32(ring_th)
    ev = ptr32(events)
    sx = int(SX)
    rate = cf[C_RATE]
    k_acc = cf[C_K_ACC]
    w = cf[C_W]
    w_shift = cf[C_W_SHIFT]
    g_shift = cf[C_G_SHIFT]
    g_half = 1 << (g_shift - 1)  # rounded: floored, the gravity would settle low
    decay_shift = cf[C_DECAY_SHIFT]
    d0_run_q4 = (cf[C_D0_RUN_Q4] << sx) >> sx
    d0_walk_q4 = (cf[C_D0_WALK_Q4] << sx) >> sx
    ref_before = cf[C_REF_BEFORE]
    ref_after = cf[C_REF_AFTER]
    ref_lag_q4 = cf[C_REF_LAG_Q4]
    min_period = cf[C_MIN_PERIOD]
    max_period = cf[C_MAX_PERIOD]
    max_step = cf[C_MAX_STEP]
    side_win = cf[C_SIDE_WIN]
    idx = s_[S_IDX]
    gx = (s_[S_GX] << sx) >> sx
    gy = (s_[S_GY] << sx) >> sx
    gz = (s_[S_GZ] << sx) >> sx
    ux = (s_[S_UX] << sx) >> sx
    uy = (s_[S_UY] << sx) >> sx
    uz = (s_[S_UZ] << sx) >> sx
    gnorm = s_[S_GNORM_Q2]
    norm = s_[S_NORM]
    sum1 = (s_[S_SUM1] << sx) >> sx
    sum2 = s_[S_SUM2]
    x1 = s_[S_X1]
    x2 = s_[S_X2]
    y1 = (s_[S_Y1] << sx) >> sx
    y2 = (s_[S_Y2] << sx) >> sx
    err = s_[S_ERR]
    err2 = s_[S_ERR2]
    row = s_[S_ROW]
    b0 = tb[5 * row]
    d1 = tb[5 * row + 1]
    d2 = tb[5 * row + 2]
    delay_q4 = tb[5 * row + 3]
    qk = tb[5 * row + 4]
    theta = (s_[S_THETA] << sx) >> sx
    th_min = (s_[S_TH_MIN] << sx) >> sx
    th_max = (s_[S_TH_MAX] << sx) >> sx
    raw_tr = s_[S_RAW_TR]
    peak_mg = s_[S_PEAK_MG]
    pend_q4 = (s_[S_PEND_Q4] << sx) >> sx
    pend_at = s_[S_PEND_AT]
    pend_mode = s_[S_PEND_MODE]
    state = s_[S_STATE]
    amp = s_[S_AMP]
    tr_v = (s_[S_TR_V] << sx) >> sx
    tr_i = s_[S_TR_I]
    pk_v = (s_[S_PK_V] << sx) >> sx
    last_q4 = (s_[S_LAST_IC_Q4] << sx) >> sx
    last_rise = (s_[S_LAST_RISE] << sx) >> sx
    period_q4 = s_[S_PERIOD_Q4]
    level = (s_[S_LEVEL] << sx) >> sx
    cross_q4 = (s_[S_CROSS_Q4] << sx) >> sx
    mode = s_[S_MODE_Q8]
    prom = (amp * PROM_FRAC_Q8) >> 12
    if prom < PROM_MIN_MG * 2:
        prom = PROM_MIN_MG * 2
    fall = (prom * FALL_FRAC_Q8) >> 8
    top = (prom * TOP_FRAC_Q8) >> 8
    idle_q4 = (period_q4 * 3) >> 1
    refractory = (period_q4 * REFRACTORY_Q8) >> 12
    walk_period_q4 = (WALK_PERIOD_MS * rate * 16) // 1000
    n_ev = 0
    p = start * 6
    end = (start + n) * 6
    while p < end and n_ev < max_events:
        # rounded, not floored: a floor puts each axis 0.5 mg low, and |a| up to 0.9 mg off
        ax = (((((smp[p] + 0x8000) & 0xFFFF) - 0x8000) * k_acc + 4096) >> 13)
        ay = (((((smp[p + 1] + 0x8000) & 0xFFFF) - 0x8000) * k_acc + 4096) >> 13)
        az = (((((smp[p + 2] + 0x8000) & 0xFFFF) - 0x8000) * k_acc + 4096) >> 13)
        # +-16 g is the widest full-scale: larger values (a coarser sensitivity) are clamped
        # there, so |a|^2 stays below 2^30 on the clip's 32-bit words
        ax = ACC_MAX_MG if ax > ACC_MAX_MG else (-ACC_MAX_MG if ax < -ACC_MAX_MG else ax)
        ay = ACC_MAX_MG if ay > ACC_MAX_MG else (-ACC_MAX_MG if ay < -ACC_MAX_MG else ay)
        az = ACC_MAX_MG if az > ACC_MAX_MG else (-ACC_MAX_MG if az < -ACC_MAX_MG else az)
        # Gravity (slow low-pass) gives the up vector, renewed every 16 samples, for the yaw. Its
        # 12 fractional bits keep the update's dead band under 0.1 mg: with 4 it was 16 mg per
        # axis, where a still clip's gravity could stick, and |g| sets the walking level.
        gx += ((ax << 12) - gx + g_half) >> g_shift
        gy += ((ay << 12) - gy + g_half) >> g_shift
        gz += ((az << 12) - gz + g_half) >> g_shift
        if idx & 15 == 0:
            # |g| in mg x 4; components clamped to +-4 g (real gravity is 1 g) keep the squares small
            qx = (gx + 512) >> 10
            qy = (gy + 512) >> 10
            qz = (gz + 512) >> 10
            qx = 16383 if qx > 16383 else (-16383 if qx < -16383 else qx)
            qy = 16383 if qy > 16383 else (-16383 if qy < -16383 else qy)
            qz = 16383 if qz > 16383 else (-16383 if qz < -16383 else qz)
            gnorm = int(_isqrt(qx * qx + qy * qy + qz * qz, 4096))
            if gnorm > 1200:  # a dead sensor or free fall (< 0.3 g) has no up
                ux = (qx << 14) // gnorm
                uy = (qy << 14) // gnorm
                uz = (qz << 14) // gnorm
            else:
                ux = 0
                uy = 0
                uz = 0
        gyx = (((smp[p + 3] + 0x8000) & 0xFFFF) - 0x8000) >> 2
        gyy = (((smp[p + 4] + 0x8000) & 0xFFFF) - 0x8000) >> 2
        gyz = (((smp[p + 5] + 0x8000) & 0xFFFF) - 0x8000) >> 2
        theta += ((gyx * ux + gyy * uy + gyz * uz) >> 14) - (theta >> YAW_LEAK_SHIFT)
        rth[idx & MASK] = theta
        if theta < th_min:
            th_min = theta
        elif theta > th_max:
            th_max = theta
        # |a| = floor(sqrt(a2n)) by Newton from above: from the last |a| when it is above the
        # root (|a| changes little between samples), else from the L1 norm (always above).
        a2n = ax * ax + ay * ay + az * az
        if a2n == 0:
            norm = 0
        else:
            if norm * norm < a2n or norm == 0:
                norm = (ax if ax >= 0 else -ax) + (ay if ay >= 0 else -ay) + (az if az >= 0 else -az)
            while True:
                z = (norm + a2n // norm) >> 1
                if z >= norm:
                    break
                norm = z
        if sum1 < 0:  # (re)starting: pretend the past was like this sample
            y1 = ((norm if norm < CLAMP_MG else CLAMP_MG) << 1) + 1
            j = 0
            while j < RING:
                rn[j] = norm
                rdl[j] = 0
                rth[j] = theta
                ry[j] = y1
                j += 1
            sum1 = norm * w
            sum2 = sum1
            x1 = y1
            x2 = y1
            y2 = y1
            err = 0
            err2 = 0
        # Light smoothing s (~10 ms) and its slope d; the cadence-following low-pass y.
        slot = idx & MASK
        rn[slot] = norm
        old = rn[(idx - w) & MASK]
        sum1 += norm - old
        sum2 += old - rn[(idx - w - w) & MASK]
        rdl[slot] = sum1 - sum2
        s = sum1 >> w_shift
        # + 1: half an mg, the mean that floor(sqrt) takes off |a|
        x0 = ((norm if norm < CLAMP_MG else CLAMP_MG) << 1) + 1
        # y = b0 (x0 + 2 x1 + x2) - a1 y1 - a2 y2, with a1 = d1 - 2 and a2 = 1 - d2 (the delta form:
        # the poles' small distance from (-2, 1) carries the precision at low cutoffs)
        # The remainders of the last two roundings come back as 2 e1 - e2: the rounding noise is
        # then shaped by (1 - z^-1)^2 and the poles near z = 1 no longer amplify it (with e1
        # alone, y wandered 0.6 mg rms from the exact filter: a sample or two at a flat top).
        acc = b0 * (x0 + x1 + x1 + x2) - d1 * y1 + d2 * y2 + err + err - err2
        q = acc >> qk
        err2 = err
        err = acc - (q << qk)
        y = y1 + y1 - y2 + q
        x2 = x1
        x1 = x0
        y2 = y1
        y1 = y
        ry[slot] = y
        if s < raw_tr:
            if s < TROUGH_RUN_MG <= raw_tr:  # a flight phase: the running low-pass from now on
                r = int(filter_row(period_q4, rate, FC_MULT_Q4))
                if r != row:
                    row = r
                    b0 = tb[5 * row]
                    d1 = tb[5 * row + 1]
                    d2 = tb[5 * row + 2]
                    delay_q4 = tb[5 * row + 3]
            raw_tr = s
        if norm > peak_mg:
            peak_mg = norm

        # The hump state machine on the filtered |a|.
        if state == 0:
            if last_q4 < 0 or (idx << 4) - last_q4 > idle_q4:
                if amp > (PROM_MIN_MG << 13) // PROM_FRAC_Q8:  # no steps lately: expect smaller ones
                    amp -= (amp >> decay_shift) + 16  # and half an mg
                    prom = (amp * PROM_FRAC_Q8) >> 12
                    if prom < PROM_MIN_MG * 2:
                        prom = PROM_MIN_MG * 2
                    fall = (prom * FALL_FRAC_Q8) >> 8
                    top = (prom * TOP_FRAC_Q8) >> 8
            if y < tr_v:
                tr_v = y
                tr_i = idx
            elif idx - last_rise >= refractory:
                thr = prom
                if last_q4 >= 0 and (idx << 4) - last_q4 <= idle_q4:  # the rhythm expects a step
                    thr = (amp * PROM_FRAC_Q8) >> 12
                    if raw_tr >= TROUGH_RUN_MG and (idx << 4) - last_q4 >= (period_q4 * PROM_DUE_Q8) >> 8:
                        # walking (no flight since the last contact) and the next step is due
                        thr = (amp * PROM_DUE_FRAC_Q8) >> 12
                    if thr < PROM_RHY_MIN_MG * 2:
                        thr = PROM_RHY_MIN_MG * 2
                if y - tr_v >= thr:
                    state = 1
                    pk_v = y
                    last_rise = idx
                    mode = ((raw_tr - TROUGH_RUN_MG) * 256) // (TROUGH_WALK_MG - TROUGH_RUN_MG)
                    mode = 0 if mode < 0 else (256 if mode > 256 else mode)
                    if raw_tr >= WALK_TROUGH_MG and period_q4 > walk_period_q4:
                        mode = 256
                    f = F_RUN_Q8 + (((F_WALK_Q8 - F_RUN_Q8) * mode) >> 8)
                    expect = (amp * EXPECT_Q8) >> 12
                    if y - tr_v > expect:
                        expect = y - tr_v
                    if mode >= 128:  # walking swings about 1 g: twice the trough's depth is the height
                        sym = gnorm - 2 * tr_v  # (|g| is mg x 4, tr_v mg x 2)
                        if sym > expect:
                            expect = sym
                    level = tr_v + ((f * expect) >> 8)
                    cross_q4 = -1
                    if y >= level:
                        cross_q4 = int(_cross_back(ring_y, level, tr_i if tr_i > idx - MASK + 1 else idx - MASK + 1,
                                                   idx))
        if state == 1:
            if y > pk_v:
                pk_v = y
            lo = tr_i if tr_i > idx - MASK + 1 else idx - MASK + 1
            if cross_q4 < 0 and y >= level:
                cross_q4 = int(_cross_back(ring_y, level, lo, idx))
            if cross_q4 < 0 and pk_v - y >= top:
                # smaller than expected: cross at a fraction of its own height
                f = F_RUN_Q8 + (((F_TOP_Q8 - F_RUN_Q8) * mode) >> 8)
                cross_q4 = int(_cross_back(ring_y, tr_v + ((f * (pk_v - tr_v)) >> 8), lo, idx))
            if cross_q4 >= 0:
                coarse_q4 = cross_q4 - delay_q4 - (d0_run_q4 + (((d0_walk_q4 - d0_run_q4) * mode) >> 8))
                pend_at = idx
                if mode < 128:  # running: wait for the samples the landing search needs
                    pend_at = (coarse_q4 >> 4) + ref_after + 1
                    if pend_at < idx:
                        pend_at = idx
                pend_q4 = coarse_q4 if coarse_q4 > 0 else 0
                pend_mode = mode
                state = 2
        if state == 2:
            if y > pk_v:
                pk_v = y
            elif pk_v - y >= fall:
                height = pk_v - tr_v
                if s_[S_FIRST_AMP]:
                    amp = height << 4
                    s_[S_FIRST_AMP] = 0
                else:
                    amp += ((height << 4) - amp + (1 << (AMP_SHIFT - 1))) >> AMP_SHIFT
                prom = (amp * PROM_FRAC_Q8) >> 12
                if prom < PROM_MIN_MG * 2:
                    prom = PROM_MIN_MG * 2
                fall = (prom * FALL_FRAC_Q8) >> 8
                top = (prom * TOP_FRAC_Q8) >> 8
                state = 0
                tr_v = y
                tr_i = idx

        # A contact waiting for the samples it needs is emitted now.
        if pend_q4 >= 0 and idx >= pend_at:
            ic_q4 = pend_q4
            if pend_mode < 128:
                ic_q4 = int(_refine(ring_d, ic_q4, idx, ref_before, ref_after, ref_lag_q4))
            ic = (ic_q4 + 8) >> 4
            e = n_ev * EV_FIELDS
            ev[e + E_IC] = ic
            ev[e + E_IMPACT_MG] = peak_mg
            ev[e + E_EMIT] = idx
            ev[e + E_FLAGS] = s_[S_RESYNC] | (FLAG_RUNNING if pend_mode < 128 else 0)  # S_RESYNC holds FLAG_RESYNC
            step = ic - ((last_q4 + 8) >> 4) if last_q4 >= 0 else 0
            ev[e + E_STEP_SAMPLES] = step if 0 < step <= max_step else 0
            if min_period <= step <= max_period:
                period_q4 += ((step << 4) - period_q4 + (1 << (PERIOD_SHIFT - 1))) >> PERIOD_SHIFT  # rounded
                idle_q4 = (period_q4 * 3) >> 1
                refractory = (period_q4 * REFRACTORY_Q8) >> 12
            # the low-pass follows the cadence, and is a little lower when walking
            r = int(filter_row(period_q4, rate, FC_WALK_Q4 if pend_mode >= 128 else FC_MULT_Q4))
            if r != row:
                row = r
                b0 = tb[5 * row]
                d1 = tb[5 * row + 1]
                d2 = tb[5 * row + 2]
                delay_q4 = tb[5 * row + 3]
            # Side: clockwise yaw just before the contact means left; votes accumulate.
            dth = 0
            if idx - ic < MASK - side_win:
                dth = ((rth[ic & MASK] << sx) >> sx) - ((rth[(ic - side_win) & MASK] << sx) >> sx)
            score = (s_[S_SIDE_SCORE] << sx) >> sx
            parity = s_[S_PARITY]
            if dth < -SIDE_MIN:
                score += 1 if parity == 0 else -1
            elif dth > SIDE_MIN:
                score += -1 if parity == 0 else 1
            score = 8 if score > 8 else (-8 if score < -8 else score)
            s_[S_SIDE_SCORE] = score
            if score >= 2:
                ev[e + E_SIDE] = SIDE_LEFT if parity == 0 else SIDE_RIGHT
            elif score <= -2:
                ev[e + E_SIDE] = SIDE_RIGHT if parity == 0 else SIDE_LEFT
            else:
                ev[e + E_SIDE] = SIDE_UNKNOWN
            s_[S_PARITY] = parity ^ 1
            if parity == 1:  # a stride ends: its yaw range
                ev[e + E_ROT] = th_max - th_min
                th_min = theta
                th_max = theta
            else:
                ev[e + E_ROT] = 0
            s_[S_RESYNC] = 0
            s_[S_STEPS] = s_[S_STEPS] + 1
            last_q4 = ic_q4
            raw_tr = s
            peak_mg = norm
            pend_q4 = -1
            n_ev += 1
        idx += 1
        p += 6
    s_[S_IDX] = idx
    s_[S_GX] = gx
    s_[S_GY] = gy
    s_[S_GZ] = gz
    s_[S_UX] = ux
    s_[S_UY] = uy
    s_[S_UZ] = uz
    s_[S_GNORM_Q2] = gnorm
    s_[S_NORM] = norm
    s_[S_SUM1] = sum1
    s_[S_SUM2] = sum2
    s_[S_X1] = x1
    s_[S_X2] = x2
    s_[S_Y1] = y1
    s_[S_Y2] = y2
    s_[S_ERR] = err
    s_[S_ERR2] = err2
    s_[S_ROW] = row
    s_[S_THETA] = theta
    s_[S_TH_MIN] = th_min
    s_[S_TH_MAX] = th_max
    s_[S_RAW_TR] = raw_tr
    s_[S_PEAK_MG] = peak_mg
    s_[S_PEND_Q4] = pend_q4
    s_[S_PEND_AT] = pend_at
    s_[S_PEND_MODE] = pend_mode
    s_[S_STATE] = state
    s_[S_AMP] = amp
    s_[S_TR_V] = tr_v
    s_[S_TR_I] = tr_i
    s_[S_PK_V] = pk_v
    s_[S_LAST_IC_Q4] = last_q4
    s_[S_LAST_RISE] = last_rise
    s_[S_PERIOD_Q4] = period_q4
    s_[S_LEVEL] = level
    s_[S_CROSS_Q4] = cross_q4
    s_[S_MODE_Q8] = mode
    return n_ev


class StepDetector:
    """The detector with its buffers made once, for callers that feed batches."""

    def __init__(self, rate_hz, accel_ug_per_lsb, max_events=8):
        # bytes(...) rather than [0] * n: no temporary list (it would break up the clip's heap)
        self.ring_n = array.array("i", bytes(4 * RING))
        self.ring_d = array.array("i", bytes(4 * RING))
        self.ring_y = array.array("i", bytes(4 * RING))
        self.ring_th = array.array("i", bytes(4 * RING))
        self.max_events = max_events
        self.events = array.array("i", bytes(4 * max_events * EV_FIELDS))
        self.rate_hz = 0
        self.accel_ug_per_lsb = 0
        self.configure(rate_hz, accel_ug_per_lsb)

    def configure(self, rate_hz, accel_ug_per_lsb):
        """Start afresh at another rate or sensitivity, keeping the buffers. A detector that
        was made with these settings and never fed is left as it is (nothing allocated)."""
        if rate_hz == self.rate_hz and accel_ug_per_lsb == self.accel_ug_per_lsb and self.state[S_IDX] == 0:
            return
        self.rate_hz = rate_hz
        self.accel_ug_per_lsb = accel_ug_per_lsb
        self.cfg = make_config(rate_hz, accel_ug_per_lsb)
        self.state = make_state(rate_hz)
        self.consumed = 0
        self.table = rate_table(rate_hz)  # made now, with the other buffers, not on the first sample

    def feed(self, samples, start, n):
        """Feed up to n samples from a flat int16 array; return the number of steps now in
        self.events. self.consumed says how many samples were used: fewer than n when the
        events filled up, and then the caller feeds the rest after reading them."""
        before = self.state[S_IDX]
        n_ev = detect_block(samples, start, n, self.cfg, self.state, self.table, self.ring_n, self.ring_d, self.ring_y,
                            self.ring_th, self.events, self.max_events)
        self.consumed = self.state[S_IDX] - before
        return n_ev

    def resync(self, next_idx):
        """The stream skipped to next_idx (lost samples): drop the step in hand."""
        reset(self.state, next_idx)
