"""Peer comparison: our step detector against mobgap's lower-back initial-contact detectors.

Same data, same clip-like resampling and int16 conversion, same one-to-one matching
(strideclip.evaluation.evaluate). mobgap's detectors get the gravity-aligned vertical acceleration (the
mean acceleration direction of the recording) and two horizontal axes, in m/s^2, as their body
frame expects; IcdShinImproved uses the norm. mobgap works offline on whole recordings, so it
has no streaming latency to report. Needs `pip install -e '.[bench]'` (make bench does it).

Then speed, all in this one run on one simulated hour (walking, running, a hill, stops, a
U-turn, a random mounting): clipcore's detector compiled (numba) and in plain Python, mobgap's
two detectors, each on the whole hour (best of several runs) and ours also fed in 16-sample
blocks as a replay feeds it; whether the compiled events are identical to the plain Python ones
and to the clip's own (the same file under the MicroPython unix port's viper); and what loading
the compiled detector costs a fresh process, compiling into an empty cache and from the cache.
Run: .venv-bench/bin/python bench/bench_peer_mobgap.py [--rate-hz 208] [--speed-only]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from strideclip.analysis import steps_compiled
from strideclip.analysis.steps import StepDetector
from strideclip.evaluation import evaluate as ev
from strideclip.sim import Scenario, Segment, Sensor, simulate

G = 9.80665
SHARED = Path(__file__).resolve().parents[1] / "shared"


def mobgap_detector(name: str):
    import pandas as pd
    from mobgap.initial_contacts import IcdIonescu, IcdShinImproved

    def run(counts: np.ndarray, rate_hz: int):
        acc = counts[:, :3].astype(float) * ev.ACCEL_UG_PER_LSB / 1e6
        up = acc.mean(axis=0)
        up /= np.linalg.norm(up)
        h1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
        h1 /= np.linalg.norm(h1)
        h2 = np.cross(up, h1)
        zeros = np.zeros(len(acc))
        df = pd.DataFrame({"acc_is": acc @ up * G, "acc_ml": acc @ h1 * G, "acc_pa": acc @ h2 * G,
                           "gyr_is": zeros, "gyr_ml": zeros, "gyr_pa": zeros})
        algo = IcdIonescu() if name == "IcdIonescu" else IcdShinImproved(axis="norm")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ic = algo.detect(df, sampling_rate_hz=rate_hz).ic_list_["ic"].to_numpy()
        return ic / rate_hz, None, np.full(len(ic), -1)

    return run


def accuracy_table(rate: int, detectors: dict) -> None:
    print(f"Initial-contact detection at {rate} Hz (one-to-one matching; errors = detected - reference)")
    header = f"{'data set':10s} {'detector':24s} {'F1':>6s} {'prec':>6s} {'recall':>6s} {'med|e| ms':>9s} " \
             f"{'mean e ms':>9s} {'cad err':>8s} {'lat p95':>8s} {'s/hour':>7s}"
    print(header)
    for dataset in ("alcantara", "voisard", "adeptdata", "sim"):
        for name, det in detectors.items():
            t0 = time.perf_counter()
            out = ev.evaluate(dataset, rate_hz=rate, detector=det)
            if dataset == "adeptdata":
                print(f"{dataset:10s} {name:24s} {'':>6s} {'':>6s} {'':>6s} {'':>9s} {'':>9s} "
                      f"{out['cadence_abs_error_spm_median']:8.2f} {'':>8s} {out['compute_s_per_hour']:7.3f}")
                continue
            lat = out["latency_ms_p95"]
            print(f"{dataset:10s} {name:24s} {out['f1']:6.3f} {out['precision']:6.3f} {out['recall']:6.3f} "
                  f"{out['median_abs_error_ms'] or float('nan'):9.1f} {out['mean_error_ms'] or float('nan'):9.1f} "
                  f"{out['cadence_abs_error_spm_median'] or float('nan'):8.2f} "
                  f"{lat if lat is not None else float('nan'):8.1f} {out['compute_s_per_hour']:7.3f}"
                  f"   ({time.perf_counter() - t0:.0f} s)")
    print("cad err: median |cadence error| in steps/min (per trial; adeptdata: per 60-s window vs the ankle)")


def one_hour(rate: int) -> np.ndarray:
    segs = (Segment("stand", 10), Segment("walk", 120, speed_mps=1.3), Segment("run", 1500, speed_mps=3.2),
            Segment("run", 300, speed_mps=3.0, slope_pct=6, label="hill"), Segment("stand", 30),
            Segment("run", 1200, speed_mps=3.6, turn_deg=180), Segment("walk", 120, speed_mps=1.2),
            Segment("run", 300, speed_mps=3.3), Segment("stand", 20))
    return simulate(Scenario(segs, sensor=Sensor.random_mounting(np.random.default_rng(7), rate), seed=7)).counts


def best_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def streamed(counts: np.ndarray, rate: int, engine: str, block: int = 16) -> None:
    det = StepDetector(sampling_rate_hz=rate, accel_ug_per_lsb=ev.ACCEL_UG_PER_LSB, engine=engine)
    for i in range(0, len(counts), block):
        det.feed(counts[i:i + block])


LOAD = """
import time
from strideclip.analysis import steps_compiled
t0 = time.perf_counter()
assert steps_compiled.load() is not None, steps_compiled.failure()
print(time.perf_counter() - t0)
"""

CLIP = """
import sys, array
sys.path.insert(0, sys.argv[2])
from clipcore import steps as S
f = open(sys.argv[1], 'rb')
samples = array.array('h', f.read())
f.close()
det = S.StepDetector(int(sys.argv[3]), int(sys.argv[4]), 8)
n = len(samples) // 6
pos = 0
while pos < n:  # 16-sample batches, as the clip reads its IMU's FIFO
    k = det.feed(samples, pos, 16 if pos + 16 <= n else n - pos)
    for i in range(k):
        print(' '.join([str(det.events[i * S.EV_FIELDS + j]) for j in range(S.EV_FIELDS)]))
    pos += det.consumed
