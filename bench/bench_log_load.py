"""Bulk-load speed of a session log: a 1-hour 208 Hz simulated session (issue #3).

Prints samples per second for load_log (frames checked, samples gathered to numpy) and for
iter_records (streaming). Run: .venv/bin/python bench/bench_log_load.py
"""
import tempfile
import time
from pathlib import Path

from strideclip.sim import simulate, steady_run, write_log
from strideclip.stream.sclog import iter_records, load_log


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hour.sclog"
        t0 = time.perf_counter()
        write_log(simulate(steady_run(60, seed=1, rate_hz=208)), path)
        made_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        best_s = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            log = load_log(path)
            best_s = min(best_s, time.perf_counter() - t0)
        n = len(log.sample_idx)
        t0 = time.perf_counter()
        records = sum(1 for _ in iter_records(path))
        stream_s = time.perf_counter() - t0
    print(f"log: 60 min at 208 Hz, {n} samples, {len(log.packets)} packets, {size_mb:.1f} MB (simulated in {made_s:.1f} s)")
    print(f"load_log (bulk):      {best_s:.3f} s  -> {n / best_s / 1e6:.2f} M samples/s")
    print(f"iter_records (stream): {stream_s:.3f} s  -> {records / stream_s:.0f} records/s")


if __name__ == "__main__":
    main()
