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
from strideclip.decode import Gap, SampleBlock, StreamDecoder
from strideclip.sim import simulate, steady_run
from strideclip.steps import StepDetector


USB = {"link": "usb"}


@pytest.fixture(scope="session")
def firmware(tmp_path_factory):
    return R.build_firmware(tmp_path_factory.mktemp("firmware"))


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
    assert boot.report["imu"]["overruns"] == 1
    dec, blocks, gaps, events = decoded(packets(boot.serial))
    over = statuses(events, P.STATUS_FIFO_OVERFLOW)
    assert len(over) == 1 and len(gaps) == 1
    lost = gaps[0].end_idx - gaps[0].start_idx
    assert abs(lost - over[0].value) <= 1 and 208 < lost < 4 * 208  # the FIFO held ~3 s of the 4
    assert_whole_samples_in_place(blocks, run.counts, gaps[0])


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
