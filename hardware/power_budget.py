"""The clip's power budget: current per part from datasheets, the link traffic measured by running
the firmware itself, and the battery life that follows (issue #11).

The link traffic (notifications and bytes per second) is measured, not assumed: the firmware runs
on the test rig (tests/rig: MicroPython's 32-bit unix port, emulated chips) over a simulated run
at each rate, as in bench/bench_clip_loop.py, and its frames are counted (one BLE notification
per frame). The
currents are typical datasheet figures (sources in CURRENTS_MA); no clip was on a meter here,
so the hours are estimates with a low and a high case.

Run: .venv/bin/python hardware/power_budget.py [--battery-mah 500] [--json]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
from pathlib import Path

HARDWARE = Path(__file__).resolve().parent
REPO = HARDWARE.parent

# (low, typical, high) mA and where the figure comes from.
CURRENTS_MA = {
    "cpu": ((25.0, 32.0, 45.0), "ESP32-S3 datasheet, modem-sleep at 160 MHz (MicroPython's loop waits in "
                                 "time.sleep_ms; no automatic light sleep)"),
    "radio_tx": ((100.0, 130.0, 130.0), "ESP32 datasheet, Bluetooth LE TX at 0 dBm (the S3 draws no more)"),
    "radio_rx": ((80.0, 95.0, 100.0), "ESP32 datasheet, Bluetooth LE RX"),
    "imu": ((0.55, 0.55, 0.9), "LSM6DSOX 0.55 mA, LSM6DS3TR-C 0.9 mA: combo high-performance mode"),
    "motor": ((60.0, 75.0, 90.0), "10 mm 3 V coin ERM, running current"),
    "board_quiescent": ((0.05, 0.1, 0.3), "regulator, charger and leakage of a mini board (XIAO ESP32S3)"),
    "flash_writes": ((0.2, 0.5, 1.0), "flash log writes in standalone mode, averaged"),
}
DIVIDER_MA = 4.2 / 200e3 * 1e3  # 2 x 100 kOhm across a full cell
CONN_INTERVAL_MS = 30.0  # the host asks for 30 ms (docs/host-link.md); each event: a short exchange
CONN_EVENT_MS = 0.5  # radio on per empty connection event, ramp-up included
LL_OVERHEAD_BYTES = 17  # link-layer + L2CAP + ATT headers and CRC around a notification's payload
ACK_MS = 0.4  # the central's reply and the inter-frame spaces after each notification
ADV_INTERVAL_MS = 100.0  # firmware/clipfw/ble_link.py _ADV_INTERVAL_US
ADV_EVENT_MS = 2.3  # three advertising channels, scan-response windows and ramp-up
HAPTIC_INTENSITY = 0.8  # firmware config haptic_intensity_pct default
BEAT_ON_MS = 45.0  # firmware/clipfw/haptics.py
CUE_SHARE = 0.05  # share of the run with a metronome playing (three one-minute cues an hour)
CUE_TEMPO_SPM = 170.0
USABLE = 0.85  # of the rated capacity: cut-off near 3.5 V where the 3.3 V regulator drops out, ageing
MARATHON_PLUS_H = 6.0


def measure_link(rates=(104, 208, 416), minutes: float = 1.5) -> dict:
    """Frames and bytes per second the firmware sends at each rate (the rig, a simulated run)."""
    spec = importlib.util.spec_from_file_location("bench_clip_loop", REPO / "bench" / "bench_clip_loop.py")
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    out = {}
    for rate in rates:
        m = loop.measure(rate, minutes, callgrind=False)
        out[rate] = {"frames_per_s": m["frames_per_s"], "bytes_per_s": m["bytes_per_s"]}
    return out


def budget_ma(case: int, link: dict | None) -> dict:
    """Average current per item (case 0 low, 1 typical, 2 high); link None: standalone logging
    (advertising, no connection)."""
    c = {k: v[0][case] for k, v in CURRENTS_MA.items()}
    items = {"CPU (MicroPython loop)": c["cpu"], "IMU": c["imu"], "board quiescent": c["board_quiescent"],
             "battery divider": DIVIDER_MA,
             "motor (cues)": c["motor"] * HAPTIC_INTENSITY * BEAT_ON_MS / 1000 * CUE_TEMPO_SPM / 60 * CUE_SHARE}
    if link is None:
        items["radio (advertising)"] = ADV_EVENT_MS / ADV_INTERVAL_MS * (c["radio_tx"] + c["radio_rx"]) / 2
        items["flash log writes"] = c["flash_writes"]
    else:
        tx_s = (link["bytes_per_s"] + LL_OVERHEAD_BYTES * link["frames_per_s"]) * 8e-6  # 1 Mbit/s PHY
        rx_s = link["frames_per_s"] * ACK_MS / 1000 + 1000 / CONN_INTERVAL_MS * CONN_EVENT_MS / 1000
        items["radio (notifications)"] = tx_s * c["radio_tx"] + rx_s * c["radio_rx"]
    return items


def battery_mah_from_bom() -> float:
    with open(HARDWARE / "bom.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["ref"] == "BT1")
    return float(re.search(r"(\d+) mAh", row["part"]).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--battery-mah", type=float, default=None, help="default: the cell in hardware/bom.csv")
    ap.add_argument("--minutes", type=float, default=1.5, help="simulated minutes per rate for the link measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    mah = args.battery_mah or battery_mah_from_bom()
    links = measure_link(minutes=args.minutes)
    modes = {f"streaming at {r} Hz": links[r] for r in links} | {"standalone logging (no host)": None}
    result = {}
    for mode, link in modes.items():
        per_case = [budget_ma(case, link) for case in range(3)]
        totals = [sum(b.values()) for b in per_case]
        result[mode] = {"items_ma": {k: round(v, 3) for k, v in per_case[1].items()},
                        "total_ma": [round(t, 1) for t in totals],
                        "hours": [round(mah * USABLE / t, 1) for t in totals], "link": link}
    if args.json:
        print(json.dumps({"battery_mah": mah, "usable": USABLE, "modes": result}))
        return
    print(f"battery {mah:.0f} mAh, {USABLE:.0%} usable; currents: typical (low-high)")
    for mode, r in result.items():
        link = r["link"]
        said = (f" - link measured: {link['frames_per_s']:.1f} notifications/s, {link['bytes_per_s']:.0f} B/s"
                if link else "")
        print(f"\n{mode}{said}")
        for item, ma in r["items_ma"].items():
            print(f"  {item:26s} {ma:7.2f} mA")
        lo, typ, hi = r["total_ma"]
        h_hi, h_typ, h_lo = r["hours"]
        print(f"  {'total':26s} {typ:7.1f} mA ({lo:.1f}-{hi:.1f}) -> {h_typ:.1f} h ({h_lo:.1f}-{h_hi:.1f} h)"
              f"{'' if h_lo >= MARATHON_PLUS_H else f'  < {MARATHON_PLUS_H:g} h in the worst case'}")


if __name__ == "__main__":
    main()
