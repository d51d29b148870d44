"""The clip's firmware on the rig (tests/rig/README.md): the unchanged app, compiled by the rig's own
mpy-cross and installed on a littlefs flash image, booted by MicroPython's 32-bit unix port with
stand-ins as harsh as the ESP32 (I2C that costs time and fails, soft timers, NOR flash that costs
time and loses power, 0x03 on the USB port as Ctrl-C, a 96 kB heap). These tests use the USB link
and a simulated clock; tests/test_firmware_ble.py runs the BLE side over NimBLE and bumble.
What the clip wrote is read by the host's own decoder.
"""
import numpy as np
import pytest

import rig as R
from clipcore import protocol as P
from strideclip.analysis.steps import StepDetector
from strideclip.sim import simulate, steady_run
from strideclip.stream.decode import Gap, SampleBlock, StreamDecoder


USB = {"link": "usb"}


@pytest.fixture
def board(firmware, tmp_path):
    def make(config=USB):
        return R.Board(tmp_path / "clip", firmware, config)
    return make


def packets(serial: bytes) -> list[bytes]:
    d = P.Deframer()
    d.feed(serial)
    out = []
    while (pkt := d.next_packet(eof=True)) is not None:
        out.append(pkt)
    assert d.dropped_bytes == 0 and d.bad_frames == 0
    return out


def decoded(pkts):
    dec = StreamDecoder()
    blocks, gaps, events = [], [], []
    for k, pkt in enumerate(pkts):
        for out in dec.feed(pkt, k):
            if isinstance(out, SampleBlock):
                blocks.append(out)
            elif isinstance(out, Gap):
                gaps.append(out)
            else:
                events.append(getattr(out, "msg", out))
    return dec, blocks, gaps, events


def statuses(events, code):
    return [e for e in events if isinstance(e, P.Status) and e.code == code]


def command(cmd_id, opcode, *args) -> bytes:
    buf = bytearray(32)
    return P.frame(bytes(buf[:P.pack_command(buf, cmd_id, opcode, args)]))


def assert_clean_boot(boot):
    assert boot.how in ("power_off", "exit"), boot.stderr
    assert "crashed" not in boot.report and "mount_failed" not in boot.report, (boot.report, boot.stderr)


def test_usb_streams_every_sample_in_order_and_the_clips_steps_are_the_hosts(board):
    run = simulate(steady_run(10, seed=4))
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500)
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert isinstance(P.decode(packets(boot.serial)[0]), P.Hello) and dec.hello.rate_hz == 208
    assert statuses(events, P.STATUS_BOOT)[0].value == R.PWRON_RESET
    assert not gaps and dec.stats.lost_packets == 0 and not statuses(events, P.STATUS_ERROR)
    live = np.concatenate([b.counts for b in blocks])
    assert blocks[0].first_idx == 0 and np.array_equal(live, run.counts[:len(live)])  # every sample, in order
    assert len(live) >= len(run.counts) - 18  # all but the packet in hand when the power went
    imu = boot.report["imu"]
    assert imu["overruns"] == 0 and imu["transfers"] * 5 < imu["words_read"]  # the FIFO read in bursts
    # The clip's steps are the host's: the same clipcore detector, here on a 32-bit interpreter.
    host = StepDetector(sampling_rate_hz=208, accel_ug_per_lsb=dec.hello.accel_ug_per_lsb).detect(live).events_
    clip_steps = [e.sample_idx for e in events if isinstance(e, P.Step)]
    assert clip_steps == [int(i) for i in host["ic_idx"]] and len(clip_steps) > 1500
    # the clip's own part of the heap was 96 kB: the rest was the stand-ins' and a ballast
    assert boot.report["ballast_bytes"] > 0


