"""The simulator against real sacral data nobody here wrote (Alcantara et al. 2022).

For each of the 31 force-treadmill trials, simulate the same speed, slope and cadence and compare
what a sacral clip would see: per-step peak vertical acceleration, contact time, and when the peak
comes after contact. docs/simulator.md reports the figures.
"""
import math
from collections import defaultdict

import numpy as np
import pytest

from conftest import require_data
from strideclip.evaluation.datasets import ALCANTARA, load_alcantara
from strideclip.sim import Runner, Scenario, Segment, simulate
from strideclip.sim.gait import RUN, hill_cadence_factor


def compare_with_alcantara():
    trials = load_alcantara()
    cells = defaultdict(list)
    for tr in trials:
        cells[(tr.info["speed_mps"], tr.info["slope_deg"])].append(60 / np.median(np.diff(tr.ics_s)))
    rows = []
    for tr in trials:
        ic = np.round(tr.ics_s * tr.rate_hz).astype(int)
        v = tr.accel_g[:, 0]
        cadence = 60 / np.median(np.diff(tr.ics_s))
        slope_pct = 100 * math.tan(math.radians(tr.info["slope_deg"]))
        # The runner's own cadence for this speed and slope: the median of the trials run there
        # (some trials were run deliberately 10 % slower or faster than it).
        own = np.median(cells[(tr.info["speed_mps"], tr.info["slope_deg"])])
        own_flat = own / hill_cadence_factor(slope_pct)
        runner = Runner(run_cadence_spm_at_3mps=own_flat - 7.0 * (tr.info["speed_mps"] - 3.0))
        run = simulate(Scenario((Segment("stand", 2), Segment("run", 30, speed_mps=tr.info["speed_mps"],
                                                              slope_pct=slope_pct, cadence_spm=min(cadence, 240))),
                                runner=runner, seed=1))
        s = run.steps[(run.steps["kind"] == RUN) & (run.steps["ic_t_s"] > 8)]
        vert = run.body.vertical_accel_g
        window = int(0.2 * run.rate_hz)
        rows.append(dict(
            cadence_spm=cadence,
            sim_cadence_spm=float(np.median(s["cadence_spm"])),
            peak_g=float(np.median([v[a:b].max() for a, b in zip(ic, ic[1:])])),
            sim_peak_g=float(np.median(s["impact_g"])),
            contact_ms=float(np.median([(b - a) / tr.rate_hz * 1000 for a, b in tr.info["stances"] if 0 < a and b < len(v)])),
            sim_contact_ms=float(np.median(s["contact_ms"])),
            t_peak_ms=float(np.median([np.argmax(v[a:b]) / tr.rate_hz * 1000 for a, b in zip(ic, ic[1:])])),
            sim_t_peak_ms=float(np.median([np.argmax(vert[a:a + window]) / run.rate_hz * 1000 for a in s["ic_idx"]])),
        ))
    return rows


@pytest.fixture(scope="module")
def rows():
    require_data(ALCANTARA)
    return compare_with_alcantara()


def _col(rows, key):
    return np.array([r[key] for r in rows])


def test_peak_vertical_acceleration_matches_per_trial(rows):
    real, sim = _col(rows, "peak_g"), _col(rows, "sim_peak_g")
    assert np.corrcoef(real, sim)[0, 1] >= 0.85  # speed and slope effects reproduced
    assert np.mean(np.abs(sim - real)) <= 0.5  # g
    assert abs(np.mean(sim - real)) <= 0.3


def test_contact_time_and_peak_timing_match(rows):
    assert np.mean(np.abs(_col(rows, "sim_contact_ms") - _col(rows, "contact_ms"))) <= 12
    assert np.mean(np.abs(_col(rows, "sim_t_peak_ms") - _col(rows, "t_peak_ms"))) <= 20


def test_simulated_cadence_covers_the_real_range(rows):
    real, sim = _col(rows, "cadence_spm"), _col(rows, "sim_cadence_spm")
    assert np.max(np.abs(sim - real)) <= 3  # spm: 149 to 233 steps/min all reachable
