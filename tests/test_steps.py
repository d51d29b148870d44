"""The step detector's behaviour: any mounting, no phantom steps, gaps, chunking, real data."""
import numpy as np
import pytest

from conftest import require_data
from clipcore.steps import FLAG_RESYNC, RATES_HZ
from strideclip.analysis.steps import StepDetector
from strideclip.evaluation import datasets
from strideclip.evaluation.evaluate import ACCEL_UG_PER_LSB, evaluate, sim_trials, to_counts
from strideclip.evaluation.scoring import Score
from strideclip.evaluation.steps_reference import agreement
from strideclip.sim import Scenario, Segment, Sensor, simulate


def _f1(run, ev, tol_s=0.05):
    score = Score(tol_s)
    score.add(ev["ic_idx"] / run.rate_hz, run.steps["ic_t_s"])
    return score.summary()["f1"]


RUN_WALK = (Segment("stand", 4), Segment("walk", 20, speed_mps=1.3), Segment("run", 60, speed_mps=3.4),
            Segment("stand", 4))


@pytest.mark.parametrize("mount", [(0, 0, 0), (180, 0, 0), (0, 30, 0), (30, 0, 90), (-150, 20, 45)],
                         ids=["upright", "upside-down", "tilted-30", "rolled-30-yawed-90", "arbitrary"])
def test_any_mounting_finds_the_same_steps(mount):
    sensor = Sensor(mount_roll_deg=mount[0], mount_pitch_deg=mount[1], mount_yaw_deg=mount[2])
    run = simulate(Scenario(RUN_WALK, sensor=sensor, seed=21))
    ev = StepDetector(sampling_rate_hz=208).detect(run.counts).events_
    assert _f1(run, ev) >= 0.98
    upright = StepDetector(sampling_rate_hz=208).detect(simulate(Scenario(RUN_WALK, seed=21)).counts).events_
    # the norm of the acceleration does not depend on the mounting: nearly the same contacts
    same = sum(np.min(np.abs(upright["ic_idx"] - x)) <= 2 for x in ev["ic_idx"])
    assert same >= 0.97 * len(ev)


@pytest.mark.parametrize("rate_hz", [104, 208, 416])
def test_every_rate_counts_walking_and_running(rate_hz):
    run = simulate(Scenario(RUN_WALK, sensor=Sensor(rate_hz=rate_hz), seed=22))
    ev = StepDetector(sampling_rate_hz=rate_hz).detect(run.counts).events_
    assert _f1(run, ev) >= 0.98


def _no_steps(counts, rate_hz=208):
    return len(StepDetector(sampling_rate_hz=rate_hz).detect(counts).events_) == 0


def test_standing_still_gives_no_phantom_steps():
    run = simulate(Scenario((Segment("stand", 120),), seed=23, sensor=Sensor(soft_tissue_g=0.06)))
    assert len(run.steps) == 0 and _no_steps(run.counts)


@pytest.mark.parametrize("kind", ["zeros", "constant", "saturated", "stuck-gyro", "noise", "alternating"])
def test_degenerate_streams_give_no_phantom_steps(kind):
    n = 208 * 30
    rng = np.random.default_rng(1)
    c = np.zeros((n, 6), np.int16)
    if kind == "constant":
        c[:, 2] = 2048
    elif kind == "saturated":
        c[:] = 32767
    elif kind == "stuck-gyro":
        c[:, 2] = 2048
        c[:, 3:] = 12345
    elif kind == "noise":
        c[:, :3] = rng.normal(0, 40, (n, 3)).astype(np.int16)
        c[:, 2] += 2048
    elif kind == "alternating":  # a broken chip toggling every sample
        c[::2, :3] = 32767
        c[1::2, :3] = -32768
    assert _no_steps(c)


def test_gap_resynchronises_and_flags_the_next_step():
    run = simulate(Scenario((Segment("run", 60, speed_mps=3.3),), seed=24))
    det = StepDetector(sampling_rate_hz=208)
    first = det.feed(run.counts[:5000])
    det.resync(6000)  # samples 5000..5999 were lost
    after = det.feed(run.counts[6000:])
    assert len(first) > 60 and len(after) > 80  # ~24 s and ~29 s of running at ~168 steps/min
    assert after[0]["flags"] & FLAG_RESYNC and not np.any(after[1:]["flags"] & FLAG_RESYNC)
    assert after[0]["ic_idx"] >= 6000 and after[0]["step_samples"] == 0  # no step across the gap
    truth = run.steps["ic_idx"]
    expected = truth[(truth >= 6000 + 208) | (truth < 4900)]
    found = np.concatenate([first["ic_idx"], after["ic_idx"]])
    assert sum(np.min(np.abs(found - t)) <= 10 for t in expected) >= 0.99 * len(expected)


