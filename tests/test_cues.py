"""The minimal cue policy (clipcore.cues): cues for sustained breakdowns, quiet otherwise,
identical under MicroPython, allocation-free."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipcore import cues as C
from clipcore import protocol as P
from mpy import cpython_call, run_script
from strideclip.session.pipeline import Session
from strideclip.sim import Fatigue, Scenario, Segment, simulate
from strideclip.stream.packets import encode_packet


def _cues(scenario):
    run = simulate(scenario)
    session = Session()
    session.feed(encode_packet(run.hello), 0)
    for t_ms, pkt in run.link.packets:
        session.feed(pkt, t_ms)
    return run, [c.as_dict() for c in session.cues]


def test_steady_run_with_a_stop_and_a_walk_gives_no_cue():
    segs = (Segment("walk", 60, speed_mps=1.3), Segment("run", 600, speed_mps=3.3), Segment("stand", 30),
            Segment("run", 300, speed_mps=3.3), Segment("walk", 60, speed_mps=1.3), Segment("run", 300, speed_mps=3.4))
    _, cues = _cues(Scenario(segs, seed=31))
    assert cues == []


def test_fatigue_cues_within_a_minute_of_the_threshold():
    sc = Scenario((Segment("walk", 60, speed_mps=1.3), Segment("run", 1500, speed_mps=3.3)),
                  fatigue=Fatigue(onset_s=600, cadence_pct_per_min=-0.8, rotation_pct_per_min=2.0), seed=32)
    run, cues = _cues(sc)
    drop_5pct_s = run.fatigue_truth()["cadence_drop_5pct_s"]
    assert cues, "fatigue must be cued"
    first = cues[0]
    assert first["reason"] in ("cadence_drop", "cadence_floor")
    # after fatigue began, and no later than a minute after the drop reached 5 %
    assert run.fatigue_truth()["onset_s"] < first["t_s"] <= drop_5pct_s + 60
    assert abs(first["tempo_spm"] - 166) <= 4  # back to the runner's own cadence


def test_walking_and_gaps_do_not_count():
    cfg, state = C.make_config(208), C.make_state()
    for k in range(5000):  # an hour of walking-like steps at a low cadence
        assert C.on_step(cfg, state, 120 * k, 120, False, 0) == C.NO_CUE
    assert state[C.T_RUN] == 0


steps = st.lists(st.tuples(st.integers(0, 2**24), st.integers(0, 400), st.booleans(), st.integers(0, 20000)),
                 max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=steps, rate=st.sampled_from([104, 208, 416]))
def test_identical_under_micropython(mpy, seq, rate):
    seq = sorted(seq)  # contact indices only grow
    here = cpython_call("drivers.cue_run", seq, rate)
    assert mpy.call("drivers.cue_run", seq, rate) == here


def test_on_step_allocates_nothing():
    code = """
import micropython
from clipcore import cues as C
cfg = C.make_config(208)
st = C.make_state()
def feed(a, b):
    k = a
    n = 0
    while k < b:
        n += C.on_step(cfg, st, 70 * k, 70 if k < 2000 else 80, True, 9000) != 0
        k += 1
    return n
feed(0, 50)
micropython.heap_lock()
try:
    r = feed(50, 4000)
except MemoryError:
    r = -1
micropython.heap_unlock()
print(r)
"""
    assert int(run_script(code, heapsize="256k")) >= 1  # it cued (cadence fell ~12 %) and never allocated
    assert P.REASON_NAMES[P.REASON_CADENCE_DROP] == "cadence_drop"


def test_cue_evaluation_scores_fatigue_and_confounder_runs():
    """A short version of `strideclip evaluate-cues` (docs/cues.md has the 24-seed figures)."""
    from strideclip.evaluation.cues_eval import score, simulate_runs

    runs = simulate_runs(2)
    out = score(runs)
    assert out["seeds"] == 2 and out["hours_without_fatigue"] > 1.5
    assert out["fatigue_cued_in_time_pct"] == 100.0 and out["false_cues_per_hour"] == 0.0
    # the scoring can fail: a policy that never cues misses both fatigue runs
    never = score(runs, {C.K_SUSTAIN_S: 10**6})
    assert never["fatigue_cued_in_time_pct"] == 0.0 and never["cue_lag_s_median"] is None


def test_a_cue_the_runner_ignores_escalates_and_a_recovery_starts_again():
    cfg, st = C.make_config(208), C.make_state()
    idx, got = 0, []

    def run(seconds, step_samples):
        nonlocal idx
        end = idx + seconds * 208
        while idx < end:
            idx += step_samples
            if C.on_step(cfg, st, idx, step_samples, True, 0):
                got.append((idx / 208, st[C.CUE_S]))

    run(300, 75)  # warm-up at 166 steps/min
    run(900, 81)  # 154 steps/min: 7 % down and under the floor, ignored for 15 minutes
    run(300, 75)  # back on form
    run(200, 81)  # and down again
    times = [t for t, _ in got]
    assert [s for _, s in got][:4] == [30, 60, 90, 90]  # longer each time it is ignored
    gaps = [b - a for a, b in zip(times, times[1:4])]
    assert abs(gaps[0] - 120) < 2 and abs(gaps[1] - 120) < 2 and abs(gaps[2] - 240) < 2  # top level: cool-down x2
    after = [(t, s) for t, s in got if t > 1500]
    assert after and after[0][1] == 30  # after the recovery, the first level again
    assert not [t for t in times if 1200 + 30 < t < 1500]  # no cue while back on form
