"""The clip's test rig, host side (tests/rig/README.md): the unchanged firmware on MicroPython's
32-bit unix port with its real `bluetooth` (NimBLE) and littlefs, built by `make test` into
build/rig from ../shared/vendor, with stand-ins for the ESP32's hardware (tests/rig/board).

``Board`` is one clip: its flash image (the firmware installed on it as `strideclip flash` would,
compiled by the rig's own mpy-cross), the run its IMU will see, and its boots.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from strideclip.device import clipbuild

REPO = Path(__file__).resolve().parents[2]
RIG_BUILD = REPO / "build" / "rig"
BOARD_DIR = Path(__file__).resolve().parent / "board"
MARCH = "x86"  # the rig's 32-bit interpreter: viper code as 32-bit words, like the ESP32's xtensawin
# machine.reset_cause() values on the ESP32 port
PWRON_RESET, HARD_RESET, WDT_RESET, SOFT_RESET = 1, 2, 3, 5
HEAP = "160k"  # the clip's 96 kB, the stand-ins, and a ballast that makes up the difference
CLIP_HEAP_BYTES = 96 * 1024


def unavailable() -> str | None:
    """Why the rig cannot run here, or None."""
    if (RIG_BUILD / "micropython").exists() and (RIG_BUILD / "mpy-cross").exists():
        return None
    why = RIG_BUILD / "UNAVAILABLE"
    reason = why.read_text().strip() if why.exists() else "it has not been built (make rig)"
    return f"the clip's test rig (build/rig) is not available: {reason}"


def micropython() -> str:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    return str(RIG_BUILD / "micropython")


@functools.cache
def bare_heap_bytes() -> int:
    """What an empty interpreter holds of the heap: the clip has it too, so it is not a stand-in's."""
    out = subprocess.run([micropython(), "-X", f"heapsize={HEAP}", "-c", "import gc\ngc.collect()\nprint(gc.mem_alloc())"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


def build_firmware(dest: Path) -> Path:
    """firmware/ and shared/clipcore compiled by the rig's mpy-cross, laid out as on the clip's
    flash (what `strideclip flash` copies): dest/clipcore, dest/clipfw, dest/main.py."""
    micropython()
    dest.mkdir(parents=True, exist_ok=True)
    clipbuild.compile_tree(REPO / "shared" / "clipcore", dest / "clipcore", MARCH, exe=str(RIG_BUILD / "mpy-cross"))
    clipbuild.compile_tree(REPO / "firmware" / "clipfw", dest / "clipfw", MARCH, exe=str(RIG_BUILD / "mpy-cross"))
    shutil.copy(REPO / "firmware" / "main.py", dest / "main.py")
    return dest


@dataclass
class Boot:
    """What one boot of the clip left: its report (tests/rig/board/rigcore.py), what it wrote to
    its USB serial port (stdout) and its stderr."""
    report: dict
    serial: bytes
    stderr: str
    returncode: int
    opts: dict = field(default_factory=dict)

    @property
    def how(self) -> str:
        return self.report.get("end", "none")

    def motor_on_ms(self) -> list[tuple[float, float]]:
        """When the motor was on (ms since boot), rebuilt from what the RMT was told."""
        return rmt_pulses(self.report.get("rmt", []), self.report.get("t_ms", 0))


def rmt_pulses(log: list[dict], end_ms: float) -> list[tuple[float, float]]:
    """The on-spans (start, end) in ms that an ESP32 RMT plays from its log of trains
    (tests/rig/board/esp32.py): a loop repeats its train back to back with one idle tick between
    iterations until stopped (loop(False) lets the iteration in progress finish; deinit() cuts
    at once); a plain train plays once."""
    spans: list[tuple[float, float]] = []
    for e in log:
        tick_us = e["clock_div"] / 80.0  # 80 MHz source
        start = e["start_us"]
        cut = e["stop_us"] if e["stop"] == "deinit" else None
        train = [(d * tick_us, lvl) for d, lvl in zip(e["durations"], e["levels"])]
        length = sum(d for d, _ in train) + (tick_us if e["loop"] else 0)
        last_start = (e["stop_us"] if e["stop"] == "loop_end" else cut if cut is not None else end_ms * 1000) \
            if e["loop"] else start
        t0 = start
        while t0 <= last_start and (cut is None or t0 < cut):
            t = t0
            for d, lvl in train:
                if lvl:
                    a, b = t, t + d
                    if cut is not None:
                        b = min(b, cut)
                    if a < b and (cut is None or a < cut):
                        spans.append((a / 1000, b / 1000))
                t += d
            if not e["loop"]:
                break
            t0 += length
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1e-6:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def catches_sigint(pid: int) -> bool:
    """Whether the interpreter turns SIGINT into KeyboardInterrupt: true until the firmware calls
    micropython.kbd_intr(-1) (the unix port then restores the default action)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (2 - 1)))


def usb_rx(pid: int, data: bytes, write) -> None:
    """Bytes arriving on the ESP32's USB serial port: its receive interrupt turns a 0x03 into
    KeyboardInterrupt (and drops it) unless kbd_intr(-1) was called; the rest reaches stdin."""
    start = 0
    for i, b in enumerate(data):
        if b == 3 and catches_sigint(pid):
            if i > start:
                write(data[start:i])
            os.kill(pid, 2)
            start = i + 1
    if start < len(data):
        write(data[start:])


class Lockstep:
    """The host side of a USB serial link in simulated time: the board says its time at each pass
    of its loop; the bytes a host sends by then are written to its stdin first (through usb_rx)."""

    def __init__(self, folder: Path, inputs: list[tuple[float, bytes]]):
        self.inputs = sorted(inputs, key=lambda x: x[0])
        self.to_host, self.to_rig = folder / "to_host", folder / "to_rig"
        for p in (self.to_host, self.to_rig):
            p.unlink(missing_ok=True)
            os.mkfifo(p)
        self.stdin_r, self.stdin_w = os.pipe()
        self.thread = None

    def start(self, proc: subprocess.Popen) -> None:
        import threading

        os.close(self.stdin_r)
        self.thread = threading.Thread(target=self._serve, args=(proc,), daemon=True)
        self.thread.start()

    def _serve(self, proc) -> None:
        k = 0
        with open(self.to_host, "r") as inp, open(self.to_rig, "w") as out:
            for line in inp:
                t_ms = int(line)
                while k < len(self.inputs) and self.inputs[k][0] * 1000 <= t_ms:
                    try:
                        usb_rx(proc.pid, self.inputs[k][1], lambda b: os.write(self.stdin_w, b))
                    except OSError:
                        pass
                    k += 1
                try:
                    out.write("ok\n")
                    out.flush()
                except OSError:
                    break
        os.close(self.stdin_w)


class Board:
    """One clip: a folder on the host with its flash image and what each boot needs."""

    def __init__(self, folder: Path, firmware: Path | None = None, config: dict | None = None):
        self.exe = micropython()
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        if firmware is not None:
            self.install(firmware, config)

    def _fs(self, *args: str) -> str:
        done = subprocess.run([self.exe, "-X", "heapsize=4M", str(BOARD_DIR / "rigfs.py"), str(self.dir), str(BOARD_DIR),
                               *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"rigfs {args} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def install(self, firmware: Path, config: dict | None = None) -> None:
        """A blank chip, formatted, with the firmware and the config on it."""
        put = self.dir / "put"
        shutil.rmtree(put, ignore_errors=True)
        shutil.copytree(firmware, put)
        if config is not None:
            (put / "config.json").write_text(json.dumps(config))
        self._fs("install")

    def put(self, files: dict[str, bytes]) -> None:
        put = self.dir / "put"
        shutil.rmtree(put, ignore_errors=True)
        for name, data in files.items():
            (put / name).parent.mkdir(parents=True, exist_ok=True)
            (put / name).write_bytes(data)
        self._fs("put")

    def pull(self, path: str) -> dict[str, bytes]:
        """The files at path on the clip's flash (a file or a folder), by name."""
        out = self.dir / "pull"
        shutil.rmtree(out, ignore_errors=True)
        self._fs("pull", path)
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())} if out.exists() else {}

    def listing(self) -> str:
        return self._fs("check")

    def ls(self, path: str) -> dict[str, int]:
        """Names and sizes in a folder of the clip's flash (mounted, never formatted)."""
        return {line.split()[0]: int(line.split()[1]) for line in self._fs("ls", path).splitlines() if line.strip()}

    def boot(self, counts: np.ndarray | None = None, *, timeout_s: float = 600, usb_in: list | None = None,
             stdin=subprocess.DEVNULL, stdout=None, env: dict | None = None, popen: bool = False, **opts):
        """Boot the clip once; counts is the run its IMU sees from the start of this boot.
        usb_in: [(t_s, bytes)] a host writes to its USB serial port at those board times (lockstep).
        Its USB serial output goes to serial.bin unless stdout is given. Returns a Boot (or the
        process, with popen=True)."""
        if counts is not None:
            np.ascontiguousarray(counts, dtype="<i2").tofile(self.dir / "counts.bin")
        opts.setdefault("bare_bytes", bare_heap_bytes())
        opts.setdefault("clip_heap_bytes", CLIP_HEAP_BYTES)
        (self.dir / "report.json").unlink(missing_ok=True)
        lockstep = None
        if usb_in is not None:
            lockstep = Lockstep(self.dir, usb_in)
            opts["lockstep"] = True
            stdin = lockstep.stdin_r
        heapsize = opts.pop("heapsize", HEAP)
        (self.dir / "opts.json").write_text(json.dumps(opts))
        serial_path = self.dir / "serial.bin"
        out = stdout if stdout is not None else open(serial_path, "wb")
        cmd = [self.exe, "-X", f"heapsize={heapsize}", str(BOARD_DIR / "rigboot.py"), str(self.dir), str(BOARD_DIR)]
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
        if lockstep:
            lockstep.start(proc)
        if stdout is None:
            out.close()
        if popen:
            return proc
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"the clip did not finish in {timeout_s} s:\n{err.decode(errors='replace')[-3000:]}")
        return self.result(proc.returncode, err.decode(errors="replace"), serial_path if stdout is None else None, opts)

    def result(self, returncode: int, stderr: str, serial_path: Path | None = None, opts: dict | None = None) -> Boot:
        report_path = self.dir / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        serial = serial_path.read_bytes() if serial_path and serial_path.exists() else b""
        return Boot(report, serial, stderr, returncode, opts or {})


