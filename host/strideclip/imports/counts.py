"""A recording in physical units as a clip would have sampled it: resampled to a rate the step
detector runs at (anti-aliased, ``scipy.signal.resample_poly``) and quantised to int16 counts at
+-16 g / +-2000 dps, full scales that do not clip running impacts. ``strideclip import`` and
``strideclip evaluate`` both feed recordings to the detector through here (docs/import.md)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

from clipcore.steps import RATES_HZ
from strideclip.stream.clip import accel_ug_per_lsb
from strideclip.stream.clip import to_counts as to_clip_counts  # (this module's to_counts resamples first)

ACCEL_FS_G = 16
GYRO_FS_DPS = 2000
ACCEL_UG_PER_LSB = accel_ug_per_lsb(ACCEL_FS_G)  # 488, as the HELLO declares it
GYRO_COUNTS_PER_DPS = 32768 / GYRO_FS_DPS  # = 256000 / the HELLO's gyro_mdps_per_lsb_q8 (15625): exact
MAX_RATIO_TERMS = 1000  # an up/down ratio beyond this is approximated (relative error < 1e-6)


def nearest_rate(rate_hz: float) -> int:
    """The step detector's rate nearest to ``rate_hz`` (the lower one on a tie)."""
    return min(RATES_HZ, key=lambda r: (abs(r - rate_hz), r))


def resample_ratio(rate_in: float, rate_out: int) -> Fraction:
    """rate_out / rate_in as a fraction small enough for a polyphase filter: exact for the rates
    files state (100, 203.7, 500 Hz), within a millionth for a measured one (99.9987 Hz)."""
    ratio = Fraction(rate_out).limit_denominator(10_000) / Fraction(rate_in).limit_denominator(10_000)
    if max(ratio.numerator, ratio.denominator) > 2 * MAX_RATIO_TERMS:
        ratio = ratio.limit_denominator(MAX_RATIO_TERMS)
    return ratio


def resample(x: np.ndarray, rate_in: float, rate_out: int) -> np.ndarray:
    """Anti-aliased polyphase resampling along axis 0 (as a clip sampling the same motion)."""
    if rate_in == rate_out:
        return np.asarray(x, float)
    ratio = resample_ratio(rate_in, rate_out)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def to_counts(accel_g: np.ndarray, gyro_dps: np.ndarray, rate_in: float, rate_out: int) -> np.ndarray:
    """(n, 6) int16 raw counts at the clip's rate and full scales (saturating as the chip would)."""
    return to_clip_counts(resample(accel_g, rate_in, rate_out), resample(gyro_dps, rate_in, rate_out),
                          ACCEL_FS_G, GYRO_FS_DPS)
