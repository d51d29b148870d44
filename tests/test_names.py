"""Every name the code uses is defined: pyflakes over the firmware, clipcore, the host and the
rig's stand-ins (some of them run only inside the rig's interpreter)."""
import subprocess
import sys

from mpy import REPO


def test_no_undefined_names():
    done = subprocess.run([sys.executable, "-m", "pyflakes", "firmware", "shared", "host", "bench", "tests/blesim",
                           "tests/rig"],
                          cwd=REPO, capture_output=True, text=True)
    undefined = [line for line in done.stdout.splitlines()
                 if ("undefined name" in line and "unable to detect" not in line
                     and "undefined name 'ptr8'" not in line)  # (viper's builtin in the rig's stand-ins)
                 or ("may be undefined" in line and "star imports" not in line)]
    assert undefined == [], "\n".join(undefined)
