"""The host's fatigue state (strideclip.fatigue): form drifting past 90 % of a coaching threshold
for 15 s of running makes "fatigued"; a slower pace, a downhill or a stop do not."""
import numpy as np

from strideclip.fatigue import FatigueTracker
from strideclip.metrics import STEP_METRICS_DTYPE


def rows(seconds, *, cadence=170.0, rotation=12.0, drop=8.0, impact=2.4, running=True, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * cadence / 60)
    t = np.zeros(n, STEP_METRICS_DTYPE)
    t["running"] = running
    t["step_time_s"] = 60 / cadence
    t["cadence_smoothed_spm"] = cadence * (1 + 0.005 * rng.standard_normal(n))
    t["pelvic_rotation_deg"] = rotation * (1 + 0.05 * rng.standard_normal(n))
    t["pelvic_drop_deg"] = drop * (1 + 0.05 * rng.standard_normal(n))
    t["peak_vertical_g"] = impact * (1 + 0.1 * rng.standard_normal(n))
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