def test_the_loop_allocates_nothing_per_sample_or_per_pass(board):
    """Every pass after start-up runs under micropython.heap_lock(): nothing may be allocated.
    A board with PSRAM (the XIAO ESP32S3: the rig gives the clip 2 MB) keeps its backfill store
    in RAM; without PSRAM the flash store opens one file per segment (firmware/README.md)."""
    run = simulate(steady_run(2, seed=5))
    end_ms = len(run.counts) * 1000 // 208 + 500
    psram = {"heapsize": "2300k", "clip_heap_bytes": 2 * 1024 * 1024}
    boot = board(dict(USB, board="xiao-esp32s3")).boot(run.counts, end_ms=end_ms, heap_lock=[5000, end_ms], **psram)
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert boot.report["locked_passes"] > 900 and not statuses(events, P.STATUS_ERROR)
    assert sum(len(b.counts) for b in blocks) >= len(run.counts) - 18 and not gaps
    # The negative control: one allocation in one locked pass is caught, reported and survived.
    boot = board(dict(USB, board="xiao-esp32s3")).boot(run.counts, end_ms=end_ms, heap_lock=[5000, end_ms],
                                                       faults=[[20_000, "alloc", 0]], **psram)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert [e.value for e in statuses(events, P.STATUS_ERROR)] == [P.ERROR_LOOP]
    assert sum(len(b.counts) for b in blocks) >= len(run.counts) - 18 and not gaps


def test_a_pass_under_heap_lock_that_allocates_is_survived(board):
    """A MemoryError in a pass (here: the heap locked and one allocation) is reported and the
    loop goes on: the clip loses nothing."""
    run = simulate(steady_run(1, seed=5))
    end_ms = len(run.counts) * 1000 // 208 + 500
    boot = board().boot(run.counts, end_ms=end_ms, heap_lock=[20_000, 20_300], faults=[[20_100, "alloc", 0]])
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert [e.value for e in statuses(events, P.STATUS_ERROR)] == [P.ERROR_LOOP]
    assert not gaps and sum(len(b.counts) for b in blocks) >= len(run.counts) - 18


def test_fifo_overrun_is_reported_and_the_index_skips_the_lost_samples(board):
    run = simulate(steady_run(1, seed=6))
    boot = board().boot(run.counts, end_ms=58_000, faults=[[20_000, "stall", 4000]])  # the CPU held 4 s
    assert boot.report["imu"]["overruns"] >= 1
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    over = statuses(events, P.STATUS_FIFO_OVERFLOW)
    # (reading a full FIFO races the chip: a second, small overrun may follow the first)
    assert 1 <= len(gaps) <= 2 and sum(g.end_idx - g.start_idx for g in gaps) == sum(o.value for o in over)
    lost = sum(g.end_idx - g.start_idx for g in gaps)
    assert 2.5 * 208 < lost < 3.2 * 208  # the FIFO held 1.2 s of the 4 (and a pass's worth was read before)
    assert_whole_samples_in_place(blocks, run.counts, gaps[0], slack=6)


def assert_whole_samples_in_place(blocks, counts, gap, slack=3):
    """Every block is the true samples at its index; after the hole the index is the clip's
    estimate (from its clock), right to within `slack` samples."""
    for b in blocks:
        shifts = range(-slack, slack + 1) if b.first_idx >= gap.end_idx else (0,)
        assert any(np.array_equal(b.counts, counts[b.first_idx + s:b.first_idx + s + len(b.counts)]) for s in shifts)


