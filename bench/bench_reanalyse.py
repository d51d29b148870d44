"""`strideclip reanalyse` over an archive of simulated session logs (issue #26): wall time, sessions
per second and hours of data per minute on 1 worker (in the process), the local pool, and a Dask
LocalCluster reached through --scheduler; the datasets must be identical.

Run: .venv/bin/python bench/bench_reanalyse.py [--logs 20] [--minutes 10] [--workers 2]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from strideclip.sim import simulate, steady_run, write_log
from strideclip.store.archive import read_steps

ATHLETES = ("Ana", "Ben", "Cara", "Dev")
STRIDECLIP = str(Path(sys.executable).with_name("strideclip"))


def make_log(args: tuple) -> None:
    path, k, minutes = args
    path.parent.mkdir(exist_ok=True)
    start = f"2026-{1 + k % 6:02d}-{1 + k % 27:02d}T07:00:00+00:00"  # six months, four athletes
    write_log(simulate(steady_run(minutes, seed=100 + k)), path, athlete=ATHLETES[k % len(ATHLETES)], started_at=start)


def run(archive: Path, out: Path, *extra: str) -> tuple[float, float]:
    """Wall time, and CPU time of the command (with its processes it waited for: not the pool's
    workers, children of the fork server it never waits for, nor a Dask cluster's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([STRIDECLIP, "reanalyse", str(archive), "-o", str(out), *extra], capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"reanalyse {' '.join(extra)} failed: {done.stderr}")
    return wall_s, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def dataset(out: Path):
    steps = read_steps(out).sort_by([("session", "ascending"), ("ic_idx", "ascending")])
    return steps, pq.read_table(out / "_sessions.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2, help="local pool size and Dask workers")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each way; the best is shown")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "runs"
        archive.mkdir()
        t0 = time.perf_counter()
        with ProcessPoolExecutor(opts.workers) as pool:
            list(pool.map(make_log, [(archive / f"{ATHLETES[k % 4]}/run{k:03d}.sclog", k, opts.minutes)
                                     for k in range(opts.logs)]))
        size_mb = sum(p.stat().st_size for p in archive.rglob("*.sclog")) / 1e6
        print(f"archive: {opts.logs} simulated logs of {opts.minutes:g} min at 208 Hz ({size_mb:.0f} MB, made in "
              f"{time.perf_counter() - t0:.0f} s); {os.cpu_count()} CPUs")
        hours = opts.logs * opts.minutes / 60
        results = {}
        ways = [("1 worker (in process)", ["--workers", "1"]),
                (f"local pool, {opts.workers} workers", ["--workers", str(opts.workers)])]
        cluster = None
        if not opts.no_dask:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=opts.workers, threads_per_worker=1, processes=True, dashboard_address=None)
            ways.append((f"Dask LocalCluster, {opts.workers} workers x 1 thread", ["--scheduler", cluster.scheduler_address]))
        try:
            best, resumed = {}, {}
            for _ in range(opts.repeat):  # the ways interleaved, the best of each: a shared machine's load varies
                for name, extra in ways:
                    out = Path(tmp) / "out.parquet"
                    wall_s, cpu_s = run(archive, out, *extra)
                    best[name] = min(best.get(name, (wall_s, cpu_s)), (wall_s, cpu_s))
                    resumed[name] = run(archive, out, *extra)[0]  # everything done: what a resume costs
                    results[name] = dataset(out)
                    shutil.rmtree(out)
            for name, extra in ways:
                wall_s, cpu_s = best[name]
                cpu = f"{cpu_s:5.1f} s CPU" if extra == ["--workers", "1"] else "           "  # workers: not our children
                print(f"{name:40s} {wall_s:6.1f} s  {opts.logs / wall_s:5.2f} sessions/s  "
                      f"{hours / (wall_s / 60):5.2f} h of data per minute  {cpu}  (rerun, all done: {resumed[name]:.1f} s)")
        finally:
            if cluster is not None:
                cluster.close()
        (steps0, sessions0), *others = results.values()
        same = all(steps.equals(steps0) and sessions.equals(sessions0) for steps, sessions in others)
        print(f"datasets identical across the {len(results)} ways: {same} ({steps0.num_rows} step rows, "
              f"{sessions0.num_rows} sessions)")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
