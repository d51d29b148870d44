"""The clip's whole loop on the rig (tests/rig/README.md): the unchanged firmware on MicroPython's
32-bit unix port (the ESP32's int width and viper words), FIFO read -> packets -> step detector
-> cue policy -> framing -> USB serial, as a callgrind instruction count per sample; with bytes
and frames per second on the link, the I2C and flash time the clip waited, and its heap.

The emulated chip and the rig's stand-ins are Python on this interpreter but hardware on a clip:
the same boot running only the firmware's FIFO driver (imu_only) is the baseline, and app cost =
full - baseline. The board is the XIAO ESP32S3 (PSRAM: the backfill store in RAM), so no flash
emulation enters the count; the DevKitC's flash store costs the flash time printed (CPU stalled),
not instructions. Method for counts: DESIGN.md (two lengths, difference over the difference in
samples; ~50-75 instructions per us on an ESP32 at 240 MHz). Run: .venv/bin/python bench/bench_clip_loop.py
"""
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import rig as R  # noqa: E402

from strideclip.sim import simulate, steady_run  # noqa: E402

PSRAM = {"heapsize": "2300k", "clip_heap_bytes": 2 * 1024 * 1024}


def boot(board: R.Board, counts, rate: int, callgrind: bool, **opts) -> tuple[R.Boot, int]:
    """One boot over counts; (its result, the instructions callgrind counted or 0)."""
    end_ms = len(counts) * 1000 // rate + 300
    if not callgrind:
        return board.boot(counts, end_ms=end_ms, rate_hz=rate, **opts), 0
    import os

    wrapper = board.dir / "valgrind.sh"  # the rig's interpreter, run under callgrind
    wrapper.write_text(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=/dev/null {board.exe} "$@" '
                       f'2>{board.dir}/cg.txt\n')
    os.chmod(wrapper, 0o755)
    exe, board.exe = board.exe, str(wrapper)
    try:
        result = board.boot(counts, end_ms=end_ms, rate_hz=rate, end="interrupt", **opts)  # (a clean exit: callgrind reports)
    finally:
        board.exe = exe
    text = (board.dir / "cg.txt").read_text()
    return result, int(re.search(r"Collected\s*:\s*(\d+)", text).group(1))


def count_frames(data: bytes) -> int:
    n = pos = 0
    while pos + 4 <= len(data):
        length = struct.unpack_from("<H", data, pos + 2)[0]
        pos += 6 + length
        n += 1
    return n


def measure(rate: int, minutes: float = 1.5, callgrind: bool = True, board_name: str = "xiao-esp32s3") -> dict:
    """Figures for one rate (also used by hardware/power_budget.py for the link traffic)."""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        firmware = R.build_firmware(tmp / "fw")
        cfg = {"link": "usb", "sample_rate_hz": rate, "board": board_name}
        board = R.Board(tmp / "clip", firmware, cfg)
        sim = simulate(steady_run(minutes, seed=3, rate_hz=rate)).counts
        out = {"rate_hz": rate}
        if callgrind:
            n1, n2 = 20 * rate, 60 * rate
            (_, i1), (_, i2) = (boot(board, sim[:n], rate, True, **PSRAM) for n in (n1, n2))
            (_, b1), (_, b2) = (boot(board, sim[:n], rate, True, firmware="imu_only", **PSRAM) for n in (n1, n2))
            out["full_per_sample"] = (i2 - i1) / (n2 - n1)
            out["baseline_per_sample"] = (b2 - b1) / (n2 - n1)
            out["app_per_sample"] = out["full_per_sample"] - out["baseline_per_sample"]
        board = R.Board(tmp / "devkit", firmware, dict(cfg, board="esp32-devkitc"))
        run, _ = boot(board, sim, rate, False)
        seconds = len(sim) / rate
        out["frames_per_s"] = count_frames(run.serial) / seconds
        out["bytes_per_s"] = len(run.serial) / seconds
        out["i2c_busy_pct"] = 100 * run.report["i2c_busy_ms"] / run.report["t_ms"]
        out["flash_busy_pct"] = 100 * run.report["flash"]["busy_ms"] / run.report["t_ms"]
        out["heap_free_kb"] = run.report["mem_free"] / 1024
        return out


def main() -> None:
    if not shutil.which("valgrind"):
        sys.exit("needs valgrind")
    if R.unavailable():
        sys.exit(R.unavailable())
    for rate in (104, 208, 416):
        m = measure(rate)
        app = m["app_per_sample"]
        print(f"{rate} Hz: whole loop {app:.0f} host instructions per sample without the emulated FIFO "
              f"({m['full_per_sample']:.0f} with it) -> {app / 75:.0f}-{app / 50:.0f} us per sample on an ESP32, "
              f"{app / 75 * rate / 1e4:.1f}-{app / 50 * rate / 1e4:.1f} % of the CPU (32-bit rig)")
        print(f"        {m['bytes_per_s']:.0f} bytes/s and {m['frames_per_s']:.1f} frames/s on the link "
              f"(one notification per frame over BLE; limit 40/s); the clip waited on I2C {m['i2c_busy_pct']:.1f} % "
              f"and on the flash (DevKitC: backfill store on flash) {m['flash_busy_pct']:.1f} % of the time")


if __name__ == "__main__":
    main()