"""


def clip_events(counts: np.ndarray, rate: int) -> np.ndarray | None:
    """The events of the clip's own code on the MicroPython unix port (viper), None without it."""
    exe = Path(sys.executable).parent / "micropython"
    exe = str(exe) if exe.exists() else shutil.which("micropython")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        raw, script = Path(tmp) / "hour.raw", Path(tmp) / "clip.py"
        raw.write_bytes(counts.astype("<i2").tobytes())
        script.write_text(CLIP)
        done = subprocess.run([exe, "-X", "heapsize=64M", str(script), str(raw), str(SHARED), str(rate),
                               str(ev.ACCEL_UG_PER_LSB)], capture_output=True, text=True, timeout=600, check=True)
    return np.array([[int(x) for x in line.split()] for line in done.stdout.splitlines()], dtype=np.int64)


def speed(rate: int, mobgap: dict) -> None:
    print(f"\nSpeed on one simulated hour at {rate} Hz")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold, warm = (float(subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True,
                                           check=True).stdout) for _ in range(2))
    print(f"the compiled detector in a fresh process: building it (ahead of time) {cold:.2f} s, "
          f"loading the build {warm * 1000:.1f} ms")
    counts = one_hour(rate)
    hours = len(counts) / rate / 3600
    assert steps_compiled.load() is not None, steps_compiled.failure()
    rows = {}
    for engine, repeats in (("compiled", 5), ("python", 2)):
        det = ev.clipcore_detector(rate, engine=engine)
        rows[f"StrideClip {engine}"] = (best_s(lambda: det(counts, rate), repeats),
                                        best_s(lambda: streamed(counts, rate, engine), min(repeats, 3)))
    for name, det in mobgap.items():
        rows[name] = (best_s(lambda: det(counts, rate), 3), None)
    print(f"{'detector':24s} {'s/hour whole':>12s} {'s/hour in 16-sample blocks':>27s}")
    for name, (whole_s, blocks_s) in rows.items():
        blocks = f"{blocks_s / hours:27.3f}" if blocks_s is not None else f"{'(offline only)':>27s}"
        print(f"{name:24s} {whole_s / hours:12.3f} {blocks}")
    fastest_peer = min((v[0] for k, v in rows.items() if k.startswith("mobgap")), default=None)
    if fastest_peer:
        print(f"compiled vs mobgap's fastest: {fastest_peer / rows['StrideClip compiled'][0]:.1f}x faster; "
              f"vs plain Python: {rows['StrideClip python'][0] / rows['StrideClip compiled'][0]:.0f}x")
    compiled = StepDetector(sampling_rate_hz=rate, accel_ug_per_lsb=ev.ACCEL_UG_PER_LSB, engine="compiled")
    python = StepDetector(sampling_rate_hz=rate, accel_ug_per_lsb=ev.ACCEL_UG_PER_LSB, engine="python")
    a, b = compiled.detect(counts).events_, python.detect(counts).events_
    print(f"events: {len(a)} steps; compiled identical to plain Python (every field): {np.array_equal(a, b)}")
    clip = clip_events(counts, rate)
    if clip is None:
        print("the MicroPython unix port is not installed (`pip install -e '.[test]'`): no clip comparison")
    else:
        same = clip.shape == (len(a), 7) and np.array_equal(clip, np.array(a.tolist(), dtype=np.int64))
        print(f"compiled identical to the clip's code on the MicroPython unix port (viper, 16-sample batches): {same}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate-hz", type=int, default=208, choices=(104, 208, 416))
    parser.add_argument("--speed-only", action="store_true", help="skip the accuracy table")
    args = parser.parse_args()
    rate = args.rate_hz
    mobgap = {}
    try:
        mobgap["mobgap IcdIonescu"] = mobgap_detector("IcdIonescu")
        mobgap["mobgap IcdShinImproved"] = mobgap_detector("IcdShinImproved")
    except ImportError:
        print("mobgap is not installed: `pip install -e '.[bench]'` (make bench) for the comparison")
    steps_compiled.load()  # loaded before any timing
    if not args.speed_only:
        accuracy_table(rate, {"StrideClip compiled": ev.clipcore_detector(rate, engine="compiled"),
                              "StrideClip Python": ev.clipcore_detector(rate, engine="python"), **mobgap})
    speed(rate, mobgap)


if __name__ == "__main__":
    main()