def test_lsm6ds3trc_streams_every_sample_and_realigns_after_an_overrun(board):
    run = simulate(steady_run(2, seed=9))
    clip = board(dict(USB, imu="lsm6ds3trc"))
    boot = clip.boot(run.counts, imu="lsm6ds3trc", end_ms=len(run.counts) * 1000 // 208 + 500)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert dec.hello.imu_model == P.IMU_LSM6DS3TRC and not gaps
    live = np.concatenate([b.counts for b in blocks])
    assert np.array_equal(live, run.counts[:len(live)]) and len(live) >= len(run.counts) - 18
    assert boot.report["imu"]["transfers"] * 10 < boot.report["imu"]["words_read"]  # bursts, not a word at a time
    # A stall overflows its 4 kB FIFO (2046 words: not whole samples): whole samples again after.
    # (Reading a full FIFO races the chip: it may overwrite a sample while the first burst is read,
    # which the next status shows as a second overrun; the clip's index stays within a few samples.)
    boot = clip.boot(run.counts, imu="lsm6ds3trc", end_ms=100_000, faults=[[30_000, "stall", 2500]])
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert boot.report["imu"]["overruns"] >= 1 and 1 <= len(gaps) <= 2
    assert sum(g.end_idx - g.start_idx for g in gaps) == sum(e.value for e in statuses(events, P.STATUS_FIFO_OVERFLOW))
    assert_whole_samples_in_place(blocks, run.counts, gaps[0], slack=6)


@pytest.mark.parametrize("chip", ["lsm6dsox", "lsm6ds3trc"])
def test_416_hz_for_ten_minutes_without_an_overrun_with_the_i2c_cost(board, chip):
    run = simulate(steady_run(10, seed=21, rate_hz=416))
    clip = board(dict(USB, imu=chip, sample_rate_hz=416))
    boot = clip.boot(run.counts, imu=chip, end_ms=len(run.counts) * 1000 // 416 + 500, i2c_overhead_us=400)
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert boot.report["imu"]["overruns"] == 0 and not gaps and not statuses(events, P.STATUS_FIFO_OVERFLOW)
    assert sum(len(b.counts) for b in blocks) >= len(run.counts) - 18
    # what the bus took of the clip's time (the figure is in firmware/README.md)
    assert boot.report["i2c_busy_ms"] < 0.3 * boot.report["t_ms"]


def test_battery_is_reported_and_a_low_battery_said_once(board):
    run = simulate(steady_run(4, seed=13))
    # 1.90 V at the pin = 3.80 V cell (50 %); from 2 minutes on 1.72 V = 3.44 V (~3 %)
    boot = board().boot(run.counts, end_ms=4 * 60_000, battery_uv=[[0, 1_900_000], [120_000, 1_720_000]])
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    status = [(e.sample_idx / 208, e.code, e.value) for e in events if isinstance(e, P.Status)
              and e.code in (P.STATUS_BATTERY, P.STATUS_LOW_BATTERY)]
    assert status[0][1] == P.STATUS_BATTERY and status[0][2] == 50
    low = [s for s in status if s[1] == P.STATUS_LOW_BATTERY]
    assert len(low) == 1 and low[0][0] > 120 and low[0][2] < 15  # said once, when it happened
    assert all(s[1] == P.STATUS_BATTERY for s in status if s[0] > low[0][0])  # then plain reports
    assert len(status) >= 4  # every minute
    # the HELLO again with each report (a reader whose one copy is damaged has the next), same session
    hellos = [e for e in events if isinstance(e, P.Hello)]
    assert len(hellos) == 1 + len(status) and len({h.session_id for h in hellos}) == 1
    assert [h.battery_pct for h in hellos[1:]] == [s[2] for s in status]


def raw(pkt: bytes) -> bytes:
    return P.frame(pkt)


def test_control_writes_are_checked_and_bad_ones_change_nothing(board):
    run = simulate(steady_run(2, seed=7))
    hdr = P.header_byte(P.T_COMMAND)
    usb_in = [
        (5, command(1, P.OP_SET_CONFIG, 1, 170)),  # cadence floor 170: accepted
        (6, command(2, P.OP_SET_CONFIG, 1, 999)),  # out of range: refused, stays 170
        (7, command(3, P.OP_SET_CONFIG, 99, 1)),  # unknown key
        (8, raw(bytes([hdr, 4, 0x7F]))),  # unknown opcode
        (9, raw(bytes([hdr, 5, P.OP_METRONOME_START, 1]))),  # too short
        (10, raw(bytes([hdr, 6, P.OP_STOP_STREAM, 0, 0]))),  # too long
        (11, raw(bytes([P.header_byte(P.T_STEP)]) + bytes(10))),  # not a command
        (12, raw(bytes([0x27, 8, P.OP_HELLO]))),  # wrong protocol version
        (13, command(9, P.OP_METRONOME_START, 170, 10)),  # accepted: the motor plays
        (60, command(10, P.OP_BACKFILL, 208 * 30, 208 * 5)),  # 5 s from 30 s ago: held
        (61, command(11, P.OP_BACKFILL, 0, 208 * 200)),  # more than is held
        (62, command(12, P.OP_BUZZ, 1, 2, 100, 60)),  # a double buzz, twice
    ]
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500, usb_in=usb_in)
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    results = {r.cmd_id: r for r in events if isinstance(r, P.Result)}
    assert results[1].code == P.RESULT_OK and statuses(events, P.STATUS_CONFIG_CHANGED)[0].value == 1
    assert results[2].code == P.RESULT_OUT_OF_RANGE
    assert results[3].code == P.RESULT_UNKNOWN_KEY
    assert results[4].code == P.RESULT_UNKNOWN_OPCODE
    assert results[5].code == P.RESULT_BAD_LENGTH and results[6].code == P.RESULT_BAD_LENGTH
    assert results[0].code == P.RESULT_BAD_PACKET and results[8].code == P.RESULT_BAD_PACKET
    assert results[9].code == P.RESULT_OK and results[12].code == P.RESULT_OK
    assert results[10].code == P.RESULT_OK and results[10].detail == 208 * 5
    assert results[11].code == P.RESULT_UNAVAILABLE
    assert len(statuses(events, P.STATUS_CONFIG_CHANGED)) == 1  # only the valid write changed anything
    # The host's cues were played, and said so (source: host).
    cues = [e for e in events if isinstance(e, P.Cue)]
    assert [(c.kind, c.source, c.tempo_spm, c.duration_s) for c in cues] == [
        (P.CUE_METRONOME_START, P.SOURCE_HOST, 170, 10), (P.CUE_BUZZ, P.SOURCE_HOST, 0, 0)]
    # The metronome: 28 beats (10 s at 170/min) from the RMT, every one 60/170 s after the last.
    on = boot.motor_on_ms()
    beats = [a for a, b in on if 12_000 < a < 40_000]
    assert len(beats) == 10 * 170 // 60 and np.all(np.abs(np.diff(beats) - 60_000 / 170) < 0.1)
    assert all(abs((b - a) - 45) < 0.1 for a, b in on if 12_000 < a < 40_000)
    buzz = [(a, b) for a, b in on if a > 60_000]
    assert len(buzz) == 4 and all(abs((b - a) - 100) < 0.1 for a, b in buzz)  # double, twice
    # The backfill: after its RESULT, the packets (numbered from seq 0), then backfill_done.
    back = [m for m in map(P.decode, packets(boot.serial)) if isinstance(m, P.Samples) and m.ptype == P.T_BACKFILL]
    assert [m.seq for m in back] == list(range(len(back)))
    got = np.concatenate([np.frombuffer(m.data, "<i2").reshape(-1, 6) for m in back])
    first = back[0].first_idx
    assert first <= 208 * 30 and first + len(got) >= 208 * 35
    assert np.array_equal(got, run.counts[first:first + len(got)])
    assert statuses(events, P.STATUS_BACKFILL_DONE)[0].value == len(got)


def test_random_control_writes_never_break_the_clip(board):
    rng = np.random.default_rng(1)
    usb_in = []
    for k in range(200):
        n = int(rng.integers(1, 24))
        pkt = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        if k % 2:
            pkt = bytes([P.header_byte(P.T_COMMAND)]) + pkt  # mostly well-typed, random body
        if len(pkt) == 3 and pkt[0] == P.header_byte(P.T_COMMAND) and pkt[2] == P.OP_STOP_STREAM:
            continue  # a valid "stop streaming" would (rightly) stop the stream this test checks
        usb_in.append((2 + k * 0.05, raw(pkt)))
    run = simulate(steady_run(1, seed=8))
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500, usb_in=usb_in)
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    results = [r for r in events if isinstance(r, P.Result)]
    assert len(results) == len(usb_in) > 190  # every write answered (many hold 0x03: none stopped the app)
    expected = [P.command_result_code(h[4:-2]) for _, h in usb_in]
    for r, code in zip(results, expected):
        assert r.code == code or (code == P.RESULT_OK and r.code in (P.RESULT_OK, P.RESULT_UNAVAILABLE,
                                                                      P.RESULT_UNKNOWN_KEY, P.RESULT_OUT_OF_RANGE))
    live = np.concatenate([b.counts for b in blocks if not b.backfill])
    assert len(live) >= len(run.counts) - 19 * 3


