"""Host speed (issues #5, #26): the metrics engine alone, and `strideclip replay --json` end to end,
each side by side with the previous code (git HEAD, or --base REV) in one run.

- **Engine alone**: the same samples and steps through the previous engine (its metrics.py and
  bodyframe.py from git, loaded as a module) and through today's, whole-log (``metrics_for_counts``)
  and one step at a time (a live session's ``batch_steps=1``); CPU seconds, the best of --repeats
  runs interleaved, and the largest difference between the tables (docs/metrics.md: tolerances).
- **End to end**: ``strideclip replay LOG --json`` as a subprocess, the previous tree (``git
  archive``, nothing in the working tree changes) and today's, interleaved: CPU seconds (user + sys
  of the process: one core) and wall time, for a 1-hour and a 1-minute 208 Hz simulated log; the
  median of --repeats runs (the targets are judged on it: other work on the machine slows single
  runs) and the best.

Run: .venv/bin/python bench/bench_metrics.py [--base HEAD] [--repeats 3] [--minutes 60]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from strideclip.analysis import metrics as today
from strideclip.analysis.steps import StepDetector
from strideclip.sim import simulate, steady_run, write_log

REPO = Path(__file__).resolve().parents[1]
HOUR_TARGET_S, MINUTE_TARGET_S = 1.5, 0.5  # issue #26: 1 h of 208 Hz data, and a 1-minute log (wall)


def previous_tree(base: str, into: Path) -> Path:
    """The repository at ``base`` unpacked into ``into`` (git archive: the working tree is untouched)."""
    archive = subprocess.run(["git", "archive", "--format=tar", base], cwd=REPO, check=True, capture_output=True).stdout
    tar = into / "base.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(into / "tree", filter="data")
    return into / "tree"


def previous_engine(tree: Path):
    """The previous tree's metrics module, with its own body frame, loaded beside today's."""
    names = {"bodyframe": "strideclip.analysis.bodyframe", "metrics": "strideclip.analysis.metrics"}
    modules = {}
    for short in ("bodyframe", "metrics"):
        source = (tree / "host/strideclip/analysis" / f"{short}.py").read_text()
        source = source.replace(f"from {names['bodyframe']} import", "from _previous_bodyframe import")
        path = tree / f"_previous_{short}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"_previous_{short}", path)
        modules[short] = importlib.util.module_from_spec(spec)
        sys.modules[f"_previous_{short}"] = modules[short]
        spec.loader.exec_module(modules[short])
    return modules["metrics"]


def largest_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """The largest |a - b| / max(|b|, 1) over every column, and how many values are NaN in one only."""
    worst, nan_mismatch = 0.0, 0
    for name in today.STEP_METRICS_DTYPE.names:
        x, y = a[name].astype(float), b[name].astype(float)
        nan_mismatch += int(np.sum(np.isnan(x) != np.isnan(y)))
        both = ~np.isnan(x) & ~np.isnan(y)
        if both.any():
            worst = max(worst, float(np.max(np.abs(x[both] - y[both]) / np.maximum(np.abs(y[both]), 1.0))))
    return worst, nan_mismatch


def best_cpu_s(runs: dict, repeats: int) -> dict:
    """Each callable's best CPU time over ``repeats`` interleaved rounds, and its last result."""
    times: dict = {k: [] for k in runs}
    out = {}
    for _ in range(repeats):
        for k, f in runs.items():
            t0 = time.process_time()
            out[k] = f()
            times[k].append(time.process_time() - t0)
    return {k: (min(v), out[k]) for k, v in times.items()}


def replay_cli(log: Path, tree: Path | None) -> tuple[float, float]:
    """CPU (user + sys) and wall seconds of ``strideclip replay LOG --json`` from ``tree`` (None: today's)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # one core
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "host"), str(tree / "shared")])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cli = "import sys; from strideclip.cli import main; sys.argv[0] = 'strideclip'; main()"
    done = subprocess.run([sys.executable, "-c", cli, "replay", str(log), "--json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"replay failed ({'previous' if tree else 'today'}): {done.stderr[-2000:]}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="HEAD", help="the previous code: a git revision (default HEAD)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=60.0, help="the long log's length")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tree = previous_tree(args.base, tmp)
        t0 = time.perf_counter()
        run = simulate(steady_run(args.minutes, seed=1, rate_hz=208))
        logs = {"long": write_log(run, tmp / "long.sclog"),
                "1 min": write_log(simulate(steady_run(1, seed=2, rate_hz=208)), tmp / "minute.sclog")}
        h = run.hello
        events = StepDetector(sampling_rate_hz=208, accel_ug_per_lsb=h.accel_ug_per_lsb).detect(run.counts).events_
        print(f"logs simulated in {time.perf_counter() - t0:.0f} s: {args.minutes:g} min at 208 Hz "
              f"({len(run.counts)} samples, {len(events)} steps) and 1 min; previous code: {args.base}")

        # -- the engine alone --------------------------------------------------------------------
        previous = previous_engine(tree)
        kw = dict(rate_hz=208, accel_g_per_count=h.accel_ug_per_lsb / 1e6,
                  gyro_dps_per_count=h.gyro_mdps_per_lsb_q8 / 256 / 1000)
        res = best_cpu_s({
            "previous": lambda: previous.metrics_for_counts(run.counts, events, **kw),
            "today, whole log": lambda: today.metrics_for_counts(run.counts, events, **kw),
            "today, step by step": lambda: today.feed_recording(today.MetricsEngine(**kw), run.counts, events),
        }, args.repeats)
        per_hour = 60.0 / args.minutes
        print(f"\nmetrics engine alone, CPU s per hour of data (best of {args.repeats}):")
        base_s = res["previous"][0]
        for name, (cpu_s, table) in res.items():
            diff, nans = largest_difference(table, res["previous"][1])
            print(f"  {name:20s} {cpu_s * per_hour:6.2f} s  {base_s / cpu_s:5.1f}x  "
                  f"({cpu_s / len(table) * 1e6:4.0f} us per step; largest difference from previous "
                  f"{diff:.1e} relative, {nans} NaN mismatches)")

        # -- end to end ------------------------------------------------------------------------------
        print(f"\n`strideclip replay LOG --json` end to end, one core (median and best of {args.repeats}; "
              f"CPU = user + sys):")
        for label, log in logs.items():
            times: dict = {"previous": [], "today": []}
            for _ in range(args.repeats):
                times["previous"].append(replay_cli(log, tree))
                times["today"].append(replay_cli(log, None))
            median = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v))
                      for k, v in times.items()}
            scale = per_hour if label == "long" else 1.0
            unit = "per hour of data" if label == "long" else "for the 1-minute log"
            for k, (cpu_s, wall_s) in median.items():
                best_s = min(c for c, _ in times[k])
                print(f"  {label:6s} {k:9s} CPU {cpu_s * scale:6.2f} s {unit} (best {best_s * scale:.2f}), "
                      f"wall {wall_s * scale:6.2f} s"
                      + (f"  ({args.minutes * 60 / (cpu_s):.0f}x real time)" if label == "long" else ""))
            cpu_today, wall_today = median["today"]
            if label == "long":
                met = cpu_today * scale <= HOUR_TARGET_S
                print(f"  target <= {HOUR_TARGET_S} s CPU per hour: {'met' if met else 'NOT met'}")
            else:
                print(f"  target <= {MINUTE_TARGET_S} s wall: {'met' if wall_today <= MINUTE_TARGET_S else 'NOT met'}")


if __name__ == "__main__":
    main()
