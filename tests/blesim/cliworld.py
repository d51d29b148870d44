"""A virtual radio with simulated clips for tests of the command line (``--ble-backend
blesim.cliworld:world``). The clips stream once the host listens; ``BLESIM_CLIPS`` (count),
``BLESIM_MINUTES`` and ``BLESIM_SPEED`` shape them; with ``BLESIM_LOG_DIR`` they hold the
session logs there on their "flash"."""
from __future__ import annotations

import asyncio
import os

from blesim.clip import SimClip
from blesim.radio import Radio
from strideclip.sim import simulate, steady_run


async def world() -> Radio:
    radio = Radio()
    await radio.start()
    minutes = float(os.environ.get("BLESIM_MINUTES", "0.5"))
    speed = float(os.environ.get("BLESIM_SPEED", "10"))
    for i in range(int(os.environ.get("BLESIM_CLIPS", "1"))):
        run = simulate(steady_run(minutes, seed=60 + i))
        clip = SimClip(radio, i + 1, f"clip-{i + 1}", run.counts, run.hello, speed=speed,
                       log_dir=os.environ.get("BLESIM_LOG_DIR"))
        await clip.start()
        asyncio.get_running_loop().create_task(_stream_when_heard(clip))
    return radio


async def _stream_when_heard(clip: SimClip) -> None:
    while not clip.host_listening:
        await asyncio.sleep(0.05)
    await clip.stream()
