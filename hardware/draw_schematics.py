"""Draw the wiring diagram of each supported board as an SVG (hardware/schematic-<board>.svg).

The pin numbers come from the firmware's own board table (firmware/clipfw/config.py BOARDS), so
a diagram can only be drawn for what the firmware uses. tests/test_hardware_docs.py reads the
committed SVGs back and fails if a pin in them differs from the firmware, or if a diagram is
stale. Run: .venv/bin/python hardware/draw_schematics.py
"""
from __future__ import annotations

from html import escape
from pathlib import Path

HARDWARE = Path(__file__).resolve().parent

# What each board calls its pins and where its power comes from.
BOARD_INFO = {
    "esp32-devkitc": {
        "title": "ESP32 DevKitC (ESP32-WROOM-32E): the bench board",
        "labels": {},  # the silkscreen says the GPIO number
        "power": "USB 5 V (bench); for a battery: LiPo -> charger (TP4056) -> switch -> 3.3 V LDO (MCP1700) -> 3V3",
        "battery_node": "5 V (USB) or LiPo +",
    },
    "xiao-esp32s3": {
        "title": "Seeed XIAO ESP32S3: the wearable clip",
        "labels": {1: "D0/A0", 2: "D1", 5: "D4/SDA", 6: "D5/SCL"},
        "power": "LiPo -> SW1 -> BAT+ pad (under the board); the board charges it from USB-C",
        "battery_node": "BAT+ (after SW1)",
    },
}

W, H = 860, 520


def _text(x, y, s, *, size=13, anchor="start", cls=None, attrs="") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}"{c}{attrs} '
            f'font-family="DejaVu Sans, Arial, sans-serif">{escape(s)}</text>')


def _box(x, y, w, h, title, sub="") -> str:
    return (f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="#f7f7f7" stroke="#333" stroke-width="1.5"/>'
            + _text(x + w / 2, y + 20, title, size=14, anchor="middle")
            + (_text(x + w / 2, y + 36, sub, size=10, anchor="middle") if sub else ""))


def _wire(points, colour="#333") -> str:
    pts = " ".join(f"{x},{y}" for x, y in points)
    return f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>'


def draw(board: str, pins: dict) -> str:
    info = BOARD_INFO[board]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           '<rect width="100%" height="100%" fill="white"/>',
           _text(20, 28, f"StrideClip wiring - {info['title']}", size=16),
           _box(40, 60, 220, 380, board, "MCU board")]
    rows = [("3V3", None, 110), ("GND", None, 150), ("i2c_sda_pin", "SDA", 200), ("i2c_scl_pin", "SCL", 240),
            ("haptic_pin", "PWM", 310), ("battery_adc_pin", "ADC", 390)]
    for key, role, y in rows:
        if role is None:
            label = key
            out.append(_text(250, y + 4, label, anchor="end"))
        else:
            gpio = pins[key]
            silk = info["labels"].get(gpio)
            label = f"GPIO{gpio}" + (f" ({silk})" if silk else "")
            out.append(_text(250, y + 4, label, anchor="end", cls="pin",
                             attrs=f' data-key="{key}" data-gpio="{gpio}"'))
        out.append(f'<circle cx="260" cy="{y}" r="3.5" fill="#333"/>')
    # IMU breakout
    out.append(_box(560, 45, 260, 225, "IMU breakout", "LSM6DSOX or LSM6DS3TR-C, 0x6A (SA0 to GND)"))
    for name, y, colour in (("3V3 / VIN", 110, "#c0392b"), ("GND", 150, "#222"), ("SDA", 200, "#2471a3"),
                            ("SCL", 240, "#d68910")):
        out.append(_wire([(260, y), (560, y)], colour))
        out.append(_text(570, y + 4, name))
    out.append(_text(410, 190, "4.7 kOhm pull-ups to 3V3 if the breakout has none", size=10, anchor="middle"))
    # motor driver
    out.append(_box(320, 282, 220, 80, "Q1 AO3400A (N-MOSFET)", "gate <- PWM; R1 100 kOhm gate to GND"))
    out.append(_wire([(260, 310), (320, 310)], "#7d3c98"))
    out.append(_box(600, 290, 220, 80, "M1 coin ERM 10 mm", "D1 1N4148W across it (cathode to +)"))
    out.append(_wire([(540, 330), (600, 330)]))
    out.append(_text(570, 325, "drain", size=10, anchor="middle"))
    out.append(_text(710, 388, f"motor + to {info['battery_node']}", size=11, anchor="middle"))
    # battery divider
    out.append(_box(320, 400, 220, 70, "R2, R3 100 kOhm; C1 100 nF", "midpoint -> ADC; ends: BAT+ and GND"))
    out.append(_wire([(260, 390), (295, 390), (295, 435), (320, 435)], "#148f77"))
    out.append(_box(600, 400, 220, 70, "BT1 LiPo 1S 500 mAh", "SW1 in series with +"))
    out.append(_wire([(540, 435), (600, 435)], "#c0392b"))
    out.append(_text(20, 500, "Power: " + info["power"], size=12))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def boards() -> dict:
    from strideclip.device.flash import clip_config_module

    return clip_config_module().BOARDS


def main() -> None:
    for board, pins in boards().items():
        path = HARDWARE / f"schematic-{board}.svg"
        path.write_text(draw(board, pins))
        print(f"wrote {path.relative_to(HARDWARE.parent)}")


if __name__ == "__main__":
    main()
