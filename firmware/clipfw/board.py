"""The real clip: wires config, I2C, the IMU, the motor and the USB serial link to the app and
runs the loop. Everything hardware-specific is here, so tests can run the app with shims.
The link is BLE (the GATT service) or, with config "link": "usb", frames on the USB serial port.
Whatever no host received goes to the flash log.
"""
import gc
import select
import sys
import time

from machine import I2C, Pin
from clipcore import wire as P

from clipfw import FW_VERSION, POLL_MS
from clipfw.app import App, make_buffers
from clipfw.haptics import Haptics
from clipfw.imu import open_imu


def load_config(path):
    """The config file, or the defaults if it is refused (the reason is kept on flash). The
    config module is unloaded afterwards: it is needed at boot only."""
    from clipfw import config

    try:
        cfg, error = config.load(path), None
    except config.ConfigError as e:
        with open("/config_error.txt", "w") as f:
            f.write(str(e))
        cfg, error = dict(config.DEFAULTS), e
    config.unload()
    gc.collect()
    return cfg, error


def backfill_path(cfg):
    """RAM when it fits twice over (PSRAM boards), else a file on flash."""
    need = cfg["backfill_s"] * cfg["sample_rate_hz"] * P.SAMPLE_BYTES
    gc.collect()
    return None if gc.mem_free() > 2 * need else "/backfill.bin"


def next_session_id(path="/session.txt"):
    """Each boot is a new session (HELLO, the flash log's name): a counter kept on flash."""
    try:
        with open(path) as f:
            n = int(f.read()) + 1
    except (OSError, ValueError):
        n = 1
    with open(path, "w") as f:
        f.write(str(n))
    return n & 0xFFFF


def run(config_path="/config.json"):
    cfg, error = load_config(config_path)
    buffers = make_buffers(cfg)  # first, while the heap is still in one piece
    from clipfw.flashlog import FlashLog
    import machine

    session = next_session_id()
    clip_id = int.from_bytes(machine.unique_id()[-4:], "big")
    i2c = I2C(cfg["i2c_bus"], sda=Pin(cfg["i2c_sda_pin"]), scl=Pin(cfg["i2c_scl_pin"]), freq=cfg["i2c_freq_hz"])
    imu = open_imu(i2c, cfg["imu_address"], cfg["imu"])
    haptics = Haptics(cfg["haptic_pin"], cfg["haptic_pwm_hz"], cfg["haptic_intensity_pct"])
    if cfg["link"] == "usb":
        from clipfw.serial_link import SerialLink

        poller = select.poll()
        poller.register(sys.stdin, select.POLLIN)
        link = SerialLink(sys.stdout.buffer, sys.stdin.buffer, poller)
    else:
        from clipfw.ble_link import BleLink

        link = BleLink(cfg["clip_name"], clip_id, FW_VERSION, secrets_path="/bonds.bin")
    log = FlashLog(cfg["log_dir"], clip_id, session, FW_VERSION, time.ticks_ms)
    from clipfw.battery import Battery

    app = App(cfg, imu, link, clip_id=clip_id, session_id=session, haptics=haptics,
              backfill_path=backfill_path(cfg), buffers=buffers, log=log, battery=Battery(cfg["battery_adc_pin"]))
    if error:
        app._status(P.STATUS_CONFIG_ERROR, 0)
    while True:
        app.poll()
        time.sleep_ms(POLL_MS)
