"""The clip's whole loop under MicroPython (issue #7): FIFO read -> packets -> step detector ->
cue policy -> framing -> serial, as a callgrind instruction count per sample; with bytes and
notifications per second and the heap in use, at 104, 208 and 416 Hz.

The app runs as in tests/test_firmware.py (mpy files, emulated LSM6DSOX, machine shims). The
emulated chip's own Python costs instructions a real chip does not, so the same run with only
the FIFO read (opts imu_only) is the baseline: app cost = full - baseline. Method for counts:
DESIGN.md (two lengths, difference over the difference in samples; ~50-75 instructions per us on
an ESP32 at 240 MHz). Run: .venv/bin/python bench/bench_clip_loop.py
"""
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from strideclip import clipbuild
from strideclip.sim import simulate, steady_run

REPO = Path(__file__).resolve().parents[1]
# The harness, emulated chip and shims are Python on this heap but C or absent on a clip: they get
# 16 kB on top of the clip's 96 kB, and the clip's own part is reported (as in tests/test_firmware.py).
HEAP = "112k"


def run(tmp: Path, lib: Path, counts: np.ndarray, rate: int, callgrind: bool, **opts) -> tuple[dict, int, int]:
    counts.astype("<i2").tofile(tmp / "c.bin")
    bare = subprocess.run([str(Path(sys.executable).parent / "micropython"), "-c", "import gc\ngc.collect()\nprint(gc.mem_alloc())"],
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    (tmp / "o.json").write_text(json.dumps({"config": {"sample_rate_hz": rate}, "backfill_path": str(tmp / "bf.bin"),
                                            "bare_bytes": int(bare), **opts}))
    micropython = str(Path(sys.executable).parent / "micropython")
    cmd = [micropython, "-X", f"heapsize={HEAP}", "-c", f"import sys; sys.path.insert(0, {str(lib / 'test')!r}); import run_app",
           str(lib), str(tmp / "c.bin"), str(tmp / "out.bin"), str(tmp / "o.json")]
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=run_main*", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = {}
    for line in done.stdout.splitlines():
        key, *values = line.split()
        if len(values) == 1:
            summary[key] = int(values[0])
    instr = int(re.search(r"Collected\s*:\s*(\d+)", done.stderr).group(1)) if callgrind else 0
    frames = (tmp / "out.bin").read_bytes()
    return summary, instr, len(frames)


def count_frames(data: bytes) -> int:
    n = pos = 0
    while pos + 4 <= len(data):
        length = struct.unpack_from("<H", data, pos + 2)[0]
        pos += 6 + length
        n += 1
    return n


def main() -> None:
    if not shutil.which("valgrind"):
        sys.exit("needs valgrind")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        lib = clipbuild.build(tmp / "lib")
        clipbuild.compile_tree(REPO / "tests" / "fw", lib / "test")
        for rate in (104, 208, 416):
            sim = simulate(steady_run(1.5, seed=3, rate_hz=rate)).counts
            n1, n2 = 20 * rate, 60 * rate
            (_, i1, _), (_, i2, _) = (run(tmp, lib, sim[:n], rate, True) for n in (n1, n2))
            (_, b1, _), (_, b2, _) = (run(tmp, lib, sim[:n], rate, True, imu_only=True) for n in (n1, n2))
            full, base = (i2 - i1) / (n2 - n1), (b2 - b1) / (n2 - n1)
            summary, _, nbytes = run(tmp, lib, sim, rate, False)
            seconds = len(sim) / rate
            frames = count_frames((tmp / "out.bin").read_bytes())
            app = full - base
            print(f"{rate} Hz: whole loop {app:.0f} host instructions per sample without the emulated FIFO "
                  f"({full:.0f} with it) -> {app / 75:.0f}-{app / 50:.0f} us per sample on an ESP32, "
                  f"{app / 75 * rate / 1e4:.1f}-{app / 50 * rate / 1e4:.1f} % of the CPU")
            print(f"        {nbytes / seconds:.0f} bytes/s and {frames / seconds:.1f} frames/s on the link "
                  f"(one notification per frame over BLE; limit 40/s), heap in use at the end "
                  f"{(summary['mem_alloc'] - summary['standin_bytes']) / 1024:.0f} kB of 96 kB for the clip's own part "
                  f"(64-bit unix port)")


if __name__ == "__main__":
    main()
