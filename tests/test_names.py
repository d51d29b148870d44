"""Every name the code uses is defined: pyflakes over the firmware, clipcore and the host.
Some firmware (firmware/clipfw/board.py: the real board's wiring) runs only on a clip, so no
other test would notice a missing import there."""
import subprocess
import sys

from mpy import REPO


def test_no_undefined_names():
    # (tests/fw/run_app.py is left out: it deletes its big buffers by name to free the heap,
    # which pyflakes reads as a use after del)
    done = subprocess.run([sys.executable, "-m", "pyflakes", "firmware", "shared", "host", "bench", "tests/blesim"],
                          cwd=REPO, capture_output=True, text=True)
    undefined = [line for line in done.stdout.splitlines()
                 if ("undefined name" in line and "unable to detect" not in line)
                 or ("may be undefined" in line and "star imports" not in line)]
    assert undefined == [], "\n".join(undefined)
