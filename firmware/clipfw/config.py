"""The clip's configuration: a JSON file on the clip (/config.json), checked at boot.

Every key has a default matching hardware/ (an ESP32 DevKit with the IMU on I2C0 and a
vibration motor on a PWM pin). "board" picks another supported board's pins (BOARDS, the pin
tables in hardware/wiring.md); keys given in the file win over both. A file may give any subset. A wrong value is refused with a
ConfigError naming the key and what is allowed; the caller keeps running on the previous
configuration (at boot: the defaults) and reports the error.
"""
import json

DEFAULTS = {
    "board": "esp32-devkitc",  # the pin defaults below; see BOARDS
    "clip_name": "StrideClip",  # advertised name (BLE), at most 20 characters
    "link": "ble",  # "ble": the GATT service; "usb": frames on the USB serial port (wired lab use)
    "imu": "auto",  # "auto" (probe WHO_AM_I), "lsm6dsox", "lsm6ds3trc"
    "i2c_bus": 0,
    "i2c_sda_pin": 21,
    "i2c_scl_pin": 22,
    "i2c_freq_hz": 400000,
    "imu_address": 0x6A,  # 0x6A with SA0 low, 0x6B high
    "sample_rate_hz": 208,
    "accel_fs_g": 16,
    "gyro_fs_dps": 2000,
    "samples_per_packet": 19,  # 19 fills one notification at MTU 247
    "haptic_pin": 25,
    "haptic_pwm_hz": 20000,  # the RMT carrier's frequency during a pulse (its duty: the intensity)
    "haptic_intensity_pct": 80,
    "battery_adc_pin": 35,  # through a 1:2 divider
    "backfill_s": 60,  # the last this many seconds can be sent again
    "standalone_cues": True,  # run the cue policy on the clip when no host is connected
    "log_dir": "/logs",  # flash logging without a host
}

# Pin defaults per supported board (hardware/wiring.md; tests/test_hardware_docs.py checks both).
BOARDS = {
    "esp32-devkitc": {"i2c_sda_pin": 21, "i2c_scl_pin": 22, "haptic_pin": 25, "battery_adc_pin": 35},
    "xiao-esp32s3": {"i2c_sda_pin": 5, "i2c_scl_pin": 6, "haptic_pin": 2, "battery_adc_pin": 1},
}

ALLOWED = {
    "board": tuple(BOARDS),
    "imu": ("auto", "lsm6dsox", "lsm6ds3trc"),
    "link": ("ble", "usb"),
    "sample_rate_hz": (104, 208, 416),
    "accel_fs_g": (2, 4, 8, 16),
    "gyro_fs_dps": (250, 500, 1000, 2000),
    "i2c_freq_hz": (100000, 400000, 1000000),
    "imu_address": (0x6A, 0x6B),
    "i2c_bus": (0, 1),
}

RANGES = {  # key: (lowest, highest) for integers
    "i2c_sda_pin": (0, 48),
    "i2c_scl_pin": (0, 48),
    "haptic_pin": (0, 48),
    "battery_adc_pin": (0, 48),
    "samples_per_packet": (1, 19),
    "haptic_pwm_hz": (2000, 40000),  # the RMT carrier's 16-bit halves hold any duty 1..99 % here
    "haptic_intensity_pct": (1, 100),
    "backfill_s": (10, 600),
}


class ConfigError(ValueError):
    def __init__(self, key, message):
        super().__init__("config %s: %s" % (key, message))
        self.key = key


def check(key, value):
    """Return the value if it is allowed for key, else raise ConfigError."""
    if key not in DEFAULTS:
        raise ConfigError(key, "unknown key (known: %s)" % ", ".join(sorted(DEFAULTS)))
    default = DEFAULTS[key]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, "must be true or false, got %r" % (value,))
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, "must be an integer, got %r" % (value,))
    elif not isinstance(value, str):
        raise ConfigError(key, "must be a string, got %r" % (value,))
    if key in ALLOWED and value not in ALLOWED[key]:
        raise ConfigError(key, "%r is not one of %s" % (value, ", ".join(repr(v) for v in ALLOWED[key])))
    if key in RANGES:
        lo, hi = RANGES[key]
        if not lo <= value <= hi:
            raise ConfigError(key, "%d is outside %d..%d" % (value, lo, hi))
    if key == "clip_name" and not 1 <= len(value) <= 20:
        raise ConfigError(key, "must be 1..20 characters")
    return value


def validate(cfg):
    """A full configuration from a dict of overrides: defaults for what is missing."""
    out = dict(DEFAULTS)
    if "board" in cfg:
        out.update(BOARDS[check("board", cfg["board"])])
    for key in cfg:
        out[key] = check(key, cfg[key])
    if out["i2c_sda_pin"] == out["i2c_scl_pin"]:
        raise ConfigError("i2c_scl_pin", "must differ from i2c_sda_pin")
    if out["haptic_pin"] in (out["i2c_sda_pin"], out["i2c_scl_pin"]):
        raise ConfigError("haptic_pin", "is already used by the I2C bus")
    return out


def load(path="/config.json"):
    """The configuration in the file; the defaults if there is no file. A file that is not
    JSON, or not an object, is a ConfigError naming the file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return dict(DEFAULTS)
    try:
        cfg = json.loads(text)
    except ValueError:
        raise ConfigError(path, "is not valid JSON")
    if not isinstance(cfg, dict):
        raise ConfigError(path, "must hold a JSON object")
    return validate(cfg)


def unload():
    """Forget this module once the configuration is read: its tables are boot-time only, and
    the clip's RAM is better spent on buffers (the caller drops its own reference too)."""
    import sys

    import clipfw

    sys.modules.pop("clipfw.config", None)
    if "config" in clipfw.__dict__:
        del clipfw.__dict__["config"]
