"""The host's BLE link over a real Bluetooth stack (bumble) through its ordinary bleak code.

Simulated clips (tests/blesim/clip.py) serve the clip's GATT table on virtual controllers and
stream simulated runs faster than real time; the host scans, connects, pairs, records, asks for
backfill after lost links, and sends commands, exactly as it would over BlueZ.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from blesim.clip import SimClip
from blesim.radio import Radio
from clipcore import protocol as P
from strideclip.errors import CommandError, CommandTimeout, TransportError
from strideclip.link.ble import BleTransport, scan
from strideclip.session.live import run_live
from strideclip.sim import simulate, steady_run
from strideclip.stream.sclog import load_log


def sim_run(minutes: float, seed: int):
    return simulate(steady_run(minutes, seed=seed))


async def start_clips(radio: Radio, runs, *, speed: float, **kw) -> list[SimClip]:
    await radio.start()
    clips = []
    for i, run in enumerate(runs):
        clip = SimClip(radio, i + 1, f"clip-{i + 1}", run.counts, run.hello, speed=speed, **kw)
        await clip.start()
        clips.append(clip)
    return clips


async def record(radio: Radio, clips: list[SimClip], out_dir, *, during=None, timeout_s: float = 180.0):
    """Scan, then record every clip until the host holds each one's whole run (or the clip
    failed); ``during(clips)`` runs alongside (to drop links, send commands)."""
    adverts = await scan(0.5, backend=radio.scanner_backend)
    stop = asyncio.Event()
    live: list = []

    def complete(lc) -> bool:
        clip = next(c for c in clips if c.name == lc.name)
        d = lc.session.decoder
        return lc.failed.is_set() or (d.next_idx == len(clip.counts) and not d.open_gaps)

    async def stop_when_done():
        await asyncio.gather(*(c.done.wait() for c in clips))
        while not (live and all(complete(lc) for lc in live)):  # the host may lag behind on a busy machine
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        stop.set()

    async def run_clips():
        while any(not c.host_listening for c in clips):  # every clip's samples subscribed before they start
            await asyncio.sleep(0.05)
        await asyncio.gather(*(c.stream() for c in clips), stop_when_done(), during(clips) if during else asyncio.sleep(0))

    async def go():
        try:
            await asyncio.wait_for(run_clips(), timeout_s)
        finally:
            stop.set()  # done, or failed: the host stops either way (a test must not hang)

    task = asyncio.ensure_future(go())
    try:
        result = await run_live(adverts, out_dir, backend=radio.client_backend, stop=stop,
                                on_update=lambda clips_now: live[:] or live.extend(clips_now))
    finally:
        stop.set()
    await task
    return adverts, result


def test_scan_lists_clips_with_name_rssi_and_battery():
    async def main():
        radio = Radio()
        await start_clips(radio, [sim_run(0.1, 1), sim_run(0.1, 2)], speed=1, battery_pct=64)
        return await scan(0.5, backend=radio.scanner_backend)

    adverts = asyncio.run(main())
    assert sorted(a.name for a in adverts) == ["clip-1", "clip-2"]
    assert all(a.battery_pct == 64 and a.rssi_dbm is not None and a.rssi_dbm < 0 for a in adverts)


def test_ten_minutes_at_208_hz_arrive_complete_and_in_order(tmp_path):
    run = sim_run(10, 11)
    async def main():
        radio = Radio()
        clips = await start_clips(radio, [run], speed=40)
        return clips, await record(radio, clips, tmp_path)

    clips, (_, live) = asyncio.run(main())
    log = load_log(live[0].log_path)
    assert log.rate_hz == 208 and len(run.counts) == 124_800
    assert np.array_equal(log.sample_idx, np.arange(len(run.counts)))  # every sample, in order
    assert np.array_equal(log.counts, run.counts)  # bit for bit
    s = live[0].session.summary()
    assert s["lost_packets"] == 0 and s["gaps"] == [] and clips[0].unsent_packets == 0
    assert live[0].link.connects == 1 and live[0].link.error is None
    assert live[0].session.step_count > 0.95 * len(run.steps)  # the live pipeline ran on it


def test_links_dropped_twice_are_backfilled_and_the_log_says_where(tmp_path):
    run = sim_run(3, 12)
    async def drops(clips):
        for _ in range(2):  # twice, 3.5 s apart (70 s of running), out of range for 1.5 s (30 s) each time
            await asyncio.sleep(3.5)
            await clips[0].drop_link(offline_s=1.5)

    async def main():
        radio = Radio()
        clips = await start_clips(radio, [run], speed=20)
        return clips, await record(radio, clips, tmp_path, during=drops)

    clips, (_, live) = asyncio.run(main())
    assert clips[0].unsent_packets > 100  # the clip really streamed into the void twice
    log = load_log(live[0].log_path)
    assert np.array_equal(log.sample_idx, np.arange(len(run.counts)))
    assert np.array_equal(log.counts, run.counts) and log.gaps == []
    events = [e for _t, e in log.host_events]
    gaps = [(e["start_idx"], e["end_idx"]) for e in events if e["event"] == "gap"]
    filled = [(e["start_idx"], e["end_idx"]) for e in events if e["event"] == "gap_filled"]
    assert len(gaps) == 2 and sum(b - a for a, b in filled) == sum(b - a for a, b in gaps)
    assert [e["state"] for e in events if e["event"] == "link" and e["state"] in ("connected", "lost")] == \
        ["connected", "lost", "connected", "lost", "connected"]
    assert live[0].session.summary()["gaps_filled"] == [list(g) for g in gaps]


def test_eight_clips_at_once_lose_nothing(tmp_path):
    runs = [sim_run(1.5, 20 + i) for i in range(8)]
    async def main():
        radio = Radio()
        clips = await start_clips(radio, runs, speed=8)
        return clips, await record(radio, clips, tmp_path)

    clips, (adverts, live) = asyncio.run(main())
    assert len(adverts) == 8 and len(live) == 8
    for run, clip, lc in zip(runs, sorted(clips, key=lambda c: c.name), sorted(live, key=lambda c: c.name)):
        log = load_log(lc.log_path)
        assert np.array_equal(log.counts, run.counts), lc.name  # each its own session, complete
        assert lc.session.summary()["lost_packets"] == 0 and clip.unsent_packets == 0


def test_commands_reach_the_clip_and_their_results_come_back():
    run = sim_run(0.3, 30)
    async def main():
        radio = Radio()
        clips = await start_clips(radio, [run], speed=1)
        got = []
        transport = BleTransport(clips[0].address, on_packet=lambda pkt, t: got.append(pkt),
                                 backend=radio.client_backend)
        stop = asyncio.Event()
        task = asyncio.ensure_future(transport.run(stop))
        while not transport.connected:
            await asyncio.sleep(0.02)
        results = [await transport.command(P.OP_BUZZ, (1, 2, 120, 80)),
                   await transport.command(P.OP_METRONOME_START, (172, 30)),
                   await transport.command(P.OP_SET_CONFIG, (3, 5)),
                   await transport.command(P.OP_METRONOME_STOP, ())]
        with pytest.raises(CommandError, match="unknown_key"):
            await transport.command(P.OP_SET_CONFIG, (99, 1))
        with pytest.raises(CommandError, match=r"not sent .*buzz\(1, 2, 120, 180\): out_of_range"):
            await transport.command(P.OP_BUZZ, (1, 2, 120, 180))  # 180 % intensity: checked before sending
        stop.set()
        await task
        return clips[0], results, got

    clip, results, got = asyncio.run(main())
    assert results == [0, 0, 5, 0]  # (set_config answers with the value it took, as the firmware does)
    assert clip.commands[1:] == [(P.OP_BUZZ, (1, 2, 120, 80)), (P.OP_METRONOME_START, (172, 30)),
                                 (P.OP_SET_CONFIG, (3, 5)), (P.OP_METRONOME_STOP, ())]
    assert clip.commands[0] == (P.OP_HELLO, ())  # the transport asked for the HELLO on connecting
    assert any(isinstance(P.decode(p), P.Hello) for p in got)


def test_garbage_device_and_silent_clip_do_not_stop_the_others(tmp_path):
    runs = [sim_run(1, 40), sim_run(1, 41), sim_run(1, 42)]
    async def main():
        radio = Radio()
        await radio.start()
        good = SimClip(radio, 1, "good", runs[0].counts, runs[0].hello, speed=8)
        junk = SimClip(radio, 2, "junk", runs[1].counts, runs[1].hello, speed=8, garbage=True)
        mute = SimClip(radio, 3, "mute", runs[2].counts, runs[2].hello, speed=8, answer_commands=False)
        for c in (good, junk, mute):
            await c.start()
        clips = [good, junk, mute]
        adverts, live = await record(radio, clips, tmp_path)
        return clips, {lc.name: lc for lc in live}

    (good, junk, mute), live = asyncio.run(main())
    assert np.array_equal(load_log(live["good"].log_path).counts, runs[0].counts)
    assert "not a StrideClip" in live["junk"].link.error and "did not decode" in live["junk"].link.error
    junk_log = load_log(live["junk"].log_path)  # what it sent is kept, as recorded
    assert len(junk_log.bad_packets) >= 36
    # the silent clip streams but answers nothing: its samples are all there, its commands time out
    assert np.array_equal(load_log(live["mute"].log_path).counts, runs[2].counts)
    warnings = [e["error"] for _t, e in load_log(live["mute"].log_path).host_events if e.get("state") == "warning"]
    assert any("did not answer hello" in w.lower() for w in warnings)


def test_a_clip_that_is_not_there_is_a_clear_error():
    async def main():
        radio = Radio()
        await radio.start()
        t = BleTransport("C9:09:09:09:09:01", on_packet=lambda p, t: None, backend=radio.client_backend,
                         connect_timeout_s=0.5)
        with pytest.raises(TransportError, match="cannot connect to C9:09:09:09:09:01"):
            await t._connect()
        with pytest.raises(TransportError, match="not connected"):
            await t.command(P.OP_BUZZ, (1, 1, 100, 50))

    asyncio.run(main())


def test_a_command_the_clip_never_answers_times_out_with_its_name():
    run = sim_run(0.2, 50)
    async def main():
        radio = Radio()
        clips = await start_clips(radio, [run], speed=1, answer_commands=False)
        t = BleTransport(clips[0].address, on_packet=lambda p, t: None, backend=radio.client_backend,
                         command_timeout_s=0.3)
        await t._connect()
        with pytest.raises(CommandTimeout, match=r"did not answer buzz \(id \d+\) within 0.3 s"):
            await t.command(P.OP_BUZZ, (1, 1, 100, 50))
        await t.close()

    asyncio.run(main())


def _cli(args, tmp_path, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    full_env = {**os.environ, "PYTHONPATH": str(tests), **{k: str(v) for k, v in env.items()}}
    exe = Path(sys.executable).parent / "strideclip"
    return subprocess.run([str(exe), *args, "--ble-backend", "blesim.cliworld:world"], cwd=tmp_path,
                          env=full_env, capture_output=True, text=True, timeout=120)


def test_cli_scan_lists_clips_as_json(tmp_path):
    import json

    r = _cli(["scan", "--seconds", "0.5", "--json"], tmp_path, BLESIM_CLIPS=3)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert sorted(c["name"] for c in found) == ["clip-1", "clip-2", "clip-3"]
    assert all(c["battery_pct"] == 87 and c["address"] for c in found)


def test_cli_live_records_each_named_clip_to_its_own_log(tmp_path):
    from strideclip.store.history import History

    r = _cli(["live", "--clip", "clip-2", "--clip", "clip-3", "--out", "logs", "--seconds", "5"], tmp_path,
             BLESIM_CLIPS=3, BLESIM_MINUTES=1, BLESIM_SPEED=10, STRIDECLIP_HISTORY=tmp_path / "h.sqlite")
    assert r.returncode == 0, r.stderr
    logs = sorted((tmp_path / "logs").glob("*.sclog"))
    with History(tmp_path / "h.sqlite") as h:  # each recording is in the session history
        assert sorted(s["log_path"] for s in h.sessions()) == [str(p.resolve()) for p in logs]
        assert sorted(s["clip"] for s in h.sessions()) == ["clip-2", "clip-3"]
    assert [p.name.rsplit("-", 2)[0] for p in logs] == ["clip-2", "clip-3"]  # not clip-1
    for p in logs:
        log = load_log(p)
        assert log.header["source"] == "ble" and len(log.sample_idx) > 208 * 20
        assert np.array_equal(log.sample_idx, np.arange(len(log.sample_idx)))  # from the first sample, no gap
    assert "clip-2:" in r.stdout and "steps" in r.stdout


def test_cli_live_names_a_clip_that_is_not_there(tmp_path):
    r = _cli(["live", "--clip", "clip-9", "--seconds", "1"], tmp_path, BLESIM_CLIPS=2)
    assert r.returncode == 1
    assert "no clip named 'clip-9' found; clips seen: clip-1" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_log_carries_the_sample_clock(tmp_path):
    run = sim_run(3, 13)

    async def main():
        radio = Radio()
        clips = await start_clips(radio, [run], speed=30)
        return await record(radio, clips, tmp_path)

    _, live = asyncio.run(main())
    log = load_log(live[0].log_path)
    clock = [e for _t, e in log.host_events if e["event"] == "clock"]
    steps = [b["sample_idx"] - a["sample_idx"] for a, b in zip(clock, clock[1:])]
    assert all(60 * 208 <= d < 60 * 208 + 19 for d in steps)  # once a minute of samples
    assert len(clock) == 3
    # monotonic, with the drift estimate (the clock's accuracy is tested in test_clock.py at real
    # pace; here the clips run 30x faster than their crystal, so only the plumbing is checked)
    assert all(b["log_ms"] > a["log_ms"] for a, b in zip(clock, clock[1:]))
    assert all(isinstance(e["drift_ppm"], float) for e in clock)


def test_live_plays_logs_and_simulated_clips_through_the_same_path(tmp_path):
    """Developers follow recorded logs (and simulated clips) live: same recorder, same view."""
    import subprocess
    import sys
    from pathlib import Path

    from strideclip.sim import write_log

    run = sim_run(1, 80)
    src = write_log(run, tmp_path / "recorded.sclog")
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "recorded.sclog"  # another run of the same file name: its own log
    twin.write_bytes(src.read_bytes())
    exe = Path(sys.executable).parent / "strideclip"
    r = subprocess.run([str(exe), "live", "--replay", str(src), "--replay", str(twin), "--sim", "1", "--speed", "60",
                        "--seconds", "3", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    replays = sorted((tmp_path / "out").glob("recorded-*.sclog"))
    assert len(replays) == 2, replays
    original = load_log(src)
    for replayed in map(load_log, replays):
        assert replayed.header["source"] == "log"
        assert np.array_equal(replayed.sample_idx, original.sample_idx)  # every packet, its gaps included
        assert np.array_equal(replayed.counts, original.counts)
        assert not replayed.sent  # a log takes no commands: no backfill requests
    simulated = load_log(next((tmp_path / "out").glob("sim-1-*.sclog")))
    assert simulated.header["source"] == "simulator" and len(simulated.sample_idx) > 208 * 60


def test_the_hosts_cue_is_played_on_the_clip(tmp_path):
    """Fatigue in a live session: the host's cue policy fires and the clip gets the metronome."""
    from strideclip.sim import Fatigue, Scenario, Segment

    sc = Scenario((Segment("walk", 30, speed_mps=1.3), Segment("run", 540, speed_mps=3.3)),
                  fatigue=Fatigue(onset_s=280, cadence_pct_per_min=-2.0, rotation_pct_per_min=1.0), seed=90)
    run = simulate(sc)

    async def main():
        radio = Radio()
        clips = await start_clips(radio, [run], speed=40)
        return clips, await record(radio, clips, tmp_path)

    clips, (_, live) = asyncio.run(main())
    cues = live[0].session.cues
    assert cues and cues[0].reason == "cadence_drop" and cues[0].source == "host" and cues[0].sent
    played = [args for op, args in clips[0].commands if op == P.OP_METRONOME_START]
    assert played and played[0] == (cues[0].tempo_spm, cues[0].duration_s)
    # one entry per cue: the clip's report of playing it (its CUE event) is not a second cue
    assert len(cues) == len(played)
    events = [e for _t, e in load_log(live[0].log_path).host_events]
    decided = [e for e in events if e["event"] == "cue_decided"]
    sent = [e for e in events if e["event"] == "cue_sent"]
    assert decided and decided[0]["reason"] == "cadence_drop" and not decided[0]["sent"]
    assert len(sent) == len(played) and sent[0]["reason"] == "cadence_drop" and sent[0]["sent"]


