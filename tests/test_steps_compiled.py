"""The step detector compiled on the host (numba, strideclip/analysis/steps_compiled.py) gives
the very events of the plain Python one, which is itself byte-identical to the clip's MicroPython
viper (test_parity_steps.py): on every public data set and simulated run at every rate, streamed
in odd blocks with gaps, handed from one engine to the other mid-stream, and on random bytes at
any sensitivity. It loads lazily (a short replay never imports numba), caches its build, and
without numba the plain Python one runs."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_data
from clipcore.steps import RATES_HZ
from mpy import REPO, find_tool
from strideclip.analysis import steps, steps_compiled
from strideclip.analysis.steps import StepDetector
from strideclip.evaluation import datasets
from strideclip.evaluation.evaluate import ACCEL_UG_PER_LSB, sim_trials, to_counts

LOG_1MIN = REPO / "tests" / "data" / "steady_208hz.sclog"


@pytest.fixture(scope="module")
def compiled():
    """The compiled detector, loaded once for the module (compiled the first time: seconds)."""
    if steps_compiled.load() is None:
        if steps_compiled.failure() == "numba is not installed":
            pytest.skip("numba is not installed: only the plain Python detector runs here (`pip install numba`)")
        pytest.fail(steps_compiled.failure())


def _stream(counts, rate_hz, engine, *, sizes, gaps=(), max_events=64, ug=ACCEL_UG_PER_LSB):
    """Events of one engine fed in blocks of the given sizes (cycled), skipping each gap (start,
    end) of lost samples with a resync, as a live session does. engine "both" alternates them."""
    det = StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=ug, max_events=max_events,
                       engine="python" if engine == "both" else engine)
    gaps = sorted(gaps)
    out, pos, k, used = [], 0, 0, set()
    while pos < len(counts):
        if gaps and pos == gaps[0][0]:
            start, end = gaps.pop(0)
            det.resync(end)
            pos = end
            continue
        stop = min(pos + sizes[k % len(sizes)], len(counts), gaps[0][0] if gaps else len(counts))
        if engine == "both":
            det.engine = ("python", "compiled")[k % 2]
        out.append(det.feed(counts[pos:stop]))
        used.add(det.engine_)
        pos, k = stop, k + 1
    assert engine == "both" and used == {"python", "compiled"} or used == {engine}
    return np.concatenate(out) if out else np.zeros(0, steps.EVENT_DTYPE)


def _whole(counts, rate_hz, engine):
    det = StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=ACCEL_UG_PER_LSB, engine=engine).detect(counts)
    assert det.engine_ == engine
    return det.events_


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_same_events_on_every_real_recording(compiled, rate_hz):
    """Alcantara, Voisard and adeptdata as a clip at this rate sees them: whole recordings in
    plain Python against the compiled detector, whole and streamed in odd blocks."""
    for name in (datasets.ALCANTARA, datasets.VOISARD, datasets.ADEPT):
        require_data(name)
    recordings = [to_counts(t.accel_g, t.gyro_dps, t.rate_hz, rate_hz)
                  for t in (*datasets.load_alcantara(), *datasets.load_voisard())]
    adept = datasets.load_adept()
    recordings.append(to_counts(adept.hip_g, np.zeros_like(adept.hip_g), adept.rate_hz, rate_hz))
    steps_total = 0
    for counts in recordings:
        reference = _whole(counts, rate_hz, "python")
        assert np.array_equal(_whole(counts, rate_hz, "compiled"), reference)
        # odd sizes, and an events buffer of 3: the early stop when it fills up
        assert np.array_equal(_stream(counts, rate_hz, "compiled", sizes=(1, 7, 61, 509), max_events=3), reference)
        steps_total += len(reference)
    assert steps_total > 3866 + 465  # every labelled contact and the 25-minute run's steps


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_same_events_on_simulated_runs_with_gaps_and_odd_blocks(compiled, rate_hz):
    """Six simulated sessions (walking, hills, stops, a U-turn, any mounting), each streamed
    with lost stretches: both engines, and both in turn on one detector."""
    rng = np.random.default_rng(rate_hz)
    for trial in sim_trials(rate_hz):
        counts = trial.info["counts"]
        starts = np.sort(rng.choice(len(counts) - 5000, 3, replace=False))
        gaps = [(int(s), int(s) + int(rng.integers(1, 3 * rate_hz))) for s in starts]
        gaps = [g for g, h in zip(gaps, gaps[1:] + [(len(counts), 0)]) if g[1] < h[0]]
        sizes = tuple(int(x) for x in rng.integers(1, 300, 7) | 1)
        reference = _stream(counts, rate_hz, "python", sizes=sizes, gaps=gaps)
        assert len(reference) > 300 and np.sum(reference["flags"] & 1) >= len(gaps)  # resync flags
        assert np.array_equal(_stream(counts, rate_hz, "compiled", sizes=sizes, gaps=gaps), reference)
        assert np.array_equal(_stream(counts, rate_hz, "both", sizes=sizes, gaps=gaps), reference)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(min_size=12, max_size=12 * 600), rate_hz=st.sampled_from(RATES_HZ),
       ug=st.integers(1, 2000), size=st.integers(1, 97))
def test_same_events_on_random_bytes_at_any_sensitivity(compiled, raw, rate_hz, ug, size):
    """Any int16 input at any sensitivity: no value leaves the int32 range (CPython's int32
    buffers would raise where numba's would wrap), and the events agree."""
    counts = np.frombuffer(raw[: len(raw) // 12 * 12], "<i2").reshape(-1, 6)
    reference = _stream(counts, rate_hz, "python", sizes=(size,), ug=ug)
    assert np.array_equal(_stream(counts, rate_hz, "compiled", sizes=(size,), ug=ug), reference)


def test_without_numba_the_python_detector_runs_silently(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ModuleNotFoundError
    monkeypatch.setattr(steps_compiled, "cache_dir", lambda: tmp_path)  # no build there
    for name in ("_block", "_failure", "_builder"):
        monkeypatch.setattr(steps_compiled, name, None)
    counts = sim_trials(208, seeds=[0], minutes=1)[0].info["counts"]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        det = StepDetector(engine="compiled").detect(counts)
    assert said == [] and det.engine_ == "python" and steps_compiled.failure() == "numba is not installed"
    assert np.array_equal(det.events_, _whole(counts, 208, "python")) and len(det.events_) > 100


def test_the_build_is_kept_per_numba_release_found_without_importing_it(monkeypatch):
    """The build's folder names the numba that would make it, read from numba's own files rather
    than through importlib.metadata (~15 ms of every analysing command's start-up, #26); without
    numba there is no build to look for."""
    name = steps_compiled.cache_dir().name
    try:
        monkeypatch.setattr(steps_compiled, "_numba_release", lambda: b"another release")
        steps_compiled._digest.cache_clear()
        assert steps_compiled.cache_dir().name != name
        monkeypatch.undo()
        monkeypatch.setitem(sys.modules, "numba", None)  # as if it were not installed
        steps_compiled._digest.cache_clear()
        assert steps_compiled.cached() is False
        with pytest.raises(ModuleNotFoundError, match="numba"):
            steps_compiled.cache_dir()
    finally:
        monkeypatch.undo()
        steps_compiled._digest.cache_clear()
    assert steps_compiled.cache_dir().name == name


def test_a_numba_that_fails_warns_once_and_the_python_detector_runs(monkeypatch, tmp_path):
    import numba

    def njit(func):
        def broken(*args):
            raise numba.core.errors.TypingError("no can do")
        return broken

    monkeypatch.setattr(numba, "njit", njit)  # the helpers: detect_block cannot be typed with them
    monkeypatch.setattr(steps_compiled, "cache_dir", lambda: tmp_path)  # no build there
    for name in ("_block", "_failure", "_builder"):
        monkeypatch.setattr(steps_compiled, name, None)
    counts = sim_trials(208, seeds=[1], minutes=1)[0].info["counts"]
    with pytest.warns(RuntimeWarning, match="plain Python one runs: numba could not compile clipcore.steps"):
        det = StepDetector(engine="compiled").detect(counts)
    assert det.engine_ == "python" and np.array_equal(det.events_, _whole(counts, 208, "python"))


SCRIPT = """
import json, sys
from strideclip.analysis import steps, steps_compiled
from strideclip.evaluation.evaluate import sim_trials
steps.COMPILE_AFTER_SAMPLES = 20000
counts = sim_trials(208, seeds=[2], minutes=4)[0].info["counts"]
was_cached = steps_compiled.cached()
det, engines, out = steps.StepDetector(), [], []
for i in range(0, len(counts), 16):
    if i == 30000:
        steps_compiled.wait_for_load()  # it goes on beside the detector: wait for it here
    out += det.feed(counts[i:i + 16])["ic_idx"].tolist()
    engines.append(det.engine_)
ref = steps.StepDetector(engine="python").detect(counts).events_["ic_idx"].tolist()
print(json.dumps({"was_cached": was_cached, "same": out == ref, "steps": len(ref),
                  "first_compiled": engines.index("compiled") * 16, "numba_imported": "numba" in sys.modules}))
"""


def test_auto_builds_once_aside_then_loads_the_build_without_numba(tmp_path):
    """In a fresh cache: past the threshold a process of its own builds the detector while plain
    Python goes on, and the detector then loads that build. The next processes load it at their
    first sample, without importing numba (the build is an extension module of its own)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "STRIDECLIP_DETECTOR": "auto"}
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    first, second = runs
    assert all(r["same"] for r in runs) and first["steps"] > 500
    assert not first["was_cached"] and 20000 < first["first_compiled"] <= 30000  # plain Python meanwhile
    assert second["was_cached"] and second["first_compiled"] == 0 and not second["numba_imported"]
    assert len(list(tmp_path.glob("clipcore-*/clipcore_steps*.so"))) == 1
    assert not list(tmp_path.glob("clipcore-*/.build-*"))  # the build folder is gone
    assert not list((REPO / "shared").rglob("*.so"))  # nothing beside the sources: they may be read-only


def test_with_nowhere_to_cache_it_compiles_in_the_process():
    """A cache folder that cannot be made (here: under a file) costs a build per process, no error."""
    code = ("import sys; from strideclip.analysis import steps; from strideclip.evaluation.evaluate import sim_trials; "
            "c = sim_trials(208, seeds=[3], minutes=1)[0].info['counts']; "
            "a = steps.StepDetector(engine='compiled').detect(c); b = steps.StepDetector(engine='python').detect(c); "
            "print(a.engine_, (a.events_ == b.events_).all() and len(a.events_) > 100)")
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "NUMBA_CACHE_DIR": str(LOG_1MIN / "numba")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["compiled", "True"]


def test_a_short_replay_never_loads_numba():
    code = ("import sys; from strideclip.session.replay import analyse; "
            f"summary, rows = analyse({str(LOG_1MIN)!r}); print(len(rows), 'numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STRIDECLIP_DETECTOR": "auto"})
    assert done.returncode == 0, done.stderr
    n_rows, numba_loaded = done.stdout.split()
    assert int(n_rows) > 100 and numba_loaded == "False"


def test_the_environment_chooses_the_engine_and_a_bad_value_is_one_clear_line():
    def replay(value):
        return subprocess.run([find_tool("strideclip"), "replay", str(LOG_1MIN), "--json"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "STRIDECLIP_DETECTOR": value})

    python, compiled_, bad = replay("python"), replay("compiled"), replay("fast")
    assert python.returncode == 0 and compiled_.returncode == 0, python.stderr + compiled_.stderr
    a, b = json.loads(python.stdout), json.loads(compiled_.stdout)
    assert a["steps"] > 100 and a == b
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "STRIDECLIP_DETECTOR='fast'" in bad.stderr