def test_a_0x03_in_a_command_is_data_and_three_ctrl_c_stop_the_app_cleanly(board):
    """On the ESP32 a 0x03 on the USB port is Ctrl-C (the rig's port does the same until the
    firmware turns it off): SET_CONFIG's opcode is 3 and CRCs are any byte."""
    run = simulate(steady_run(1, seed=3))
    set_rotation = command(1, P.OP_SET_CONFIG, 3, 3)  # opcode 3, key 3, value 3 (out of range)
    assert set_rotation.count(3) >= 3
    usb_in = [(5, set_rotation), (6, b"\x03"), (9, b"\x03\x03"), (20, b"\x03\x03\x03")]
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500, usb_in=usb_in)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    results = [r for r in events if isinstance(r, P.Result)]
    assert (results[0].cmd_id, results[0].code) == (1, P.RESULT_OUT_OF_RANGE)  # read and answered: the app went on
    assert boot.report.get("interrupted") and 20_000 <= boot.report["t_ms"] < 21_000  # stopped at the third Ctrl-C
    assert sum(len(b.counts) for b in blocks) >= 20 * 208 - 21  # what it had was sent: the packet in hand too


def test_an_i2c_error_is_reported_and_nothing_is_lost(board):
    """A loose contact: the IMU does not answer for a few transfers. The clip says so once and
    reads the FIFO again on the next pass: its samples waited there."""
    run = simulate(steady_run(1, seed=15))
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500, faults=[[20_000, "i2c_error", 5]])
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    errors = statuses(events, P.STATUS_IMU_ERROR)
    assert len(errors) == 1 and errors[0].value == 19 and abs(errors[0].sample_idx - 20 * 208) < 50  # ENODEV
    assert not gaps and not statuses(events, P.STATUS_FIFO_OVERFLOW)
    live = np.concatenate([b.counts for b in blocks])
    assert np.array_equal(live, run.counts[:len(live)]) and len(live) >= len(run.counts) - 18


