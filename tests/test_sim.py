"""The simulated runner: deterministic, physically consistent, and each modelled effect present."""
from dataclasses import replace

import numpy as np
import pytest

from strideclip.errors import ConfigError
from strideclip.sim import Fatigue, Scenario, Segment, Sensor, simulate, steady_run
from strideclip.sim.gait import LEFT, RIGHT, RUN, WALK
from strideclip.sim.sensor import mounting_matrix


def _g(run):
    """Accelerometer in g, sensor frame."""
    return run.counts[:, :3].astype(float) * run.hello.accel_ug_per_lsb / 1e6


def _dps(run):
    return run.counts[:, 3:].astype(float) * run.hello.gyro_mdps_per_lsb_q8 / 256 / 1000


@pytest.fixture(scope="module")
def run3min():
    return simulate(steady_run(3, seed=5))


def test_same_seed_same_bytes_other_seed_differs():
    a, b = simulate(steady_run(1, seed=1)), simulate(steady_run(1, seed=1))
    assert a.counts.tobytes() == b.counts.tobytes() and a.steps.tobytes() == b.steps.tobytes()
    assert [p for _, p in a.link.packets] == [p for _, p in b.link.packets]
    assert simulate(steady_run(1, seed=2)).counts.tobytes() != a.counts.tobytes()


@pytest.mark.parametrize("rate_hz", [104, 208, 416])
def test_rates_and_truth_indices(rate_hz):
    run = simulate(steady_run(1, seed=3, rate_hz=rate_hz))
    assert run.hello.rate_hz == rate_hz
    assert len(run.counts) == 60 * rate_hz
    assert np.all(np.abs(run.steps["ic_idx"] - run.steps["ic_t_s"] * rate_hz) <= 0.5)


def test_steps_alternate_and_cadence_is_plausible(run3min):
    s = run3min.steps
    assert np.all(s["side"][1:] != s["side"][:-1])
    run, walk = s[s["kind"] == RUN], s[s["kind"] == WALK]
    assert 150 < np.median(run["cadence_spm"]) < 190
    assert 95 < np.median(walk["cadence_spm"]) < 125
    assert 200 < np.median(run["contact_ms"]) < 300
    # Left/right asymmetry and variability as configured (right steps 1.5 % longer, CV 2 %).
    left, right = run[run["side"] == LEFT]["step_time_s"], run[run["side"] == RIGHT]["step_time_s"]
    assert 0.5 < 100 * (right.mean() / left.mean() - 1) < 2.5
    assert 1.0 < 100 * run["step_time_s"].std() / run["step_time_s"].mean() < 3.5


def test_gravity_and_mean_vertical_force_are_physical(run3min):
    b = run3min.body
    assert abs(b.vertical_accel_g.mean() - 1.0) < 0.01  # the runner neither rises nor sinks
    stand = slice(0, 4 * run3min.rate_hz)
    assert abs(np.linalg.norm(_g(run3min)[stand].mean(axis=0)) - 1.0) < 0.03


@pytest.mark.parametrize("mount", [(0, 0, 0), (180, 0, 0), (0, 30, 0), (25, -40, 70)])
def test_gravity_lands_on_the_mounted_up_axis(mount):
    sc = steady_run(1, seed=4, mount_roll_deg=mount[0], mount_pitch_deg=mount[1], mount_yaw_deg=mount[2])
    run = simulate(sc)
    g_mean = _g(run)[: 4 * run.rate_hz].mean(axis=0)
    # Standing, the pelvis is tilted by the standing tilt; gravity in the pelvis frame then rotates
    # into the sensor frame through the mounting matrix.
    tilt = np.radians(run.body.tilt_deg[: 4 * run.rate_hz].mean())
    up_in_pelvis = np.array([-np.sin(tilt), 0.0, np.cos(tilt)])  # anterior tilt: up leans back
    expected = mounting_matrix(sc.sensor).T @ up_in_pelvis
    assert np.allclose(g_mean, expected, atol=0.04)


def test_saturation_at_full_scale():
    run = simulate(steady_run(1, seed=6, accel_fs_g=2, rate_hz=416))
    assert run.counts[:, :3].max() == 32767  # landings exceed ±2 g and clip there
    assert run.counts.dtype == np.int16