BASE_MAC = (0x24, 0x0A, 0xC4, 0x51, 0xA0, 0x00)  # the clip's eFuse MAC (machine.unique_id())
BT_ADDRESS = "24:0A:C4:51:A0:02"  # ESP-IDF: the Bluetooth address is the base MAC + 2
CLIP_ID = 0xC451A002  # the low 32 bits of the Bluetooth address


class BleClip:
    """A clip on the rig over BLE: its controller on the air (tests/rig/air.py) and its boots,
    each a process of the rig's interpreter on the real clock (NimBLE needs real time). A boot
    ends with the power (end_ms) or when killed (a power cut); another boot of the same board is
    the clip after a reboot, with what its flash kept."""

    def __init__(self, air, board: Board):
        self.air = air
        self.board = board
        self.controller = None
        self.proc = None

    async def boot(self, counts: np.ndarray | None, **opts) -> None:
        import asyncio

        if self.controller is None:
            self.controller, self.hci_path = await self.air.clip_controller(BT_ADDRESS + "/P")
        opts.setdefault("clock", "real")
        opts.setdefault("base_mac", list(BASE_MAC))
        self.proc = await asyncio.to_thread(self.board.boot, counts, popen=True,
                                            env={"MICROPYBTUART": self.hci_path}, **opts)

    async def finish(self, timeout_s: float = 900) -> Boot:
        """Wait for this boot to end (its end_ms, or a reset): what it left."""
        import asyncio

        proc = self.proc
        _, err = await asyncio.wait_for(asyncio.to_thread(proc.communicate), timeout_s)
        return self.board.result(proc.returncode, err.decode(errors="replace"))

    async def power_cut(self) -> Boot:
        """The battery is pulled: the process dies where it stands."""
        self.proc.kill()
        return await self.finish(30)


def run_async(main):
    """asyncio.run(main) in a thread of its own: a Playwright session elsewhere in this process
    (the page tests) keeps an event loop in the main thread, where asyncio.run refuses to start."""
    import asyncio
    import threading

    out: dict = {}

    def target():
        try:
            out["value"] = asyncio.run(main)
        except BaseException as e:  # noqa: BLE001  (raised again in the caller's thread)
            out["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
