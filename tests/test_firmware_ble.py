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


def flash_logs(board: R.Board, skip=()) -> dict:
    """The session logs on the clip's flash, read by the host's reader, by name."""
    out = {}
    folder = board.dir / "logs"
    folder.mkdir(exist_ok=True)
    for name, data in board.pull("/logs").items():
        if name in skip:
            continue
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


def test_twenty_power_cuts_lose_only_the_last_seconds_and_the_next_boot_is_a_new_session(firmware, tmp_path):
    """Cuts at random times of a standalone run, and in the middle of random flash programs and
    erases (only part of the bytes land: rig/board/rigflash.py): the filesystem mounts every time
    (littlefs), each run's log holds every sample older than 5 s before its cut (the log is
    flushed every 2 s), and the next boot is a new session that overwrites nothing."""
    rng = random.Random(20)
    run = simulate(steady_run(0.6, seed=20))
    board = R.Board(tmp_path / "clip", firmware, BLE)
    cuts = []  # (how the cut was chosen, the boot's report)
    logs_before = {}

    async def cut_twenty():
        air = Air()
        await air.start()
        clip = R.BleClip(air, board)
        try:
            for k in range(20):
                opts = {"cut_ms": rng.randint(5_000, 30_000)} if k % 2 else {"cut_op": rng.randint(150, 900)}
                if k in (4, 13):
                    opts = {"cut_op": rng.randint(1, 40)}  # during the boot itself
                await clip.boot(run.counts, clock="sim", seed=k + 1, end_ms=40_000, **opts)
                boot = await clip.finish()
                assert boot.how == "power_cut", boot.stderr
                assert "mount_failed" not in boot.report, boot.report  # the flash mounted after the last cut
                now = board.ls("/logs")
                new = sorted(set(now) - set(logs_before))
                logs_before.update(now)
                cuts.append((opts, boot.report, new))
        finally:
            await air.close()

    asyncio.run(cut_twenty())
    logs = flash_logs(board)
    assert len(cuts) == 20
    sessions = []
    for opts, report, new in cuts:
        cut_ms = report["cut"]["t_ms"]
        if not new:  # cut before the log was made (during the boot): nothing was owed
            assert cut_ms < 5000, (opts, report["cut"])
            continue
        (name,) = new
        log = logs[name]
        sessions.append(int(name.split("-")[-1].split(".")[0]))  # clip-<id>-<session>.sclog
        assert log.hello is None or log.hello.session_id == sessions[-1]
        assert not log.gaps and np.array_equal(log.counts, run.counts[:len(log.counts)])
        owed = max(0, (cut_ms - 5000) * 208 // 1000)
        assert len(log.counts) >= owed, (name, report["cut"], len(log.counts), owed)
    assert sessions == sorted(set(sessions)) and len(sessions) >= 17  # each boot a new session, nothing reused


def test_a_full_flash_stops_the_log_with_a_status_and_nothing_else(firmware, tmp_path):
    """Old runs fill the flash: this run's log stops early and ends with a STATUS flash_full; the
    clip samples, coaches and keeps its backfill store (room is kept for it) to the end."""
    from dataclasses import replace

    sc = steady_run(6, seed=22, fatigue_onset_min=2)
    run = simulate(replace(sc, fatigue=replace(sc.fatigue, rotation_pct_per_min=10.0, cadence_pct_per_min=-1.5)))
    board = R.Board(tmp_path / "clip", firmware, BLE)
    old = bytes(1_500_000)  # an earlier run nobody synced
    board.put({"logs/clip-c451a002-00099.sclog": old})
    boot = asyncio.run(standalone(board, run.counts, end_ms=len(run.counts) * 1000 // 208 + 600, end="interrupt"))
    assert boot.report.get("interrupted") and "crashed" not in boot.report, boot.stderr
    (log,) = flash_logs(board, skip=("clip-c451a002-00099.sclog",)).values()
    full = statuses(events_of(log), P.STATUS_FLASH_FULL)
    assert len(full) == 1 and log.events[-1][1] == full[0]  # its last record says why it ends
    assert 0 < len(log.counts) < len(run.counts) // 4 and np.array_equal(log.counts, run.counts[:len(log.counts)])
    assert not statuses(events_of(log), P.STATUS_ERROR)  # the backfill store had its room
    assert boot.report["imu"]["samples_made"] == len(run.counts) == boot.report["imu"]["words_read"] // 2
    host = StepDetector(sampling_rate_hz=208).detect(run.counts).events_
    from strideclip.cues_eval import cues_of

    (t_cue, _reason), *_ = cues_of(host, 208)  # the host's first cue for this run ...
    beats = [a for a, _b in boot.motor_on_ms() if a > t_cue * 1000 - 200]  # ... was played, after the log stopped
    assert t_cue * 208 > len(log.counts) and len(beats) >= 20


def test_a_flash_with_no_room_at_all_loses_the_backfill_store_but_not_the_stream(firmware, tmp_path):
    run = simulate(steady_run(1, seed=23))
    board = R.Board(tmp_path / "clip", firmware, {"link": "usb"})
    free = 4096 * int(board.listing().split("statvfs (")[1].split(",")[4])  # blocks free
    board.put({"filler.bin": bytes(free - 3 * 4096)})
    boot = board.boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 600)
    assert boot.how == "power_off" and "crashed" not in boot.report, boot.stderr
    d = P.Deframer()
    d.feed(boot.serial)
    dec = StreamDecoder()
    got, events = 0, []
    while (pkt := d.next_packet(eof=True)) is not None:
        for out in dec.feed(pkt, 0):
            if isinstance(out, SampleBlock):
                got += len(out.counts)
            elif isinstance(out, Gap):
                raise AssertionError(out)
            else:
                events.append(out.msg)
    assert [e.value for e in statuses(events, P.STATUS_ERROR)] == [P.ERROR_FLASH]  # said once
    assert got >= len(run.counts) - 18  # every sample still streamed


# -- with a host: the real clock ---------------------------------------------------------------

async def follow(air: Air, names, out_dir, *, until, timeout_s: float, during=None):
    """The host's own live code (scan, run_live) following the clips until ``until(live)``."""
    from strideclip.live import run_live
    from strideclip.transports.ble import scan

    adverts = [a for a in await scan(1.0, backend=air.scanner_backend) if a.name in names]
    stop = asyncio.Event()
    live: list = []

    async def watch():
        t0 = asyncio.get_running_loop().time()
        while not (live and until(live)) and asyncio.get_running_loop().time() - t0 < timeout_s:
            await asyncio.sleep(0.2)
        stop.set()

    tasks = [asyncio.ensure_future(watch())] + ([asyncio.ensure_future(during())] if during else [])
    try:
        result = await run_live(adverts, out_dir, backend=air.client_backend, stop=stop,
                                on_update=lambda now: live[:] or live.extend(now))
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
    return adverts, result


def notifications_per_s(log) -> float:
    """The most sample notifications (live and backfill) the host received in any one second."""
    t = np.array([t_ms for t_ms, m in log.packets if isinstance(m, P.Samples)]) if hasattr(log, "packets") else []
    return float(np.max(np.bincount((np.asarray(t) // 1000).astype(int)))) if len(t) else 0.0


def test_ble_bond_stream_and_two_15_s_drops_backfilled_completely_under_the_stacks_buffers(firmware, tmp_path):
    """The host's bleak code against the firmware over NimBLE: scan (name and charge in the scan
    response), connect with MTU 247, Just Works bonding, stream; the runner leaves the laptop's
    range twice for 15 s (supervision timeout, then nothing). The host reconnects and asks for
    each gap; the clip answers a few packets a pass (the clip's controller sends 4 packets per
    30 ms connection event from 12 buffers, so an unpaced burst would meet ENOMEM)."""
    run = simulate(steady_run(100 / 60, seed=30))
    board = R.Board(tmp_path / "clip", firmware, BLE)
    end_ms = len(run.counts) * 1000 // 208

    async def main():
        air = Air()
        await air.start()
        clip = R.BleClip(air, board)
        await clip.boot(run.counts, end_ms=end_ms + 15_000)  # on for 15 s after the run: the last backfill
        await asyncio.sleep(1.0)

        async def drops():
            for at in (25, 60):
                while asyncio.get_running_loop().time() - t0 < at:
                    await asyncio.sleep(0.1)
                await air.link.lose(air.laptop, clip.controller, out_of_range_s=15)

        def done(live):
            d = live[0].session.decoder
            return d.next_idx is not None and d.next_idx >= len(run.counts) - 19 and not d.open_gaps

        t0 = asyncio.get_running_loop().time()
        adverts, live = await follow(air, ["Ana"], tmp_path / "host", until=done, timeout_s=end_ms / 1000 + 30,
                                     during=drops)
        boot = await clip.finish()
        await air.close()
        return adverts, live, boot

    adverts, live, boot = asyncio.run(main())
    assert [(a.name, a.battery_pct) for a in adverts] == [("Ana", 50)]
    assert "crashed" not in boot.report and boot.how == "power_off", boot.stderr
    log = load_log(live[0].log_path)
    host_events = [e for _t, e in log.host_events]
    connected = [e for e in host_events if e["event"] == "link" and e["state"] == "connected"]
    assert len(connected) == 3 and all(e["mtu"] == 247 for e in connected)
    # Every sample from the host's first one on, in place, bit for bit; the two gaps filled.
    first = int(log.sample_idx[0])
    assert first < 3 * 208 and not log.gaps
    assert np.array_equal(log.sample_idx, np.arange(first, first + len(log.sample_idx)))
    assert np.array_equal(log.counts, run.counts[first:first + len(log.counts)])
    assert len(log.counts) >= len(run.counts) - first - 18
    gaps = [(e["start_idx"], e["end_idx"]) for e in host_events if e["event"] == "gap"]
    filled = [(e["start_idx"], e["end_idx"]) for e in host_events if e["event"] == "gap_filled"]
    assert len(gaps) == 2 and all(15 * 208 < b - a < 19 * 208 for a, b in gaps)
    assert sum(b - a for a, b in filled) == sum(b - a for a, b in gaps)
    # The clip said each backfill was done, and the host heard it.
    done = statuses(events_of(log), P.STATUS_BACKFILL_DONE)
    assert len(done) == 2 and all(d.value >= b - a for d, (a, b) in zip(done, gaps))
    # and no error on the clip: no MemoryError, no handler lost, no flash trouble
    assert not statuses(events_of(log), P.STATUS_ERROR)
