"""What a BLE scan shows of a clip: its advertising and scan-response bytes (AD structures,
Bluetooth Core Specification Supplement, part A). Built here once for the firmware
(clipfw.ble_link) and the simulated clip in the tests; the host reads them through bleak.
Kept apart from wire.py so a clip on USB serial does not load it."""
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x

AD_FLAGS = const(0x01)
AD_UUID128_COMPLETE = const(0x07)
AD_NAME_COMPLETE = const(0x09)
AD_SERVICE_DATA16 = const(0x16)
BATTERY_SERVICE_UUID16 = const(0x180F)
CLIP_NAME_MAX = const(20)  # scan response: name (2 + 20) + battery service data (5) <= 31 bytes


def uuid128_le(uuid_str):
    """A 128-bit UUID string as the 16 little-endian bytes BLE carries."""
    b = bytes.fromhex(uuid_str.replace("-", ""))
    return bytes(b[15 - i] for i in range(16))


def advertising_payload(uuid_str):
    """Flags (LE general discoverable, no BR/EDR) and the complete 128-bit service UUID list,
    which hosts filter on: 21 of 31 bytes."""
    return bytes((2, AD_FLAGS, 0x06, 17, AD_UUID128_COMPLETE)) + uuid128_le(uuid_str)


def scan_response(name, battery_pct):
    """The clip's name and its charge as Battery-service data, for active scanners: a scan
    lists clips with their battery without connecting. At most 27 of 31 bytes."""
    name_b = name.encode()[:CLIP_NAME_MAX]
    return (bytes((len(name_b) + 1, AD_NAME_COMPLETE)) + name_b
            + bytes((4, AD_SERVICE_DATA16, BATTERY_SERVICE_UUID16 & 0xFF, BATTERY_SERVICE_UUID16 >> 8, battery_pct)))