def test_an_imu_reset_by_a_glitch_is_set_up_again_and_the_time_it_missed_is_a_gap(board):
    run = simulate(steady_run(1, seed=15))
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500, faults=[[20_000, "imu_reset", 0]])
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert [e.value for e in statuses(events, P.STATUS_IMU_ERROR)] == [0]  # 0: it was set up again
    assert len(gaps) == 1 and 208 <= gaps[0].end_idx - gaps[0].start_idx <= 1.5 * 208  # about the second it was silent
    assert sum(len(b.counts) for b in blocks) > len(run.counts) - 1.5 * 208


def test_an_exception_in_one_pass_is_reported_and_the_loop_goes_on(board):
    run = simulate(steady_run(1, seed=16))
    boot = board().boot(run.counts, end_ms=len(run.counts) * 1000 // 208 + 500,
                        faults=[[20_000, "raise", "a driver bug"]])
    assert_clean_boot(boot)
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    assert [e.value for e in statuses(events, P.STATUS_ERROR)] == [P.ERROR_LOOP]
    assert not gaps and sum(len(b.counts) for b in blocks) >= len(run.counts) - 18


def test_passes_that_keep_failing_restart_the_clip_and_its_next_boot_says_why(board):
    """The IMU stops answering for good (an I2C error on every transfer): after 5 s of failing
    passes... it is not a failing pass: the clip reports and retries. A loop that raises every
    pass (here: every transfer raises) makes the clip restart itself; a hang, the watchdog."""
    run = simulate(steady_run(1, seed=17))
    clip = board()
    raises = [[20_000 + 100 * k, "raise", "stuck"] for k in range(80)]
    boot = clip.boot(run.counts, end_ms=60_000, faults=raises)
    assert boot.how == "reset" and boot.report["reset"]["cause"] == R.HARD_RESET
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    errors = statuses(events, P.STATUS_ERROR)
    assert len(errors) == 51 and errors[-1].value == P.ERROR_RESTARTING  # 50 failed passes, then restart
    again = clip.boot(run.counts[boot.report["t_ms"] * 208 // 1000:], end_ms=5000, reset_cause=R.HARD_RESET)
    dec, blocks, gaps, events = decoded(packets(again.serial))
    assert statuses(events, P.STATUS_BOOT)[0].value == R.HARD_RESET and dec.hello.session_id == 2
    # A pass that hangs (12 s in one stand-in call) is ended by the watchdog.
    boot = clip.boot(run.counts, end_ms=60_000, faults=[[10_000, "stall", 12_000]])
    assert boot.how == "reset" and boot.report["reset"]["cause"] == R.WDT_RESET
    again = clip.boot(run.counts, end_ms=5000, reset_cause=R.WDT_RESET)
    dec, blocks, gaps, events = decoded(packets(again.serial))
    assert statuses(events, P.STATUS_BOOT)[0].value == R.WDT_RESET and dec.hello.session_id == 4


CONFIG_CHECK = """
import sys
sys.path[:0] = [LIB]
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
print(refused({"haptic_pwm_hz": 200}))
"""


def run_rig_script(code: str) -> str:
    import subprocess

    done = subprocess.run([R.micropython(), "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_config_is_validated_with_clear_errors(firmware, tmp_path):
    lines = run_rig_script(f"LIB = {str(firmware)!r}\nTMP = {str(tmp_path)!r}\n" + CONFIG_CHECK).splitlines()
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
    assert lines[12].startswith("haptic_pwm_hz:") and "2000..40000" in lines[12]  # the RMT carrier's range


@pytest.mark.parametrize("who_am_i, expected", [(None, "no IMU answers at I2C address 0x6A"),
                                                (0x47, "IMU at 0x6A says WHO_AM_I=0x47")])
def test_a_missing_or_unknown_imu_stops_the_clip_at_boot_with_a_clear_message(board, who_am_i, expected):
    opts = {"imu": "none"} if who_am_i is None else {"who_am_i": who_am_i}
    boot = board().boot(simulate(steady_run(0.2, seed=1)).counts, end_ms=5000, **opts)
    assert "crashed" in boot.report and expected in boot.stderr and "ImuError" in boot.stderr


SECRETS_CHECK = """
import sys
sys.path[:0] = [LIB]
from clipfw import ble_link as B
class Keys(B.BleLink):  # the event handler's bookkeeping only: no radio needed
    def __init__(self):
        pass
link = Keys()
link.secrets, link.order = B.load_secrets(None)
link.secrets_dirty = False
link.irq_errors = 0
link.h_control = -1
ev = link._irq
# a bond stores a few keys; NimBLE asks for them by key and enumerates them by index
print(ev(30, (1, b"peer-a", b"key-a")), ev(30, (2, b"peer-a", b"irk-a")), ev(30, (1, b"peer-b", b"key-b")))
print(ev(29, (1, 0, b"peer-b")), ev(29, (1, 1, None)), ev(29, (1, 2, None)), ev(29, (3, 0, b"peer-a")), link.secrets_dirty)
print(ev(30, (1, b"peer-b", None)), ev(29, (1, 0, b"peer-b")))
B.save_secrets(PATH, link.secrets, link.order)
again, order = B.load_secrets(PATH)  # after a reboot
print(again[(1, b"peer-a")], again[(2, b"peer-a")], (1, b"peer-b") in again)
for i in range(B.MAX_SECRETS + 5):  # more bonds than it keeps: the oldest go first, in the order made
    ev(30, (3, b"p%02d" % i, b"v"))
print(len(link.order) == B.MAX_SECRETS, link.order[0], link.order[-1])
B.save_secrets(PATH, link.secrets, link.order)
f = open(PATH, "ab")
f.write(bytes((1, 200, 1)))  # a record cut short by a power cut
f.close()
kept, order = B.load_secrets(PATH)
print(len(kept) == B.MAX_SECRETS, order == link.order)
print(ev(29, (1, 0, 1.5)), link.irq_errors)  # a bad key (not bytes): caught, counted, no exception escapes
"""


def test_ble_bonding_keys_are_kept_in_order_across_a_reboot_within_a_bound(firmware, tmp_path):
    path = str(tmp_path / "bonds.bin")
    lines = run_rig_script(f"LIB = {str(firmware)!r}\nPATH = {path!r}\n" + SECRETS_CHECK).splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "b'key-b' b'key-b' None None True"  # by key; by index (2 of type 1); past the end; another type
    assert lines[2] == "True None"  # deleted
    assert lines[3] == "b'key-a' b'irk-a' False"  # kept across the reboot; the deleted one stays deleted
    assert lines[4] == "True (3, b'p05') (3, b'p28')"  # never more than MAX_SECRETS; the oldest forgotten first
    assert lines[5] == "True True"  # a damaged tail loses only itself, the order holds
    assert lines[6] == "None 1"
