"""The host's fatigue state (strideclip.analysis.fatigue): form drifting past 90 % of a coaching threshold
for 15 s of running makes "fatigued"; a slower pace, a downhill or a stop do not."""
import numpy as np

from strideclip.analysis.fatigue import FatigueTracker
from strideclip.analysis.metrics import STEP_METRICS_DTYPE


def rows(seconds, *, cadence=170.0, rotation=12.0, drop=8.0, impact=2.4, lean=4.0, running=True, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * cadence / 60)
    t = np.zeros(n, STEP_METRICS_DTYPE)
    t["running"] = running
    t["step_time_s"] = 60 / cadence
    t["cadence_smoothed_spm"] = cadence * (1 + 0.005 * rng.standard_normal(n))
    t["pelvic_rotation_deg"] = rotation * (1 + 0.05 * rng.standard_normal(n))
    t["pelvic_drop_deg"] = drop * (1 + 0.05 * rng.standard_normal(n))
    t["peak_vertical_g"] = impact * (1 + 0.1 * rng.standard_normal(n))
    t["forward_lean_deg"] = lean + 0.7 * rng.standard_normal(n)
    return t


def feed(tracker, table):
    states = []
    for row in table:
        states.append(tracker.add_step(row).state)
    return states


def test_rotation_and_drop_rising_is_fatigue_after_15_s():
    tr = FatigueTracker()
    assert feed(tr, rows(300))[-1] == "fresh"
    states = feed(tr, rows(200, rotation=16.0, drop=10.8, seed=1))  # +33 % and +35 %
    first = states.index("fatigued")
    assert 15 <= tr.entered_s[0] - 300 <= 60 and first > 0


def test_leaning_further_forward_is_fatigue_unless_the_runner_climbs():
    tr = FatigueTracker()
    feed(tr, rows(300))
    assert "fatigued" not in feed(tr, rows(120, lean=7.0, seed=7))  # +3 deg (a steep hill's lean): watch at most
    states = feed(tr, rows(200, lean=8.5, seed=8))  # +4.5 deg on the flat
    assert "fatigued" in states and tr.last.evidence["lean"] > 1.0
    climbing = FatigueTracker()
    feed(climbing, rows(300))
    assert "fatigued" not in feed(climbing, rows(300, lean=8.5, impact=1.9, cadence=172.0, seed=9))  # uphill: impact -21 %
    assert climbing.last.evidence["lean"] == 0.0


def test_a_slower_pace_a_downhill_and_a_stop_are_not_fatigue():
    tr = FatigueTracker()
    feed(tr, rows(300))
    assert "fatigued" not in feed(tr, rows(300, cadence=160.0, impact=1.9, seed=2))  # slower: cadence and impact down
    assert "fatigued" not in feed(tr, rows(300, impact=3.6, seed=3))  # downhill: impact +50 % alone
    assert "fatigued" not in feed(tr, rows(120, running=False, cadence=110.0, rotation=20.0, seed=4))  # a walk
    assert tr.state in ("fresh", "watch") and not tr.entered_s


def test_fatigue_clears_after_a_minute_back_on_form():
    tr = FatigueTracker()
    feed(tr, rows(300))
    feed(tr, rows(200, cadence=158.0, rotation=16.0, seed=5))
    assert tr.state == "fatigued"
    states = feed(tr, rows(200, seed=6))
    assert states[-1] == "fresh" and states.index("fresh") > 60 * 170 / 60 * 0.9


USUAL = {"cadence": 172.0, "rotation": 12.0, "drop": 8.0, "impact": 2.4}  # the athlete's history


def test_a_runner_who_starts_tired_is_measured_against_their_usual_form():
    tr = FatigueTracker(prior=USUAL)
    states = feed(tr, rows(360, cadence=160.0, impact=2.5))  # 7 % under their usual cadence from the start
    assert tr.baseline_source["cadence"] == "history" and tr.baseline["cadence"] == 172.0
    assert tr.baseline_source["rotation"] == "session"  # rotation is as usual: today's warm-up is its baseline
    assert states[-1] == "fatigued"
    # without the history the same run looks fresh: its own warm-up is all there is to compare with
    alone = FatigueTracker()
    assert feed(alone, rows(360, cadence=160.0, impact=2.5))[-1] == "fresh"


