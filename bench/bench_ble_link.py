"""The BLE host link over bumble (issue #8): notifications/s and bytes/s per clip and for 8 clips,
notify -> step-event latency (p50/p95), and host CPU per clip.

Simulated clips (tests/blesim) stream 208 Hz runs faster than real time through bumble's
virtual controllers; the host records them with its ordinary bleak code (strideclip.session.live).
Latency is from the clip handing a packet to its stack to the host having run that packet
through log, decoder, step detector and metrics, for packets that completed a step. Host and
virtual clips share one process and one core, so CPU per clip is an upper bound.
Run: .venv/bin/python bench/bench_ble_link.py
"""
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from blesim.clip import SimClip  # noqa: E402
from blesim.radio import Radio  # noqa: E402
from strideclip.link.ble import scan  # noqa: E402
from strideclip.session.live import run_live  # noqa: E402
from strideclip.sim import simulate, steady_run  # noqa: E402


async def measure(n_clips: int, minutes: float, speed: float, out: Path) -> dict:
    runs = [simulate(steady_run(minutes, seed=70 + i)) for i in range(n_clips)]
    radio = Radio()
    await radio.start()
    clips = []
    for i, run in enumerate(runs):
        clip = SimClip(radio, i + 1, f"clip-{i + 1}", run.counts, run.hello, speed=speed)
        await clip.start()
        clips.append(clip)
    adverts = await scan(0.5, backend=radio.scanner_backend)
    stop = asyncio.Event()
    wall = {}
    following: list = []

    async def stream():
        while any(not c.host_listening for c in clips):
            await asyncio.sleep(0.02)
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(c.stream() for c in clips))
        total = {c.name: len(c.counts) for c in clips}
        while not (following and all(lc.session.decoder.next_idx == total[lc.name] for lc in following)):
            await asyncio.sleep(0.05)  # until the host has every sample
        wall["s"], wall["cpu_s"] = time.monotonic() - t0, time.process_time() - cpu0
        stop.set()

    task = asyncio.ensure_future(stream())
    live = await run_live(adverts, out, backend=radio.client_backend, stop=stop,
                          on_update=lambda now: following[:] or following.extend(now))
    await task
    by_name = {c.name: c for c in clips}
    lat_ms, samples, lost = [], 0, 0
    for lc in live:
        clip = by_name[lc.name]
        for seq, _rx, done, _n in lc.step_times:
            if seq in clip.notified:
                lat_ms.append((done - clip.notified[seq]) * 1000)
        s = lc.session.summary()
        samples += s["samples"]
        lost += s["lost_packets"] + len(s["gaps"])
    notifs = sum(c.sent_packets for c in clips)
    data_s = minutes * 60
    return {"clips": n_clips, "speed": speed, "wall_s": wall["s"], "notifs_per_s": notifs / wall["s"],
            "bytes_per_s": notifs * (8 + 12 * 19) / wall["s"], "lat_p50": float(np.percentile(lat_ms, 50)),
            "lat_p95": float(np.percentile(lat_ms, 95)), "samples": samples, "lost": lost,
            "cpu_pct_per_clip_realtime": 100 * wall["cpu_s"] / (n_clips * data_s)}


def main() -> None:
    logging.getLogger("bumble").setLevel(logging.ERROR)  # links torn down at the end are not news
    with tempfile.TemporaryDirectory() as tmp:
        for n, minutes, speed in ((1, 5, 1.0), (1, 5, 40.0), (8, 2, 1.0), (8, 2, 10.0)):
            if speed == 1.0:
                minutes = 0.5  # real time: the latency a coach sees, without a backlog
            r = asyncio.run(measure(n, minutes, speed, Path(tmp) / f"{n}-{speed}"))
            print(f"{n} clip(s) at {speed:g}x real time: {r['notifs_per_s']:.0f} notifications/s "
                  f"({r['notifs_per_s'] / n:.0f} per clip), {r['bytes_per_s'] / 1000:.1f} kB/s "
                  f"({r['bytes_per_s'] / n / 1000:.1f} per clip); notify -> step event p50 {r['lat_p50']:.1f} ms, "
                  f"p95 {r['lat_p95']:.1f} ms; {r['samples']} samples, {r['lost']} lost; "
                  f"host CPU {r['cpu_pct_per_clip_realtime']:.2f} % of a core per real-time clip")


if __name__ == "__main__":
    main()