def _clip_flash(path, seeds=(21, 22)) -> dict:
    """Session logs as a clip writes them while no host listens (clipfw.flashlog's header)."""
    from strideclip.stream.logwriter import SessionLogWriter

    path.mkdir(parents=True)
    logs = {}
    for session, seed in enumerate(seeds, start=3):
        run = sim_run(0.5, seed)
        name = "clip-000051a0-%05d.sclog" % session
        with SessionLogWriter(path / name, header={"source": "clip", "clip_id": 0x51A0, "session_id": session,
                                                   "fw_version": "0.2.0"}) as w:
            for t_ms, pkt in run.stream():  # the HELLO first, as clipfw.flashlog writes it
                w.clip_packet(pkt, t_ms=t_ms)
        logs[name] = (path / name).read_bytes()
    return logs


def test_flash_logs_sync_over_ble_whole_despite_lost_pieces_then_leave_the_clip(tmp_path):
    from strideclip.store.logsync import sync_ble

    flash = tmp_path / "clip_flash"
    originals = _clip_flash(flash)

    async def main():
        radio = Radio()
        (clip,) = await start_clips(radio, [sim_run(0.2, 23)], speed=1.0, log_dir=str(flash), lose_log_every=9)
        said = []
        got = await sync_ble(clip.address, tmp_path / "runs", delete=True, backend=radio.client_backend,
                             echo=said.append)
        again = await sync_ble(clip.address, tmp_path / "runs", backend=radio.client_backend, echo=said.append)
        return clip, got, again, said

    clip, got, again, said = asyncio.run(main())
    assert sorted(p.name for p in got) == sorted(originals)  # named after the clip and session
    for p in got:
        assert p.read_bytes() == originals[p.name]  # every byte, though every 9th piece was lost on the air
        assert load_log(p).report.clean
    assert clip.log_packets > sum(-(-len(b) // P.LOG_CHUNK_BYTES) for b in originals.values())  # asked again
    assert not list(flash.glob("*.sclog")) and again == []  # removed once safe: nothing left to fetch
    assert said[-1] == "no logs on the clip" and sum("removed from the clip" in s for s in said) == 2


def test_cli_sync_fetches_a_named_clips_logs_over_ble(tmp_path):
    originals = _clip_flash(tmp_path / "flash", seeds=(24,))
    r = _cli(["sync", "--clip", "clip-1", "--out", "runs", "--db", tmp_path / "h.sqlite"], tmp_path,
             BLESIM_LOG_DIR=tmp_path / "flash")
    assert r.returncode == 0, r.stderr
    (name, data), = originals.items()
    assert f"added to the history ({tmp_path / 'h.sqlite'}): #1 {name}" in r.stdout
    assert (tmp_path / "runs" / name).read_bytes() == data and (tmp_path / "flash" / name).exists()  # kept: no --delete
    assert f"{name}:" in r.stdout and "1 log(s) in runs" in r.stdout
    r = _cli(["sync", "--clip", "clip-7", "--out", "runs"], tmp_path)
    assert r.returncode == 1 and "no clip named 'clip-7' found" in r.stderr and "Traceback" not in r.stderr
