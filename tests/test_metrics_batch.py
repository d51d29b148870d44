"""The metrics engine measures steps one at a time (live) or in batches (a whole log, #26): the
same rows either way, on simulated logs with gaps, backfill and a restart and on real data; its
low-pass filters are scipy's; its lazy sample ring answers as the ring that wrote every block at
once did; the analysis of a log does not import scipy.signal."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import require_data
from clipcore import protocol as P
from clipcore.steps import FLAG_RESYNC, FLAG_RUNNING
from strideclip.analysis.lowpass import ZeroPhaseLowPass, butter2, steady_state
from strideclip.analysis.metrics import (STEP_METRICS_DTYPE, WHOLE_LOG_BATCH_STEPS, MetricsEngine, feed_recording,
                                         metrics_for_counts)
from strideclip.analysis.samplering import SampleRing
from strideclip.analysis.steps import StepDetector
from strideclip.evaluation.datasets import ALCANTARA, VOISARD, load_alcantara, load_voisard
from strideclip.evaluation.evaluate import ACCEL_UG_PER_LSB, GYRO_COUNTS_PER_DPS, to_counts
from strideclip.session.pipeline import Session
from strideclip.session.replay import analyse, replay
from strideclip.sim import Scenario, Segment, Sensor, simulate, steady_run
from strideclip.stream.packets import encode_samples
from test_one_path import SPP, live_packets, write_restarted

# Batches add the same numbers in another order (padded rows, segment sums) and the covariance as
# mean of products less product of means: rows agree to rounding, far inside these (docs/metrics.md).
RTOL, ATOL = 1e-9, 1e-9


def assert_same_rows(batched: np.ndarray, streamed: np.ndarray) -> None:
    assert len(batched) == len(streamed) > 0
    for name in STEP_METRICS_DTYPE.names:
        a, b = batched[name], streamed[name]
        if a.dtype.kind == "f":
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"{name}: NaN in one table only"
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=name)
        else:
            assert np.array_equal(a, b), name


def _events(counts: np.ndarray, rate_hz: int, accel_ug_per_lsb: float) -> np.ndarray:
    return StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=accel_ug_per_lsb).detect(counts).events_


def _feed_with_gaps(eng: MetricsEngine, counts: np.ndarray, events: np.ndarray, gaps: list) -> np.ndarray:
    """Samples in packets as a link delivers them, the ``gaps`` never; each step once its emission
    sample came (a step after a gap says so: the detector resyncs there)."""
    rows, fed = [], 0
    for e in events:
        end = int(e["emit_idx"]) + 1
        for k in range(fed, end, SPP):
            if not any(a <= k < b for a, b in gaps):
                eng.add_samples(k, counts[k:min(k + SPP, end)])
        resync = bool(e["flags"] & FLAG_RESYNC) or any(fed <= a < end for a, _ in gaps)
        fed = end
        rows.append(eng.add_step(int(e["ic_idx"]), int(e["side"]), bool(e["flags"] & FLAG_RUNNING), resync))
    rows.append(eng.close_step())
    return np.concatenate(rows)


@pytest.fixture(scope="module")
def varied_run():
    """Standing, walking, running with a turn, standing: still spells, both gaits, a clip at an angle."""
    segments = (Segment("stand", 8), Segment("walk", 20, speed_mps=1.3), Segment("run", 70, speed_mps=3.3),
                Segment("run", 40, speed_mps=2.9, turn_deg=180), Segment("stand", 6),
                Segment("walk", 15, speed_mps=1.2))
    return simulate(Scenario(segments, sensor=Sensor(rate_hz=208, mount_roll_deg=25, mount_yaw_deg=-60), seed=5))


@pytest.mark.parametrize("batch_steps", [2, 7, 64, WHOLE_LOG_BATCH_STEPS])
def test_any_batch_gives_the_rows_of_one_step_at_a_time_across_gaps(varied_run, batch_steps):
    run, h = varied_run, varied_run.hello
    kw = dict(rate_hz=run.rate_hz, accel_g_per_count=h.accel_ug_per_lsb / 1e6,
              gyro_dps_per_count=h.gyro_mdps_per_lsb_q8 / 256 / 1000)
    events = _events(run.counts, run.rate_hz, h.accel_ug_per_lsb)
    gaps = [(40 * 208, 40 * 208 + 3 * SPP), (75 * 208, 77 * 208), (120 * 208, 120 * 208 + SPP)]
    one = MetricsEngine(**kw)
    streamed = _feed_with_gaps(one, run.counts, events, gaps)
    batched_engine = MetricsEngine(**kw, batch_steps=batch_steps)
    batched = _feed_with_gaps(batched_engine, run.counts, events, gaps)
    assert np.isnan(streamed["peak_vertical_g"]).sum() > len(gaps)  # the gaps cost rows something ...
    assert np.isfinite(streamed["pelvic_rotation_deg"]).sum() > 200  # ... and the rest was measured
    assert_same_rows(batched, streamed)
    a, b = one.calibrator.frame.as_dict(), batched_engine.calibrator.frame.as_dict()
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=RTOL, atol=ATOL) for k in a if a[k] is not None)


def test_a_whole_log_analysed_in_batches_gives_the_live_rows(tmp_path):
    """analyse() (every command's path) measures in batches; a live Session one step at a time:
    the same table on a log with a backfilled gap, a lost one, and a clip that restarts."""
    run = simulate(steady_run(4, seed=21))
    rate, counts = run.rate_hz, run.counts
    cut = 150 * rate // SPP * SPP
    filled, lost = (30 * rate // SPP * SPP, 36 * rate // SPP * SPP), (90 * rate // SPP * SPP, 93 * rate // SPP * SPP)
    first = [(t, p) for t, p in live_packets(counts[:cut], rate)
             if not (filled[0] <= P.u32(p, 3) < filled[1] or lost[0] <= P.u32(p, 3) < lost[1])]
    first += [(50_000 + k, encode_samples(k, f, counts[f:f + SPP], backfill=True))
              for k, f in enumerate(range(*filled, SPP))]
    first.sort(key=lambda tp: tp[0])
    log = write_restarted(tmp_path / "messy.sclog", run.hello, first, counts[cut:])
    live = Session()
    summary_live = replay(log, session=live)
    summary, table = analyse(log)
    assert live.metrics_batch_steps == 1 and len(table) == summary["steps"] > 400
    assert_same_rows(table, live.step_table())
    for key in ("cadence_spm_median", "pelvic_rotation_deg_median", "peak_vgrf_bw_median", "fatigue", "cue_outcomes"):
        assert summary[key] == summary_live[key], key


def _real_counts(trial) -> np.ndarray:
    return to_counts(trial.accel_g, trial.gyro_dps, trial.rate_hz, 208)


@pytest.mark.parametrize("name", [ALCANTARA, VOISARD])
def test_real_recordings_give_the_same_rows_in_batches(name):
    require_data(name)
    trials = load_alcantara() if name == ALCANTARA else load_voisard(limit=40)
    kw = dict(rate_hz=208, accel_g_per_count=ACCEL_UG_PER_LSB / 1e6, gyro_dps_per_count=1 / GYRO_COUNTS_PER_DPS)
    measured = 0
    for trial in trials:
        counts = _real_counts(trial)
        events = _events(counts, 208, ACCEL_UG_PER_LSB)
        if len(events) < 3:
            continue
        streamed = feed_recording(MetricsEngine(**kw), counts, events)
        assert_same_rows(metrics_for_counts(counts, events, **kw), streamed)
        assert_same_rows(feed_recording(MetricsEngine(**kw, batch_steps=5), counts, events), streamed)
        measured += int(np.isfinite(streamed["peak_vertical_g"]).sum())
    assert measured > 300


def test_the_filters_are_scipys_butterworth_forwards_and_backwards():
    from scipy import signal  # the reference only: the host no longer imports it (scipy is a dependency)
    rng = np.random.default_rng(3)
    for fc, rate in ((8.0, 208), (12.0, 208), (8.0, 104), (41.6, 104), (12.0, 416)):
        b, a = butter2(fc, rate)
        b_ref, a_ref = signal.butter(2, fc, fs=rate)
        assert np.allclose(b, b_ref, rtol=1e-12, atol=0) and np.allclose(a, a_ref, rtol=1e-12, atol=0)
        zi = signal.lfilter_zi(b_ref, a_ref)
        assert np.allclose(steady_state(b, a), zi, rtol=1e-12, atol=0)
        lengths = rng.integers(2, 300, 40)
        x = 1 + 0.5 * rng.standard_normal((40, 300)) + np.sin(np.arange(300) / 6)
        out = ZeroPhaseLowPass((fc,), rate, 300)(x, lengths)[0]
        for k, n in enumerate(lengths):
            y = signal.lfilter(b_ref, a_ref, x[k, :n], zi=zi * x[k, 0])[0][::-1]
            y = signal.lfilter(b_ref, a_ref, y, zi=zi * y[0])[0][::-1]
            assert np.allclose(out[k, :n], y, rtol=0, atol=1e-12), (fc, rate, n)


class _EagerRing:
    """The engine's ring before #26: every block written when it comes (the reference)."""

    def __init__(self, capacity: int):
        self.capacity, self.values, self.held = capacity, np.zeros((capacity, 6)), np.full(capacity, -1)
        self.last_idx = None

    def add(self, first: int, counts: np.ndarray) -> None:
        if len(counts) > self.capacity:
            first, counts = first + len(counts) - self.capacity, counts[-self.capacity:]
        idx = np.arange(first, first + len(counts))
        self.values[idx % self.capacity], self.held[idx % self.capacity] = counts, idx
        self.last_idx = idx[-1] if self.last_idx is None else max(self.last_idx, idx[-1])

    def take(self, start: int, end: int) -> np.ndarray | None:
        if end <= start or self.last_idx is None or end - 1 > self.last_idx or end - start > self.capacity:
            return None
        slots = np.arange(start, end) % self.capacity
        held = self.held[slots]
        return None if held[0] != start or held[-1] != end - 1 or np.any(np.diff(held) != 1) else self.values[slots]


@pytest.mark.parametrize("seed", range(6))
def test_the_lazy_ring_answers_as_the_eager_one(seed):
    """Blocks in order with gaps, repeats, blocks from the past and blocks longer than the ring;
    windows asked for anywhere near the newest sample (before the first included)."""
    rng = np.random.default_rng(seed)
    capacity = 200
    lazy, eager = SampleRing(capacity, np.ones(6)), _EagerRing(capacity)
    nxt, answered = 0, 0
    for _ in range(1500):
        r = rng.random()
        if r < 0.6 or eager.last_idx is None:
            first = nxt + (int(rng.integers(1, 60)) if rng.random() < 0.08 else 0)  # now and then a gap
            if rng.random() < 0.05 * (seed % 3):  # in some runs, blocks from the past too
                first = max(0, nxt - int(rng.integers(1, 400)))
            n = int(rng.integers(250, 450)) if rng.random() < 0.01 else int(rng.integers(1, 30))
            counts = rng.integers(-32768, 32767, (n, 6)).astype(np.int16)
            lazy.add(first, counts)
            eager.add(first, counts)
            nxt = max(nxt, first + n)
        else:
            end = eager.last_idx + 1 - int(rng.integers(0, 2 * capacity))
            start = end - int(rng.integers(1, capacity + 3))
            got, want = lazy.take(start, end), eager.take(start, end)
            assert (got is None) == (want is None), (start, end)
            if want is not None:
                assert np.array_equal(got, want)
                answered += 1
    assert answered > 50


def test_analysing_a_log_imports_no_scipy_signal(tmp_path):
    """scipy.signal took about a second of CPU to import: the metrics' filters are our own now."""
    from strideclip.sim import write_log

    log = write_log(simulate(steady_run(0.5, seed=4)), tmp_path / "short.sclog")
    probe = ("import sys; from strideclip.session.replay import analyse; analyse(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.startswith('scipy.signal')))")
    done = subprocess.run([sys.executable, "-c", probe, str(log)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
