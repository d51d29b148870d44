"""Many real-time clips in one process (issue #26): CPU share of one core and packet lag.

N simulated clips stream at real time (208 Hz, the clip's packets at their own pace) through the
live path a coach's laptop runs (session.live: each clip's session log, decoder, step detector,
metrics, fatigue and cue policy), with the terminal view drawing into a terminal nobody sees.
After a warm-up, over a measured window:

- **CPU**: the process's CPU time over the window's wall time (1.0 = one core);
- **lag**: per packet, from when it was due (its time in the run, at real-time pace) to when the
  host had run it through everything above; p50 / p95 / max.

Run: .venv/bin/python bench/bench_live_clips.py [--clips 100] [--seconds 60] [--warmup 15]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rich

from strideclip.link.sources import sim_source
from strideclip.session.live import open_clips, run_clips
from strideclip.sim import simulate, steady_run
from strideclip.views.terminal import TerminalView

DISTINCT_RUNS = 10  # simulated runs, shared round robin by the clips (the work per clip is the same)


def timed_packets(stream: list, due: dict, key: int):
    """The run's packets, noting when each falls due (monotonic s, set once playing starts)."""
    for t_ms, pkt in stream:
        due[key] = t_ms
        yield t_ms, pkt


async def measure(runs: list, n_clips: int, warmup_s: float, window_s: float) -> dict:
    due_ms: dict = {}
    lags_ms: list = []
    window = {"on": False}
    with tempfile.TemporaryDirectory() as out:
        sources = [sim_source(f"athlete-{k + 1}", runs[k % len(runs)], 1.0) for k in range(n_clips)]
        clips = open_clips(sources, Path(out))
        for k, clip in enumerate(clips):
            transport = clip.transport
            transport.packets = timed_packets(runs[k % len(runs)].stream(), due_ms, k)
            handle = transport.on_packet

            def on_packet(pkt: bytes, t_s: float, k=k, handle=handle, transport=transport) -> None:
                handle(pkt, t_s)
                if window["on"]:
                    started = transport._started_s
                    lags_ms.append((time.monotonic() - started) * 1000 - due_ms[k])

            transport.on_packet = on_packet
            run = transport.run

            async def run_noting_start(stop, transport=transport, run=run) -> None:
                transport._started_s = time.monotonic()  # as PlaybackTransport.run paces from
                await run(stop)

            transport.run = run_noting_start
        view = TerminalView(title="StrideClip live", live=True)

        async def window_cpu() -> tuple[float, float]:
            await asyncio.sleep(warmup_s)
            window["on"] = True
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(window_s)
            window["on"] = False
            return time.process_time() - cpu0, time.monotonic() - wall0

        with view:
            cpu_task = asyncio.ensure_future(window_cpu())
            await run_clips(clips, seconds=warmup_s + window_s + 1, on_update=view.show_clips)
        cpu_s, wall_s = await cpu_task
        samples = sum(c.session.decoder.stats.samples for c in clips)
        errors = [c.link.error for c in clips if c.link.error]
    lag = np.array(lags_ms)
    return {"cpu_share": cpu_s / wall_s, "lag_p50": np.percentile(lag, 50), "lag_p95": np.percentile(lag, 95),
            "lag_max": lag.max(), "packets": len(lag), "samples": samples, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    ap.add_argument("--warmup", type=float, default=15.0)
    a = ap.parse_args()
    rich.reconfigure(file=io.StringIO(), force_terminal=True, width=120)  # a terminal nobody sees
    minutes = (a.warmup + a.seconds) / 60 + 0.5
    t0 = time.perf_counter()
    runs = [simulate(steady_run(minutes, seed=60 + k)) for k in range(min(DISTINCT_RUNS, a.clips))]
    print(f"{a.clips} clips at real time (208 Hz), {len(runs)} distinct simulated runs made in "
          f"{time.perf_counter() - t0:.0f} s; warm-up {a.warmup:g} s, measured {a.seconds:g} s")
    r = asyncio.run(measure(runs, a.clips, a.warmup, a.seconds))
    print(f"  CPU {100 * r['cpu_share']:.0f} % of one core; lag p50 {r['lag_p50']:.0f} ms, p95 {r['lag_p95']:.0f} ms, "
          f"max {r['lag_max']:.0f} ms over {r['packets']} packets; {r['samples']} samples recorded")
    if r["errors"]:
        print("  errors:", r["errors"][:3])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
