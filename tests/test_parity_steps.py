"""The step detector gives byte-identical events under CPython and the MicroPython unix port,
and allocates nothing per sample there."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpy import REPO, cpython_call, hexarg, run_script
from strideclip.sim import Scenario, Segment, Sensor, simulate
from strideclip.stream.sclog import load_log

parity = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def same(mpy, *args):
    here = cpython_call("drivers.detect", *args)
    there = mpy.call("drivers.detect", *args)
    assert there == here, f"MicroPython {there} != CPython {here}"
    assert "r" in here, here
    return here["r"]


@st.composite
def gait_like(draw):
    """Pulses at a random cadence on gravity at a random orientation, with noise and gyro."""
    n = draw(st.integers(200, 1600))
    rate = draw(st.sampled_from([104, 208, 416]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    period = int(rate * draw(st.floats(0.25, 0.8)))
    up = rng.normal(size=3)
    up /= np.linalg.norm(up)
    t = np.arange(n)
    pulse = np.where(t % period < period // 3, draw(st.floats(0.2, 3.0)), -0.3)
    acc_g = (1 + pulse)[:, None] * up[None, :] + rng.normal(0, draw(st.floats(0, 0.2)), (n, 3))
    gyro = rng.normal(0, 400, (n, 3)) + draw(st.integers(-3000, 3000))
    counts = np.concatenate([acc_g * 2048, gyro], axis=1)
    counts = np.clip(np.round(counts), -32768, 32767).astype("<i2")
    return counts, rate


@parity
@given(case=gait_like(), chunk=st.integers(1, 64), resync=st.integers(-1, 1500))
def test_events_identical_on_generated_streams(mpy, case, chunk, resync):
    counts, rate = case
    same(mpy, hexarg(counts.tobytes()), rate, 488, chunk, resync if resync < len(counts) else -1)


@parity
@given(raw=st.binary(min_size=12, max_size=12 * 400), rate=st.sampled_from([104, 208, 416]),
       ug=st.integers(61, 977), chunk=st.integers(1, 50))
def test_events_identical_on_random_bytes(mpy, raw, rate, ug, chunk):
    raw = raw[: len(raw) // 12 * 12]
    same(mpy, hexarg(raw), rate, ug, chunk, -1)


def test_events_identical_on_a_recorded_log_and_a_misaligned_simulated_run(mpy):
    log = load_log(REPO / "tests" / "data" / "lossy_104hz.sclog")
    events = same(mpy, hexarg(log.counts.astype("<i2").tobytes()), 104, log.hello.accel_ug_per_lsb, 19, 3000)
    assert len(events) > 60
    segs = (Segment("stand", 3), Segment("walk", 10, speed_mps=1.3), Segment("run", 30, speed_mps=3.5))
    run = simulate(Scenario(segs, sensor=Sensor(rate_hz=416, mount_roll_deg=170, mount_pitch_deg=25), seed=4))
    events = same(mpy, hexarg(run.counts.astype("<i2").tobytes()), 416, run.hello.accel_ug_per_lsb, 16, -1)
    assert abs(len(events) - len(run.steps)) <= 3


HEAP = """
import array, micropython
from clipcore import steps as S
det = S.StepDetector(208, 488, 8)
n = 4000
buf = array.array('h', [0] * (6 * n))
for i in range(n):            # standing, then running-like pulses at 3 steps/s
    t = i % 70
    buf[6 * i + 2] = 2048 if i < 400 else (6144 if t < 8 else (0 if t < 40 else 2048))
    buf[6 * i + 5] = (i * 7) % 200 - 100
def run(start, count):
    got = 0
    done = 0
    while done < count:
        got += det.feed(buf, start + done, count - done)
        done += det.consumed
    return got
def locked(fn, a, b):
    # Only locals inside: a new global would itself allocate.
    micropython.heap_lock()
    try:
        r = fn(a, b)
    except MemoryError:
        r = -1
    micropython.heap_unlock()
    return r
def gap(a, b):
    det.resync(a)             # a gap in the stream is handled without allocating too
    return 0
def allocating(a, b):
    return [a, b]             # negative control: a list must be caught
run(0, 1000)                  # warm up: the first calls may allocate
print(locked(run, 1000, 3000), locked(gap, 4000, 0), locked(allocating, 1, 2))
"""


def test_detector_allocates_nothing_per_sample_under_heap_lock():
    steps, gap, control = map(int, run_script(HEAP, heapsize="512k").split())
    assert steps >= 35  # 3000 samples of 3 steps/s at 208 Hz, no MemoryError (-1)
    assert gap == 0
    assert control == -1  # the harness does catch an allocation