def test_lower_cadence_means_harder_landings():
    slow = simulate(steady_run(2, seed=7, cadence_spm=150)).steps
    quick = simulate(steady_run(2, seed=7, cadence_spm=180)).steps
    assert np.median(slow[slow["kind"] == RUN]["impact_g"]) > 1.1 * np.median(quick[quick["kind"] == RUN]["impact_g"])
    assert np.median(slow[slow["kind"] == RUN]["peak_grf_bw"]) > np.median(quick[quick["kind"] == RUN]["peak_grf_bw"])


def test_fatigue_drifts_cadence_down_and_rotation_up():
    sc = steady_run(20, seed=8, fatigue_onset_min=8)
    run = simulate(sc)
    s = run.steps[run.steps["kind"] == RUN]
    before = s[(s["ic_t_s"] > 120) & (s["ic_t_s"] < 8 * 60)]
    after = s[s["ic_t_s"] > 18 * 60]
    drop_pct = 100 * (1 - np.median(after["cadence_spm"]) / np.median(before["cadence_spm"]))
    rise_pct = 100 * (np.median(after["rotation_range_deg"]) / np.median(before["rotation_range_deg"]) - 1)
    f = sc.fatigue
    assert drop_pct == pytest.approx(-f.cadence_pct_per_min * 10, abs=1.5)  # 10 min of drift
    assert rise_pct == pytest.approx(f.rotation_pct_per_min * 10, abs=8)
    assert np.median(after["impact_g"]) > np.median(before["impact_g"])
    assert run.fatigue_truth()["onset_s"] == 480


def test_hills_change_impact_and_cadence_but_not_as_fatigue():
    segs = (Segment("run", 120, speed_mps=3.3), Segment("run", 120, speed_mps=3.3, slope_pct=8),
            Segment("run", 120, speed_mps=3.3, slope_pct=-8))
    s = simulate(Scenario(segs, seed=9)).steps
    flat, up, down = (s[s["segment"] == i] for i in range(3))
    assert np.median(up["cadence_spm"]) > np.median(flat["cadence_spm"])
    assert np.median(down["impact_g"]) > np.median(flat["impact_g"]) > np.median(up["impact_g"])
    assert np.all(s["fatigue_min"] == 0)


def test_a_turn_shows_in_the_gyro_as_heading_change():
    segs = (Segment("stand", 3), Segment("run", 20, speed_mps=3.0), Segment("run", 10, speed_mps=3.0, turn_deg=90),
            Segment("run", 20, speed_mps=3.0), Segment("stand", 3))
    sc = Scenario(segs, seed=10, sensor=Sensor(gyro_bias_dps=0, gyro_drift_dps_per_min=0, mount_pitch_deg=20))
    run = simulate(sc)
    up_in_sensor = mounting_matrix(sc.sensor).T @ np.array([0, 0, 1.0])
    yaw_deg = (_dps(run) @ up_in_sensor).sum() / run.rate_hz
    assert yaw_deg == pytest.approx(90, abs=6)


def test_walking_breaks_and_stops_have_no_steps_while_standing():
    segs = (Segment("run", 30, speed_mps=3.3), Segment("stand", 20, label="traffic light"),
            Segment("walk", 20, speed_mps=1.3), Segment("run", 30, speed_mps=3.3))
    run = simulate(Scenario(segs, seed=11))
    t = run.steps["ic_t_s"]
    assert not np.any((t > 30.5) & (t < 50))
    assert set(run.steps["kind"][(t > 50) & (t < 70)]) == {WALK}


def test_link_drops_match_the_received_packets():
    run = simulate(replace(steady_run(3, seed=12), link=replace(steady_run(3).link, drop_prob=0.05)))
    received = set()
    for _, pkt in run.link.packets:
        first, count = int.from_bytes(pkt[3:7], "little"), pkt[7]
        received.update(range(first, first + count))
    dropped = {i for a, b in run.link.dropped for i in range(a, b)}
    assert dropped and not (dropped & received)
    assert dropped | received == set(range(len(run.counts)))


@pytest.mark.parametrize("bad", [
    lambda: Segment("jog", 10), lambda: Segment("run", 10, speed_mps=9), lambda: Segment("walk", -1, speed_mps=1),
    lambda: Sensor(rate_hz=100), lambda: Sensor(accel_fs_g=3), lambda: Scenario(()),
    lambda: Fatigue(onset_s=10) and Segment("run", 10, speed_mps=3, cadence_spm=300),
])
def test_bad_configuration_is_named(bad):
    with pytest.raises(ConfigError) as info:
        bad()
    assert info.value.key
