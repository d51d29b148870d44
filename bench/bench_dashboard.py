"""The coach's dashboard under load (issue #9): 10 simulated athletes at 208 Hz in real time,
one chromium page. Prints the latency from a packet's arrival at the host to the frame that
shows it (p50/p95; target p95 <= 300 ms), the server's CPU and the browser's frame rate.

The simulated clips answer like clips (strideclip.link.playback.SimulatedClipTransport);
each tile carries the wall time of the newest packet it shows (data-received), and a script in
the page notes, on every animation frame, when that changes. The BLE air time (bench_ble_link)
comes on top. Needs Debian's chromium (make test installs it).
Run: .venv/bin/python bench/bench_dashboard.py [--athletes 10] [--seconds 60]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenwatch import ScreenWatch, have_chromium  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--athletes", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60.0, help="measured window")
    args = ap.parse_args()
    if not have_chromium():
        sys.exit("needs /usr/bin/chromium (make test installs Debian's chromium)")
    exe = Path(sys.executable).parent / "strideclip"
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen([str(exe), "dashboard", "--simulate", str(args.athletes), "--rate-hz", "208",
                                 "--speed", "1", "--minutes", str(max(6.0, args.seconds / 60 + 3)), "--port", "0",
                                 "--out", out, "--no-history", "--seconds", str(args.seconds + 120)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = proc.stdout.readline().split()[1]
        try:
            screen = ScreenWatch(settle_ms=20000)  # past the warm-up walk: steps on every tile
            screen.watch(url)
            time.sleep(25)
            cpu0, t0 = cpu_s(proc.pid), time.monotonic()
            time.sleep(args.seconds)
            cpu1, t1 = cpu_s(proc.pid), time.monotonic()
            got = screen.finish()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lat_ms = np.array([shown - received for _who, received, _idx, shown in got["changes"]]) * 1000
    print(f"{args.athletes} simulated athletes at 208 Hz, real time, {args.seconds:.0f} s measured")
    print(f"  packet arrival -> on screen: p50 {np.percentile(lat_ms, 50):.0f} ms, p95 {np.percentile(lat_ms, 95):.0f} ms, "
          f"max {lat_ms.max():.0f} ms over {len(lat_ms)} tile updates (target p95 <= 300 ms)")
    print(f"  server CPU: {100 * (cpu1 - cpu0) / (t1 - t0):.0f} % of one core (pipeline for every athlete + the page)")
    print(f"  browser: {got['frames'] / got['seconds']:.0f} frames/s")


if __name__ == "__main__":
    main()