def test_an_easy_day_is_not_taken_for_a_tired_one():
    for prior in (USUAL, {**USUAL, "cadence": 165.0}, None):
        tr = FatigueTracker(prior=prior)
        states = feed(tr, rows(600, cadence=160.0, impact=2.3, seed=3))  # slower: impact a little down too
        assert "fatigued" not in states and "watch" not in states
        assert all(v == "session" for v in tr.baseline_source.values())
    # rotation already 40 % over the usual at the same impact: measured against the usual
    tr = FatigueTracker(prior=USUAL)
    assert feed(tr, rows(360, rotation=16.8, seed=4))[-1] == "fatigued" and tr.baseline_source["rotation"] == "history"


def test_a_simulated_runner_who_only_leans_forward_is_found_when_the_lean_reaches_4_degrees():
    """End to end on the simulator: clip detector, metrics (forward lean from the learnt body
    frame at a random mounting), then the state. Lean alone drifts +0.5 deg/min from 300 s."""
    from strideclip.analysis.metrics import metrics_for_counts
    from strideclip.evaluation.cues_eval import step_events
    from strideclip.sim import Fatigue, Scenario, Segment, Sensor, simulate

    segs = (Segment("stand", 10), Segment("walk", 30, speed_mps=1.4), Segment("run", 900, speed_mps=3.2))
    lean_only = Fatigue(300, cadence_pct_per_min=0, rotation_pct_per_min=0, drop_pct_per_min=0,
                        impact_pct_per_min=0, tilt_deg_per_min=0.5)
    run = simulate(Scenario(segs, sensor=Sensor.random_mounting(np.random.default_rng(3), 208), fatigue=lean_only,
                            seed=3, name="lean"))
    h = run.hello
    table = metrics_for_counts(run.counts, step_events(run), rate_hz=h.rate_hz, accel_g_per_count=h.accel_ug_per_lsb / 1e6,
                               gyro_dps_per_count=h.gyro_mdps_per_lsb_q8 / 256 / 1000)
    tr = FatigueTracker()
    entered_s = None
    for row in table:
        if tr.add_step(row).state == "fatigued" and entered_s is None:
            entered_s = row["ic_idx"] / h.rate_hz
            evidence = tr.last.evidence
    due_s = 300 + 4.0 / 0.5 * 60  # the onset (scenario time) + 4 deg at 0.5 deg/min
    assert entered_s is not None and -60 < entered_s - due_s < 60, (entered_s, due_s)
    assert max(evidence, key=evidence.get) == "lean"


def test_without_a_lean_in_the_warm_up_its_baseline_is_its_first_30_s():
    tr = FatigueTracker()
    feed(tr, rows(300, lean=float("nan")))  # started on the move: no standing posture, no lean
    assert not np.isfinite(tr.baseline["lean"])
    feed(tr, rows(60, lean=2.0, seed=10))  # a traffic light gave the posture: lean from here
    assert abs(tr.baseline["lean"] - 2.0) < 0.5
    states = feed(tr, rows(200, lean=6.5, seed=11))  # +4.5 deg from that
    assert "fatigued" in states and tr.last.evidence["lean"] > 1.0


def test_watch_holds_until_the_index_falls_under_half_a_threshold():
    tr = FatigueTracker()
    feed(tr, rows(300))
    assert feed(tr, rows(60, rotation=12 * (1 + 0.3 * 0.7), seed=12))[-1] == "watch"
    assert set(feed(tr, rows(60, rotation=12 * (1 + 0.3 * 0.55), seed=13))[30:]) == {"watch"}  # 0.55: no flapping
    assert feed(tr, rows(60, rotation=12 * (1 + 0.3 * 0.35), seed=14))[-1] == "fresh"


def test_steps_read_as_a_table_give_the_readings_of_one_row_at_a_time():
    """add_steps (a batch, as the pipeline hands them) is add_step row by row: the same states,
    indices and evidence, through the warm-up, a fatigued spell, walking and NaN steps."""
    table = np.concatenate([rows(300), rows(200, rotation=16.0, drop=10.8, seed=1), rows(30, running=False, seed=2),
                            rows(60, cadence=160.0, seed=3)])
    table["pelvic_drop_deg"][::7] = np.nan
    table["step_time_s"][5::50] = np.nan
    one, batch = FatigueTracker(), FatigueTracker()
    singles = [one.add_step(row) for row in table]
    batched = batch.add_steps(table[:400]) + batch.add_steps(table[400:])
    assert [(r.state, r.index, r.evidence, r.running_s) for r in batched] == \
        [(r.state, r.index, r.evidence, r.running_s) for r in singles]
    assert {"fresh", "fatigued"} <= {r.state for r in singles} and one.entered_s == batch.entered_s
