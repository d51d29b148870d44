"""The median of values that come in whole grains, such as a step time counted in samples
(docs/metrics.md, "Session summaries").

At 104 Hz a running step lasts about 37 samples, so per-step cadences come in steps of about
4.7 spm and their plain median jumps a whole grain when the middle step moves by one sample. The
median of grouped data (the median bin's lower edge plus the share of the bin the middle of the
sorted values reaches; any statistics text, e.g. Freund & Perles, *Modern Elementary Statistics*,
"median of grouped data") moves smoothly with the distribution instead.
"""
from __future__ import annotations

import numpy as np


def binned_median(values: np.ndarray, grain: float) -> float:
    """The median of ``values`` (each a whole number of ``grain``) as the median of grouped data,
    bins one grain wide centred on those whole numbers. Values not on the grain: their plain median."""
    values = np.asarray(values, float)
    if not len(values):
        return float("nan")
    k = np.round(values / grain)
    if not np.allclose(values, k * grain, rtol=0, atol=grain * 1e-6):
        return float(np.median(values))
    bins, counts = np.unique(k, return_counts=True)
    upto = np.cumsum(counts)
    half = len(values) / 2
    i = int(np.searchsorted(upto, half))  # the first bin holding the middle of the sorted values
    below = upto[i] - counts[i]
    return float((bins[i] - 0.5 + (half - below) / counts[i]) * grain)
