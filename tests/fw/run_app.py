"""Runs the clip's app under the MicroPython unix port with the test shims and an emulated
LSM6DSOX fed from recorded samples, on a simulated clock (tests/test_firmware.py).

    micropython -c "import run_app" LIB COUNTS.bin OUT.bin OPTS.json    (OPTS: {"poll_ms": 20, ...})

LIB holds the clip's files precompiled with mpy-cross, as on the clip: LIB/fw (firmware/),
LIB/shared (shared/) and LIB/test (tests/fw: the shims and the emulated chip).

COUNTS.bin: int16 little-endian, 6 per sample (ax ay az gx gy gz). OUT.bin: the byte stream the
clip wrote to its USB serial port. Prints one JSON line with what the app counted.
"""
import json
import sys

lib, counts_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(sys.argv[4]) as f:  # a file: a long command line crashes the unix port's argument parser
    opts = json.load(f)
sys.path[:0] = [lib + "/test/shims", lib + "/test", lib + "/fw", lib + "/shared"]

import gc  # noqa: E402
import time  # noqa: E402

# What the stand-ins hold of the heap (this script and its options, the shims, the emulated chip,
# scripted hosts), measured as they load: the clip's own part is the heap less this.
gc.collect()
mark = gc.mem_alloc()
standin = mark - opts.get("bare_bytes", 0)
import machine  # noqa: E402  (the shim)
import micropython  # noqa: E402

CHUNK = 64
# first: the test's own buffers are made before the app's
if opts.get("chip") == "lsm6ds3trc":  # only the emulator in use is loaded: the heap is the clip's
    from fake_lsm6ds3trc import FakeLSM6DS3TRC as Chip  # noqa: E402
else:
    from fake_lsm6dsox import FakeLSM6DSOX as Chip  # noqa: E402
chip = Chip()
src = bytearray(12 * CHUNK)
f = open(counts_path, "rb")
gc.collect()
standin += gc.mem_alloc() - mark

import clipfw  # noqa: E402
from clipfw import config  # noqa: E402
from clipfw.app import App, make_buffers  # noqa: E402

cfg = config.validate(opts.get("config", {}))
config.unload()
del config
gc.collect()
buffers = make_buffers(cfg)  # as the clip does at boot: before the other modules load
if "flash_log" in opts:  # no host: the run goes to the clip's flash too
    from clipfw.flashlog import FlashLog  # noqa: E402
from clipfw.imu import open_imu  # noqa: E402

machine.DEVICES[cfg["imu_address"]] = chip
imu = open_imu(machine.I2C(cfg["i2c_bus"]), cfg["imu_address"], cfg["imu"])
from clipfw.haptics import Haptics  # noqa: E402


if opts.get("serial_device"):  # a real pty: frames out and commands in, as on the USB port
    import select  # noqa: E402

    out = open(out_path, "r+b")
    serial_poller = select.poll()
    serial_poller.register(out, select.POLLIN)
else:
    out = open(out_path, "wb")
central = None
if "central_file" in opts:  # BLE: notifications go to out, a scripted central connects and writes
    gc.collect()
    mark = gc.mem_alloc()
    import bluetooth  # noqa: E402  (the shim)
    from scripted import ScheduledCentral  # noqa: E402

    gc.collect()
    standin += gc.mem_alloc() - mark
    from clipfw import FW_VERSION  # noqa: E402
    from clipfw.ble_link import BleLink  # noqa: E402

    bluetooth.NOTIFY_FILE = out
    link = BleLink(cfg["clip_name"], 0x51A0, FW_VERSION)
    gc.collect()
    mark = gc.mem_alloc()
    central = ScheduledCentral(opts["central_file"], link.ble, link.h_control)
    gc.collect()
    standin += gc.mem_alloc() - mark
else:
    from clipfw.serial_link import SerialLink  # noqa: E402

    # Without "commands" there is no host: the clip coaches on its own.
    inp = None
    poller = None
    if opts.get("serial_device"):
        inp, poller = out, serial_poller
    elif "commands_file" in opts:
        from scripted import ScheduledInput  # noqa: E402

        inp = ScheduledInput(opts["commands_file"])
    link = SerialLink(out, inp, poller)
