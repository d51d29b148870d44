"""The real clip: wires config, I2C, the IMU, the motor and the link to the app and runs the loop.
Everything hardware-specific is here; the test rig (tests/rig) runs this very file.
The link is BLE (the GATT service) or, with config "link": "usb", frames on the USB serial port.
Whatever no host received goes to the flash log.

The loop never ends on an error: a pass that raises is reported (STATUS error) and the next pass
runs; if passes keep failing the clip restarts itself, and a pass that hangs is ended by the
watchdog. Ctrl-C (the REPL; on USB, three Ctrl-C outside any frame) stops the app cleanly: the
log is closed whole and the watchdog is fed from then on, so the REPL and mpremote stay usable.
"""
import gc
import time

from clipcore import wire as P

from clipfw import FW_VERSION, POLL_MS

WDT_MS = 10_000  # a pass that takes this long has hung (a flash erase burst takes well under 1 s)
MAX_FAILED_PASSES = 50  # 5 s of passes that all raise: restart


def load_config(path):
    """The config file, or the defaults if it is refused (the reason is kept on flash). The
    config module is unloaded afterwards: it is needed at boot only."""
    from clipfw import config

    try:
        cfg, error = config.load(path), None
    except config.ConfigError as e:
        try:
            with open("/config_error.txt", "w") as f:
                f.write(str(e))
        except OSError:
            pass  # a full flash: the STATUS still says it
        cfg, error = dict(config.DEFAULTS), e
    config.unload()
    gc.collect()
    return cfg, error


def backfill_dir(cfg):
    """RAM when it fits twice over (PSRAM boards), else a folder on flash."""
    need = cfg["backfill_s"] * cfg["sample_rate_hz"] * P.SAMPLE_BYTES
    gc.collect()
    return None if gc.mem_free() > 2 * need else "/backfill"


def next_session_id(log_dir, clip_id, path="/session.txt"):
    """Each boot is a new session (HELLO, the flash log's name): a counter kept on flash. A
    session whose log is already on the flash is skipped (a counter that could not be written,
    or was lost to a power cut, must never make a new run overwrite an old one)."""
    import os

    try:
        with open(path) as f:
            n = int(f.read()) + 1
    except (OSError, ValueError):
        n = 1
    while True:
        try:
            os.stat("%s/clip-%08x-%05d.sclog" % (log_dir, clip_id, n & 0xFFFF))
        except OSError:
            break
        n += 1
    try:
        with open(path, "w") as f:
            f.write(str(n))
    except OSError:
        pass  # a full flash: the logs on it still keep the next session from repeating this one
    return n & 0xFFFF


def bluetooth_clip_id(base_mac):
    """The low 32 bits of the clip's Bluetooth address (ESP-IDF: the base MAC, machine.unique_id(),
    with 2 added to its last byte): the clip_id a host sees over BLE, used over USB too."""
    low = bytearray(base_mac[-4:])
    low[3] = (low[3] + 2) & 0xFF
    return int.from_bytes(low, "big")


def run(config_path="/config.json"):
    cfg, error = load_config(config_path)
    from clipfw.app import App, make_buffers

    buffers = make_buffers(cfg)  # first, while the heap is still in one piece
    import machine
    from machine import I2C, Pin

    from clipfw.flashlog import FlashLog
    from clipfw.haptics import Haptics
    from clipfw.imu import open_imu

    cause = machine.reset_cause()
    i2c = I2C(cfg["i2c_bus"], sda=Pin(cfg["i2c_sda_pin"]), scl=Pin(cfg["i2c_scl_pin"]), freq=cfg["i2c_freq_hz"])
    imu = open_imu(i2c, cfg["imu_address"], cfg["imu"])  # ImuError: the clip stays at the REPL, saying why
    wdt = machine.WDT(timeout=WDT_MS)
    haptics = Haptics(cfg["haptic_pin"], cfg["haptic_pwm_hz"], cfg["haptic_intensity_pct"])
    if cfg["link"] == "usb":
        import select
        import sys

        from clipfw.serial_link import SerialLink

        poller = select.poll()
        poller.register(sys.stdin, select.POLLIN)
        link = SerialLink(sys.stdout.buffer, sys.stdin.buffer, poller)
        clip_id = bluetooth_clip_id(machine.unique_id())
    else:
        from clipfw.ble_link import BleLink

        link = BleLink(cfg["clip_name"], FW_VERSION, secrets_path="/bonds.bin")
        clip_id = link.clip_id
    session = next_session_id(cfg["log_dir"], clip_id)
    store = backfill_dir(cfg)
    from clipfw.backfill import flash_bytes

    reserve = flash_bytes(cfg["backfill_s"], cfg["sample_rate_hz"], cfg["samples_per_packet"]) if store else 0
    log = FlashLog(cfg["log_dir"], clip_id, session, FW_VERSION, time.ticks_ms, reserve_bytes=reserve)
    from clipfw.battery import Battery

    app = App(cfg, imu, link, clip_id=clip_id, session_id=session, haptics=haptics, backfill_dir=store,
              buffers=buffers, log=log, battery=Battery(cfg["battery_adc_pin"]), reset_cause=cause)
    if error:
        app._status(P.STATUS_CONFIG_ERROR, 0)
    if log.error:
        app._status(P.STATUS_FLASH_FULL, 0)
    loop(app, wdt)


def _close(app):
    try:
        app.close()
    except Exception:  # noqa: BLE001  (a failing flash must not keep the clip from stopping)
        pass


def loop(app, wdt):
    """Pass after pass until Ctrl-C; errors are reported and survived (module docstring)."""
    import machine

    failures = 0
    try:
        while True:
            wdt.feed()
            try:
                app.poll()
                failures = 0
                time.sleep_ms(POLL_MS)  # (scheduled callbacks run here: one that raises is a failed pass too)
            except Exception:  # noqa: BLE001  (KeyboardInterrupt is not an Exception: Ctrl-C still stops)
                failures += 1
                app.recovered(P.ERROR_LOOP)
                if failures >= MAX_FAILED_PASSES:
                    app.recovered(P.ERROR_RESTARTING)
                    _close(app)
                    machine.reset()
                time.sleep_ms(POLL_MS)
    finally:
        _close(app)
        # The watchdog cannot be stopped on the ESP32: feed it from a timer so the REPL (and
        # mpremote copying files) is not reset under the developer's hands.
        machine.Timer(0).init(period=WDT_MS // 4, callback=lambda t: wdt.feed())
