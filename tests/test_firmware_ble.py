"""The clip's firmware on the rig with its Bluetooth side real (tests/rig/README.md): MicroPython's
own `bluetooth` module (NimBLE) on a bumble controller over a pseudo-terminal, littlefs on the
emulated NOR flash, the host's ordinary bleak code over bumble (tests/rig/air.py).

Runs with no host (the outdoor runner: standalone coaching, the flash log, power cuts, a full
flash) use the simulated clock, NimBLE only advertising; runs with a host use the real clock.
"""
import asyncio
import random

import numpy as np
import pytest

import rig as R
from clipcore import protocol as P
from rig.air import Air
from strideclip.decode import Gap, SampleBlock, StreamDecoder
from strideclip.sclog import load_log
from strideclip.sim import simulate, steady_run
from strideclip.steps import StepDetector

BLE = {"clip_name": "Ana"}


def events_of(log):
    return [m for _t, m in log.events]


def statuses(events, code):
    return [e for e in events if isinstance(e, P.Status) and e.code == code]


async def standalone(board: R.Board, counts, **opts) -> R.Boot:
    """One boot with no host in range: NimBLE advertises, the run goes to flash."""
    air = Air()
    await air.start()
    clip = R.BleClip(air, board)
    try:
        await clip.boot(counts, clock="sim", **opts)
        return await clip.finish()
    finally:
        await air.close()


def flash_logs(board: R.Board) -> dict:
    """The session logs on the clip's flash, read by the host's reader, by name."""
    out = {}
    folder = board.dir / "logs"
    folder.mkdir(exist_ok=True)
    for name, data in board.pull("/logs").items():
        (folder / name).write_bytes(data)
        out[name] = load_log(folder / name)
    return out


def test_standalone_nine_minutes_coach_alone_and_log_every_sample(firmware, tmp_path):
    """Nine minutes: about what the 2 MB flash holds at 208 Hz beside the backfill store."""
    sc = steady_run(9, seed=4, fatigue_onset_min=4)  # form breaks down fast: a cue within the 9 minutes
    from dataclasses import replace

    run = simulate(replace(sc, fatigue=replace(sc.fatigue, rotation_pct_per_min=10.0, cadence_pct_per_min=-1.5)))
    board = R.Board(tmp_path / "clip", firmware, BLE)
    boot = asyncio.run(standalone(board, run.counts, end_ms=len(run.counts) * 1000 // 208 + 600, end="interrupt"))
    assert boot.report.get("interrupted") and "crashed" not in boot.report, boot.stderr
    (log,) = flash_logs(board).values()
    assert log.report.clean and log.header["source"] == "clip" and log.hello.clip_id == R.CLIP_ID
    assert np.array_equal(log.counts, run.counts) and not log.gaps  # every sample, in order
    events = events_of(log)
    # The clip's steps are the host's: the same clipcore detector, on a 32-bit interpreter.
    host = StepDetector(sampling_rate_hz=208, accel_ug_per_lsb=log.hello.accel_ug_per_lsb).detect(run.counts).events_
    clip_steps = [e.sample_idx for e in events if isinstance(e, P.Step)]
    assert clip_steps == [int(i) for i in host["ic_idx"]] and len(clip_steps) > 1300
    # No host was connected: the clip's own cue policy asked for the metronome, as the host's does.
    from strideclip.cues_eval import cues_of

    cues = [e for e in events if isinstance(e, P.Cue)]
    assert cues and all(c.source == P.SOURCE_CLIP and c.kind == P.CUE_METRONOME_START for c in cues)
    assert cues[0].sample_idx / 208 > 4 * 60  # not before fatigue set in
    assert [(c.sample_idx / 208, P.REASON_NAMES[c.reason]) for c in cues] == cues_of(host, 208)
    # ... and the RMT played each: its number of beats, each 60/tempo s after the last.
    on = boot.motor_on_ms()
    for c in cues:
        t0 = c.sample_idx * 1000 / 208
        beats = [a for a, _b in on if t0 - 500 < a < t0 + c.duration_s * 1000 + 1000]
        assert len(beats) == c.duration_s * c.tempo_spm // 60
        assert np.all(np.abs(np.diff(beats) - 60_000 / c.tempo_spm) < 0.05)


def test_a_config_file_that_is_refused_leaves_the_clip_on_its_defaults_and_says_so(firmware, tmp_path):
    run = simulate(steady_run(0.5, seed=18))
    board = R.Board(tmp_path / "clip", firmware, {"sample_rate_hz": 200})
    boot = asyncio.run(standalone(board, run.counts, end_ms=10_000, end="interrupt"))
    assert boot.report.get("interrupted"), boot.stderr
    (log,) = flash_logs(board).values()
    assert statuses(events_of(log), P.STATUS_CONFIG_ERROR) and log.hello.rate_hz == 208
    why = board.pull("/config_error.txt")["config_error.txt"].decode()
    assert why.startswith("config sample_rate_hz:") and "104, 208, 416" in why
