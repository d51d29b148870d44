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
from strideclip.analysis.steps import StepDetector
from strideclip.sim import simulate, steady_run
from strideclip.stream.decode import Gap, SampleBlock, StreamDecoder
from strideclip.stream.sclog import load_log

BLE = {"clip_name": "Ana"}


def events_of(log):
    return [m for _t, m in log.events]


def statuses(events, code):
    return [e for e in events if isinstance(e, P.Status) and e.code == code]


async def on_air(board: R.Board, counts, air: Air | None = None, **opts) -> tuple[Air, R.BleClip]:
    """The laptop's radio (a new one unless given) and the clip booted on it."""
    air = air or Air()
    await air.start()
    clip = R.BleClip(air, board)
    await clip.boot(counts, **opts)
    return air, clip


async def standalone(board: R.Board, counts, **opts) -> R.Boot:
    """One boot with no host in range: NimBLE advertises, the run goes to flash."""
    air, clip = await on_air(board, counts, clock="sim", **opts)
    try:
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
    boot = R.run_async(standalone(board, run.counts, end_ms=len(run.counts) * 1000 // 208 + 600, end="interrupt"))
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
    from strideclip.evaluation.cues_eval import cues_of

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


@pytest.mark.parametrize("chip", ["lsm6dsox", "lsm6ds3trc"])
def test_416_hz_standalone_ten_minutes_without_an_overrun_with_i2c_and_flash_costs(firmware, tmp_path, chip):
    """The heaviest load: 416 Hz, no host, so every packet goes to the flash log besides the
    backfill store (two files appended, littlefs allocating, erases stalling the CPU 45 ms each),
    and the FIFO read over I2C at 0.4 ms + 9 bit times a byte. Ten minutes (more than the flash
    holds: the log stops at full, the store goes on): no overrun, every sample in the log."""
    run = simulate(steady_run(10, seed=21, rate_hz=416))
    board = R.Board(tmp_path / "clip", firmware, dict(BLE, sample_rate_hz=416, imu=chip))
    boot = R.run_async(standalone(board, run.counts, imu=chip, i2c_overhead_us=400,
                                  end_ms=len(run.counts) * 1000 // 416 + 600, end="interrupt"))
    assert boot.report.get("interrupted") and "crashed" not in boot.report, boot.stderr
    assert boot.report["imu"]["overruns"] == 0, boot.report["imu"]
    (log,) = flash_logs(board).values()
    assert not log.gaps and np.array_equal(log.counts, run.counts[:len(log.counts)])
    assert statuses(events_of(log), P.STATUS_FLASH_FULL) and not statuses(events_of(log), P.STATUS_ERROR)
    t = boot.report["t_ms"]
    print(f"{chip} 416 Hz standalone: I2C {100 * boot.report['i2c_busy_ms'] / t:.1f} %, "
          f"flash {100 * boot.report['flash']['busy_ms'] / t:.1f} % of the time, {boot.report['flash']['erases']} erases")


def test_a_config_file_that_is_refused_leaves_the_clip_on_its_defaults_and_says_so(firmware, tmp_path):
    run = simulate(steady_run(0.5, seed=18))
    board = R.Board(tmp_path / "clip", firmware, {"sample_rate_hz": 200})
    boot = R.run_async(standalone(board, run.counts, end_ms=10_000, end="interrupt"))
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

    R.run_async(cut_twenty())
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
    boot = R.run_async(standalone(board, run.counts, end_ms=len(run.counts) * 1000 // 208 + 600, end="interrupt"))
    assert boot.report.get("interrupted") and "crashed" not in boot.report, boot.stderr
    (log,) = flash_logs(board, skip=("clip-c451a002-00099.sclog",)).values()
    full = statuses(events_of(log), P.STATUS_FLASH_FULL)
    assert len(full) == 1 and log.events[-1][1] == full[0]  # its last record says why it ends
    assert 0 < len(log.counts) < len(run.counts) // 4 and np.array_equal(log.counts, run.counts[:len(log.counts)])
    assert not statuses(events_of(log), P.STATUS_ERROR)  # the backfill store had its room
    assert boot.report["imu"]["samples_made"] == len(run.counts) == boot.report["imu"]["words_read"] // 2
    host = StepDetector(sampling_rate_hz=208).detect(run.counts).events_
    from strideclip.evaluation.cues_eval import cues_of

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
    from strideclip.link.ble import scan
    from strideclip.session.live import run_live

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


def most_sample_notifications_in_a_second(log) -> int:
    """Live and backfill packets the host received in its busiest second."""
    pk = log.packets
    t_ms = pk["t_ms"][(pk["ptype"] == P.T_SAMPLES) | (pk["ptype"] == P.T_BACKFILL)]
    return int(np.bincount((t_ms // 1000).astype(int)).max())


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

    adverts, live, boot = R.run_async(main())
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
    assert most_sample_notifications_in_a_second(log) <= 40  # backfill beside the live stream, paced


async def connect_raw(air: Air, *, pair: bool):
    """A bleak client on the laptop, not the host's transport: to write what a host would not."""
    from bleak import BleakClient

    client = BleakClient(R.BT_ADDRESS + "/P", backend=air.client_backend, timeout=10, pair=pair)
    await client.connect()
    results = []  # what the clip sent on its control and events characteristics, decoded
    await client.start_notify(P.BLE_CONTROL_UUID, lambda _c, data: results.append(P.decode(bytes(data))))
    await client.start_notify(P.BLE_EVENTS_UUID, lambda _c, data: results.append(P.decode(bytes(data))))
    return client, results


async def write_command(client, results, cmd_id, opcode, *args, timeout_s=3.0):
    buf = bytearray(32)
    await client.write_gatt_char(P.BLE_CONTROL_UUID, bytes(buf[:P.pack_command(buf, cmd_id, opcode, args)]), response=True)
    t = 0.0
    mine = [r for r in results if isinstance(r, P.Result) and r.cmd_id == cmd_id]
    while not mine and t < timeout_s:
        await asyncio.sleep(0.05)
        t += 0.05
        mine = [r for r in results if isinstance(r, P.Result) and r.cmd_id == cmd_id]
    return mine[0] if mine else None


def test_ble_gatt_table_advertising_and_a_write_before_bonding_refused(firmware, tmp_path):
    board = R.Board(tmp_path / "clip", firmware, BLE)
    run = simulate(steady_run(0.5, seed=31))

    async def main():
        air, clip = await on_air(board, run.counts, air=Air(requested_mtu=None), end_ms=15_000)
        await asyncio.sleep(1.0)
        client, results = await connect_raw(air, pair=False)  # a central that never asks for a larger MTU
        await asyncio.sleep(0.5)
        mtu = client.mtu_size  # ... gets one: the clip asks
        info = {uuid: bytes(await client.read_gatt_char(uuid)).decode() for uuid in
                ("00002a29-0000-1000-8000-00805f9b34fb", "00002a24-0000-1000-8000-00805f9b34fb",
                 "00002a25-0000-1000-8000-00805f9b34fb", "00002a26-0000-1000-8000-00805f9b34fb")}
        hello = P.decode(bytes(await client.read_gatt_char(P.BLE_EVENTS_UUID)))
        refused = await write_command(client, results, 1, P.OP_HELLO)
        await client.pair()
        accepted = await write_command(client, results, 2, P.OP_SET_CONFIG, 1, 170)
        table = sorted((s.uuid, sorted(c.uuid for c in s.characteristics)) for s in client.services)
        await client.disconnect()
        adv = clip.controller.le_legacy_advertiser
        payloads = bytes(adv.advertising_data), bytes(adv.scan_response_data)
        boot = await clip.finish()
        await air.close()
        return info, hello, refused, accepted, table, payloads, boot, mtu

    info, hello, refused, accepted, table, (adv, resp), boot, mtu = R.run_async(main())
    assert "crashed" not in boot.report, boot.stderr
    assert mtu == 247
    assert list(info.values()) == ["StrideClip", "StrideClip clip", "%08x" % R.CLIP_ID, "0.3.0"]
    assert isinstance(hello, P.Hello) and hello.clip_id == R.CLIP_ID  # the low 32 bits of its address
    assert refused.code == P.RESULT_NOT_AUTHENTICATED and accepted.code == P.RESULT_OK
    uuid = bytes(reversed(bytes.fromhex(P.BLE_SERVICE_UUID.replace("-", ""))))
    assert adv == bytes([2, 0x01, 0x06, 17, 0x07]) + uuid  # hosts filter on the UUID
    assert resp == bytes([4, 0x09]) + b"Ana" + bytes([4, 0x16, 0x0F, 0x18, 50])  # name and charge
    services = dict(table)
    assert services[P.BLE_SERVICE_UUID] == sorted([P.BLE_SAMPLES_UUID, P.BLE_EVENTS_UUID, P.BLE_CONTROL_UUID])
    assert "0000180a-0000-1000-8000-00805f9b34fb" in services and "0000180f-0000-1000-8000-00805f9b34fb" in services


def test_ble_the_bond_holds_across_a_reboot_for_a_laptop_with_a_private_address(firmware, tmp_path):
    """A phone or Mac connects from a resolvable private address, a new one each time. The bond
    made before a power cut is honoured after the reboot: the link is encrypted with the stored
    keys (no pairing again) and commands are taken. (With the IRQ handler registered after
    active(True), NimBLE never loads the IRK and the laptop is a stranger: PIN or key missing.)"""
    board = R.Board(tmp_path / "clip", firmware, BLE)
    run = simulate(steady_run(1, seed=32))

    async def main():
        air = Air()
        await air.start()
        pairings = []
        pair = air.central.pair

        async def counted(connection):
            pairings.append(connection)
            return await pair(connection)

        air.central.pair = counted
        clip = R.BleClip(air, board)
        await clip.boot(run.counts, end_ms=60_000)
        await asyncio.sleep(1.0)
        client, results = await connect_raw(air, pair=True)
        first = await write_command(client, results, 1, P.OP_SET_CONFIG, 1, 170)
        address_before = str(air.central.random_address)
        await asyncio.sleep(0.5)  # (the loop saves the keys within a pass)
        cut = await clip.power_cut()
        await air.link.lose(air.laptop, clip.controller)  # the laptop notices the clip is gone
        await air.new_rpa()
        await clip.boot(run.counts, end_ms=8_000, reset_cause=R.PWRON_RESET)
        await asyncio.sleep(1.0)
        client, results = await connect_raw(air, pair=True)
        second = await write_command(client, results, 2, P.OP_SET_CONFIG, 1, 172)
        await client.disconnect()
        boot = await clip.finish()
        await air.close()
        return first, second, pairings, address_before, str(air.central.random_address), cut, boot

    first, second, pairings, before, after, cut, boot = R.run_async(main())
    assert cut.returncode == -9 and "crashed" not in boot.report, boot.stderr
    assert before != after  # a new private address after the reboot
    assert first.code == P.RESULT_OK and second.code == P.RESULT_OK
    assert len(pairings) == 1  # paired once; the second link was encrypted with the bond's keys


def test_ble_on_mtu_23_events_commands_and_the_hello_work_and_samples_go_to_flash(firmware, tmp_path):
    """A central that never raises the MTU (and answers the clip's own request with 23): a
    SAMPLES packet cannot fit. The clip says so once (STATUS small_mtu), its steps, results and
    HELLO (read from the events characteristic) reach the host, and the samples go to flash."""
    board = R.Board(tmp_path / "clip", firmware, BLE)
    run = simulate(steady_run(0.5, seed=33))

    async def main():
        air, clip = await on_air(board, run.counts, air=Air(max_mtu=23, requested_mtu=None), end_ms=25_000, end="interrupt")
        await asyncio.sleep(1.0)
        _adverts, live = await follow(air, ["Ana"], tmp_path / "host", until=lambda live: False, timeout_s=15)
        boot = await clip.finish()
        await air.close()
        return live, boot

    live, boot = R.run_async(main())
    assert boot.report.get("interrupted") and "crashed" not in boot.report, boot.stderr
    log = load_log(live[0].log_path)
    events = events_of(log)
    assert log.hello is not None and log.hello.clip_id == R.CLIP_ID  # read, not notified
    assert [s.value for s in statuses(events, P.STATUS_SMALL_MTU)] == [23]
    assert len([e for e in events if isinstance(e, P.Step)]) > 10 and len(log.counts) == 0
    results = [e for e in events if isinstance(e, P.Result)]
    assert results and all(r.code == P.RESULT_OK for r in results)  # the host's HELLO requests, answered
    (flash,) = flash_logs(board).values()  # every sample is on the clip's flash for a later sync
    assert flash.report.clean and not flash.gaps and len(flash.counts) >= 24 * 208
    assert np.array_equal(flash.counts, run.counts[:len(flash.counts)])


def test_ble_a_memory_error_in_the_event_handler_is_survived_and_said(firmware, tmp_path):
    """The heap is exhausted for 2 s (a leak elsewhere) while the host writes a command: the event
    handler's copy of the write fails with MemoryError (rig/board/bluetooth.py). MicroPython would drop a handler that
    raises, for good (no more writes, no more connections until a reboot); the clip's catches
    it, the write is lost (the host asks again), the STATUS says so and later writes are answered."""
    board = R.Board(tmp_path / "clip", firmware, BLE)
    run = simulate(steady_run(0.5, seed=34))

    async def main():
        loop = asyncio.get_running_loop()
        t_boot = loop.time()
        air, clip = await on_air(board, run.counts, end_ms=25_000, faults=[[9_000, "ble_alloc", 2_000]])
        await asyncio.sleep(1.0)
        client, results = await connect_raw(air, pair=True)
        before = await write_command(client, results, 1, P.OP_SET_CONFIG, 1, 170)
        while loop.time() - t_boot < 9.6:  # inside the 2 s the heap is taken
            await asyncio.sleep(0.05)
        during = await write_command(client, results, 2, P.OP_SET_CONFIG, 1, 171, timeout_s=1.0)
        await asyncio.sleep(2.5)
        after = await write_command(client, results, 3, P.OP_SET_CONFIG, 1, 172)
        await client.disconnect()
        boot = await clip.finish()
        await air.close()
        return before, during, after, results, boot

    before, during, after, results, boot = R.run_async(main())
    assert "crashed" not in boot.report, boot.stderr
    assert boot.report["faults"][0][1] == "ble_alloc" and boot.report["ble_alloc_failures"] >= 1
    assert before.code == P.RESULT_OK and during is None and after.code == P.RESULT_OK
    assert P.ERROR_BLE_EVENT in [r.value for r in statuses(results, P.STATUS_ERROR)]


def test_ble_metronome_beats_keep_time_at_416_hz_while_streaming_and_logging_to_flash(firmware, tmp_path):
    """The host starts a 30 s metronome; the clip samples at 416 Hz, streams over BLE, and for
    10 s of it is out of range (logging to flash, erases stalling the CPU). The beats are played
    by the RMT: each is 60/170 s after the last, whatever the loop does."""
    board = R.Board(tmp_path / "clip", firmware, dict(BLE, sample_rate_hz=416))
    run = simulate(steady_run(1, seed=35, rate_hz=416))

    async def main():
        air, clip = await on_air(board, run.counts, end_ms=50_000, end="interrupt")
        await asyncio.sleep(1.0)
        client, results = await connect_raw(air, pair=True)
        samples = []
        await client.start_notify(P.BLE_SAMPLES_UUID, lambda _c, data: samples.append(len(data)))
        started = await write_command(client, results, 1, P.OP_METRONOME_START, 170, 30)
        await asyncio.sleep(8)
        await air.link.lose(air.laptop, clip.controller, out_of_range_s=10)
        boot = await clip.finish()
        await air.close()
        return started, results, samples, boot

    started, results, samples, boot = R.run_async(main())
    assert boot.report.get("interrupted") and "crashed" not in boot.report, boot.stderr
    assert started.code == P.RESULT_OK and len(samples) > 8 * 416 // 19  # it streamed
    assert boot.report["flash"]["erases"] > 0  # (FIFO overruns: see the 416 Hz standalone test)
    (cue,) = [r for r in results if isinstance(r, P.Cue)]
    assert (cue.kind, cue.source, cue.tempo_spm, cue.duration_s) == (P.CUE_METRONOME_START, P.SOURCE_HOST, 170, 30)
    (log,) = flash_logs(board).values()
    assert len(log.counts) >= 9 * 416  # the 10 s out of range went to flash
    beats = [a for a, _b in boot.motor_on_ms()]
    assert len(beats) == 30 * 170 // 60
    error_ms = np.abs(np.diff(beats) - 60_000 / 170)
    assert np.percentile(error_ms, 99) <= 5 and error_ms.max() < 0.05  # hardware: microseconds