def test_streaming_in_any_chunks_equals_one_pass_and_no_step_is_dropped():
    run = simulate(Scenario(RUN_WALK, seed=25))
    whole = StepDetector(sampling_rate_hz=208).detect(run.counts).events_
    tiny = StepDetector(sampling_rate_hz=208, max_events=1)  # forces the early-stop path
    as_tuples = StepDetector(sampling_rate_hz=208, max_events=1)  # a session's way: plain ints, no array
    rng = np.random.default_rng(3)
    pieces, events, pos = [], [], 0
    while pos < len(run.counts):
        k = int(rng.integers(1, 400))
        pieces.append(tiny.feed(run.counts[pos:pos + k]))
        events += as_tuples.feed_events(run.counts[pos:pos + k])
        pos += k
    assert np.array_equal(np.concatenate(pieces), whole)
    assert events == whole.tolist() and len(events) > 100


def test_side_alternates_and_matches_the_simulator():
    run = simulate(Scenario((Segment("run", 90, speed_mps=3.3),), seed=26))
    ev = StepDetector(sampling_rate_hz=208).detect(run.counts).events_
    known = ev[ev["side"] != 255]
    assert len(known) >= 0.9 * len(ev)
    truth_side = {int(i): int(s) for i, s in zip(run.steps["ic_idx"], run.steps["side"])}
    hits = [truth_side.get(int(i), truth_side.get(int(i) + 1, truth_side.get(int(i) - 1))) for i in known["ic_idx"]]
    agree = np.mean([h == s for h, s in zip(hits, known["side"]) if h is not None])
    assert agree >= 0.95


def test_float_reference_agrees_within_one_sample_on_simulated_runs():
    runs = [simulate(Scenario(RUN_WALK, sensor=Sensor(mount_pitch_deg=20), seed=seed)) for seed in (27, 28)]
    agree, total = agreement([r.counts for r in runs], 208, runs[0].hello.accel_ug_per_lsb)
    assert total > 250 and agree / total >= 0.995


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_float_reference_agrees_within_one_sample_on_real_and_simulated_data(rate_hz):
    """Issue #4: >= 99.5 % of contacts within one sample of the float reference, at every rate."""
    require_data(datasets.VOISARD)
    require_data(datasets.ALCANTARA)
    recordings = [to_counts(t.accel_g, t.gyro_dps, t.rate_hz, rate_hz)
                  for t in (*datasets.load_voisard(), *datasets.load_alcantara())]
    recordings += [t.info["counts"] for t in sim_trials(rate_hz)]
    agree, total = agreement(recordings, rate_hz, ACCEL_UG_PER_LSB)
    assert total > 7000
    assert agree / total >= 0.995


# Regression bounds on the public data sets (docs/step-detector.md has the full figures).

@pytest.fixture(scope="module")
def alcantara():
    require_data(datasets.ALCANTARA)
    return evaluate("alcantara", rate_hz=208)


def test_alcantara_meets_its_targets(alcantara):
    assert alcantara["f1"] >= 0.99
    assert alcantara["median_abs_error_ms"] <= 15
    assert abs(alcantara["mean_error_ms"]) <= 10
    assert alcantara["cadence_abs_error_spm_median"] <= 2
    assert alcantara["latency_ms_p95"] <= 150


def test_adeptdata_cadence_within_one_step_per_minute():
    require_data(datasets.ADEPT)
    out = evaluate("adeptdata", rate_hz=208)
    assert out["windows"] >= 20 and out["cadence_abs_error_spm_median"] <= 1.0


def test_voisard_walking_bounds():
    require_data(datasets.VOISARD)
    out = evaluate("voisard", rate_hz=208)
    # The F1 target is 0.95 (mobgap's IcdIonescu: 0.94 on the same data); we measure
    # 0.952 (docs/step-detector.md explains where the remaining misses are).
    assert out["f1"] >= 0.95
    assert out["median_abs_error_ms"] <= 40
    assert out["latency_ms_p95"] <= 150


def test_voisard_rows_are_placed_at_their_packet_numbers():
    # packets 10, 11, 13 (12 lost), 13 again (repeated), 14: row k of the result is packet k
    rows = np.array([[10, 1.0], [11, 2.0], [13, 4.0], [13, 9.0], [14, 5.0]])
    out = datasets.voisard_on_packet_clock(rows)
    assert out[:, 0].tolist() == list(range(15))
    assert out[10:, 1].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # the lost one interpolated, the repeat dropped
    assert out[:10, 1].tolist() == [1.0] * 10  # before the first packet: its value
