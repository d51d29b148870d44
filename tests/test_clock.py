"""The sample-index clock: drift estimated from packet arrival times, mapping without jumps."""
import numpy as np
import pytest

from strideclip.link.clock import SampleClock

RATE = 208
SPP = 19


def arrivals(minutes: float, drift_ppm: float, *, seed: int, floor_ms: float = 12.0, pause=None):
    """Receive times of 19-sample packets: the clip's clock runs drift_ppm fast, each packet
    waits floor_ms plus exponential jitter (mean 8 ms) and now and then a 100-300 ms stall."""
    rng = np.random.default_rng(seed)
    last_idx = np.arange(SPP - 1, int(minutes * 60 * RATE), SPP)
    true_s = 100.0 + last_idx / RATE / (1 + drift_ppm * 1e-6)  # host time the sample was taken
    delay_s = (floor_ms + rng.exponential(8.0, len(last_idx))) / 1000
    stalls = rng.random(len(last_idx)) < 0.01
    delay_s[stalls] += rng.uniform(0.1, 0.3, stalls.sum())
    keep = np.ones(len(last_idx), bool)
    if pause:
        t = last_idx / RATE
        keep = (t < pause[0]) | (t >= pause[1])  # the link was down: nothing arrived
    return last_idx[keep], true_s[keep], np.maximum.accumulate(true_s[keep] + delay_s[keep])


@pytest.mark.parametrize("drift_ppm", [-80.0, 0.0, 150.0])
def test_drift_is_estimated_and_the_mapping_tracks_the_link_floor(drift_ppm):
    idx, true_s, rx_s = arrivals(10, drift_ppm, seed=int(drift_ppm) + 1000, pause=(200, 230))
    clock = SampleClock(RATE)
    published = []
    for i, t in zip(idx, rx_s):
        clock.add(int(i), float(t))
        published.append(clock.host_time_s(int(i)))
    assert clock.drift_ppm == pytest.approx(drift_ppm, abs=10)
    late = idx / RATE > 60  # after the first minute
    err_ms = (np.array(published) - (true_s + 0.012)) * 1000  # against the floor the clock can see
    assert np.percentile(np.abs(err_ms[late]), 95) < 3.0
    # no jumps: each packet's mapped time advances by its sample spacing, within 2000 ppm
    d_mapped = np.diff(published)
    d_nominal = np.diff(idx) / RATE
    assert np.all(d_mapped > 0)
    assert np.all(np.abs(d_mapped - d_nominal) <= 2.1e-3 * d_nominal + 1e-9)


def test_a_mapping_is_available_from_the_first_packet():
    clock = SampleClock(RATE)
    assert np.isnan(clock.host_time_s(0))
    clock.add(18, 5.0)
    assert clock.host_time_s(18) == 5.0
    assert clock.host_time_s(18 + RATE) == pytest.approx(6.0)
