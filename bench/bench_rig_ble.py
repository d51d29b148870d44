"""The clip over BLE on the rig (tests/rig/README.md), the acceptance run of issue #20: the
unchanged firmware on MicroPython's NimBLE and littlefs, the host's bleak code over bumble,
MINUTES of 208 Hz with the runner out of the laptop's range twice for 15 s. Prints what reached
the host, how the gaps were filled (time to fill, the most notifications in a second), what the
clip reported, and its heap at the end. Real time: takes the run's length.

Run: .venv/bin/python bench/bench_rig_ble.py [--minutes 10]
"""
import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import rig as R  # noqa: E402
from rig.air import Air  # noqa: E402

from clipcore import protocol as P  # noqa: E402
from strideclip.link.ble import scan  # noqa: E402
from strideclip.session.live import run_live  # noqa: E402
from strideclip.sim import simulate, steady_run  # noqa: E402
from strideclip.stream.sclog import load_log  # noqa: E402


async def session(tmp: Path, minutes: float, drops_at_s: tuple, out_s: float) -> tuple:
    run = simulate(steady_run(minutes, seed=50))
    firmware = R.build_firmware(tmp / "fw")
    board = R.Board(tmp / "clip", firmware, {"clip_name": "Ana"})
    air = Air()
    await air.start()
    clip = R.BleClip(air, board)
    end_ms = len(run.counts) * 1000 // 208
    await clip.boot(run.counts, end_ms=end_ms + 20_000)
    await asyncio.sleep(1.0)
    adverts = await scan(1.0, backend=air.scanner_backend)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stop = asyncio.Event()
    live: list = []
    drops: list = []

    async def drop():
        for at in drops_at_s:
            while loop.time() - t0 < at:
                await asyncio.sleep(0.1)
            drops.append(loop.time() - t0)
            await air.link.lose(air.laptop, clip.controller, out_of_range_s=out_s)

    async def watch():
        while loop.time() - t0 < end_ms / 1000 + 60:
            if live:
                d = live[0].session.decoder
                if d.next_idx is not None and d.next_idx >= len(run.counts) - 19 and not d.open_gaps:
                    break
            await asyncio.sleep(0.2)
        stop.set()

    tasks = [asyncio.ensure_future(drop()), asyncio.ensure_future(watch())]
    result = await run_live(adverts, tmp / "host", backend=air.client_backend, stop=stop,
                            on_update=lambda now: live[:] or live.extend(now))
    for t in tasks:
        t.cancel()
    boot = await clip.finish()
    await air.close()
    return run, result, boot, drops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    if R.unavailable():
        sys.exit(R.unavailable())
    drops_at = (args.minutes * 60 * 0.3, args.minutes * 60 * 0.65)
    with tempfile.TemporaryDirectory() as t:
        started = time.time()
        run, live, boot, drops = asyncio.run(session(Path(t), args.minutes, drops_at, 15.0))
        log = load_log(live[0].log_path)
        first = int(log.sample_idx[0])
        whole = np.array_equal(log.sample_idx, np.arange(first, first + len(log.sample_idx))) and \
            np.array_equal(log.counts, run.counts[first:first + len(log.counts)])
        events = [e for _t, e in log.host_events]
        gaps = [(e["start_idx"], e["end_idx"]) for e in events if e["event"] == "gap"]
        filled = [(e["start_idx"], e["end_idx"]) for e in events if e["event"] == "gap_filled"]
        clip_events = [m for _t, m in log.events]
        done = [m.value for m in clip_events if isinstance(m, P.Status) and m.code == P.STATUS_BACKFILL_DONE]
        errors = [m for m in clip_events if isinstance(m, P.Status) and m.code == P.STATUS_ERROR]
        pk = log.packets
        t_ms = pk["t_ms"][(pk["ptype"] == P.T_SAMPLES) | (pk["ptype"] == P.T_BACKFILL)]
        print(f"{args.minutes:.0f} min at 208 Hz over NimBLE/bumble, two {15} s drops at {drops[0]:.0f} s and "
              f"{drops[1]:.0f} s; {time.time() - started:.0f} s of wall time")
        print(f"  host holds samples {first}..{first + len(log.counts) - 1} of {len(run.counts)}: "
              f"{'every one, bit for bit' if whole and not log.gaps else 'NOT all'}; open gaps {log.gaps}")
        print(f"  gaps {[(b - a) for a, b in gaps]} samples, {sum(b - a for a, b in filled)} filled by backfill; "
              f"backfill_done said {done}; errors on the clip: {len(errors)}")
        if len(t_ms):
            per_s = np.bincount((t_ms // 1000).astype(int))
            print(f"  sample notifications: most in one second {per_s.max()}, median {np.median(per_s[per_s > 0]):.0f}")
        print(f"  clip: heap free at the end {boot.report.get('mem_free', 0) / 1024:.1f} kB of its 96 kB; "
              f"I2C {100 * boot.report['i2c_busy_ms'] / boot.report['t_ms']:.1f} %, "
              f"flash {100 * boot.report['flash']['busy_ms'] / boot.report['t_ms']:.1f} % of the time; "
              f"FIFO overruns {boot.report['imu']['overruns']}")


if __name__ == "__main__":
    main()