haptics = Haptics(cfg["haptic_pin"], cfg["haptic_pwm_hz"], cfg["haptic_intensity_pct"])
log = None
if "flash_log" in opts:
    from clipfw import FW_VERSION  # noqa: E402

    log = FlashLog(opts["flash_log"], 0x51A0, 1, FW_VERSION, machine.CLOCK.ticks_ms, opts.get("log_max_bytes", 2_000_000))
battery = None
if "battery_uv" in opts:  # [[t_s, microvolts at the ADC pin], ...]
    from clipfw.battery import Battery  # noqa: E402

    battery = Battery(cfg["battery_adc_pin"])
app = App(cfg, imu, link, haptics=haptics, ticks_ms=machine.CLOCK.ticks_ms, log=log, battery=battery,
          backfill_path=opts.get("backfill_path"), buffers=buffers)


def run_loop():
    """The simulated run, in a function: locals cost no heap (new module globals would grow
    the module's dict, and the heap is the clip's)."""
    rate = cfg["sample_rate_hz"]
    poll_ms = opts.get("poll_ms", clipfw.POLL_MS)
    stall = opts.get("stall", [])  # [at_s, for_s]: the loop is held up (flash, GC) and the FIFO overflows
    lock_after_s = opts.get("heap_lock_after_s", -1)
    imu_only = opts.get("imu_only", False)
    have = 0  # samples in src
    used = 0
    produced = 0
    locked_polls = 0
    done = False
    gc.collect()
    while not done:
        now = machine.CLOCK.now_ms + poll_ms
        target = now * rate // 1000
        while produced < target:
            if used == have:
                have = f.readinto(src) // 12
                used = 0
                if have == 0:
                    done = True
                    break
            chip.push(src, used)
            used += 1
            produced += 1
        if stall and stall[0] * 1000 <= machine.CLOCK.now_ms < (stall[0] + stall[1]) * 1000:
            machine.CLOCK.advance(poll_ms)  # time passes, the loop does not run
            continue
        if central:
            central.run_due(machine.CLOCK.now_ms)
        for t_s, uv in opts.get("battery_uv", ()):
            if t_s * 1000 <= machine.CLOCK.now_ms:
                machine.ADC.UV = uv
        lock = 0 <= lock_after_s * 1000 <= machine.CLOCK.now_ms
        if lock:
            micropython.heap_lock()
        machine.CLOCK.advance(poll_ms)
        if imu_only:
            imu.read(app.fifo, 64)  # the benchmark's baseline: only the (emulated) FIFO read
        else:
            app.poll()
        if lock and opts.get("allocate_while_locked"):
            bytearray(16)  # the negative control: this must be caught
        if lock:
            micropython.heap_unlock()
            locked_polls += 1
    while chip.count or getattr(getattr(link, "inp", None), "items", False):  # drain; answer the last commands
        machine.CLOCK.advance(poll_ms)
        app.poll()
    app.flush()
    for _ in range(opts.get("linger_polls", 0)):  # keep answering (backfill requests) in real time
        time.sleep_ms(20)
        app.poll()
    out.close()
    if log:
        log.close()
    return produced, locked_polls


produced, locked_polls = run_loop()
fifo_words, fifo_reads = getattr(chip, "reads", 0), getattr(chip, "bursts", 0)
del src, chip  # the test's own buffers: the report below needs a little heap
gc.collect()


def report():
    """One "key value" line each, printed piece by piece (a big JSON string might not fit in
    what the app left of the heap)."""
    values = (("samples", app.idx), ("produced", produced), ("packets", app.packets), ("steps", app.steps),
              ("cues", app.cues), ("overruns", imu.overruns), ("dropped_words", imu.dropped_words),
              ("beats", haptics.beats), ("locked_polls", locked_polls), ("mem_free", gc.mem_free()),
              ("mem_alloc", gc.mem_alloc()), ("streaming", int(app.streaming)), ("fifo_words", fifo_words),
              ("fifo_reads", fifo_reads), ("standin_bytes", standin))
    for key, value in values:
        print(key, value)
    for key, arr, n in (("cue_cfg", app.cue_cfg, len(app.cue_cfg)), ("pwm_log_ms", haptics.pwm.log_ms, haptics.pwm.n_log),
                        ("pwm_log_duty", haptics.pwm.log_duty, haptics.pwm.n_log)):
        print(key, end="")
        for i in range(n):
            print("", arr[i], end="")
        print()


report()
