"""``strideclip flash``: put the firmware on a clip that already runs MicroPython.

Asks the clip which .mpy version and native architecture its MicroPython takes
(``sys.implementation._mpy``) and refuses one that this mpy-cross cannot compile for: the step
detector is viper code, and a native .mpy of another sub-version does not even import
("incompatible .mpy file"). Then compiles firmware/ and shared/clipcore for the clip's
architecture (xtensawin on an ESP32, via ``strideclip.device.clipbuild``), checks an optional config
file with the clip's own checks (firmware/clipfw/config.py, loaded here unchanged), and copies
everything with mpremote. Flashing MicroPython itself is a one-off with esptool:
firmware/README.md. A clip running the app on its USB link ignores a single Ctrl-C (a byte of
a command can be 0x03), so the app is first stopped with three.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from strideclip.device import clipbuild
from strideclip.errors import ConfigError, DeviceError

FIRMWARE = clipbuild.REPO / "firmware"


def clip_config_module() -> ModuleType:
    """firmware/clipfw/config.py as a host module: the one implementation of the checks."""
    spec = importlib.util.spec_from_file_location("clip_config", FIRMWARE / "clipfw" / "config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_config(path: str | Path) -> dict:
    """The clip's full configuration from a JSON file of overrides, or ConfigError."""
    cfg_mod = clip_config_module()
    try:
        overrides = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable JSON file ({e})", key=str(path)) from e
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: must hold a JSON object", key=str(path))
    try:
        return cfg_mod.validate(overrides)
    except cfg_mod.ConfigError as e:
        raise ConfigError(f"{path}: {e}", key=e.key) from e


# sys.implementation._mpy: bits 0-7 the .mpy version, 8-9 its sub-version, 10-15 the native
# architecture (py/persistentcode.h); mpy-cross names the architectures so.
MARCH = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp", 8: "armv7emdp",
         9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


def mpy_cross_version(exe: str | None = None) -> tuple[int, int]:
    """(version, sub-version) of the .mpy files this mpy-cross writes ("emitting mpy v6.3")."""
    import re

    out = subprocess.run([exe or clipbuild.mpy_cross(), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise DeviceError(f"cannot tell which .mpy version mpy-cross writes: {out.strip()!r}")
    return int(m.group(1)), int(m.group(2))


def march_for(board_mpy: int, compiler: tuple[int, int], port: str = "") -> str:
    """The -march for a clip whose MicroPython reports sys.implementation._mpy = board_mpy, or
    DeviceError naming both versions if this compiler's .mpy files would not load on it."""
    version, sub, arch = board_mpy & 0xFF, (board_mpy >> 8) & 3, (board_mpy >> 10) & 0x0F
    if (version, sub) != compiler:
        raise DeviceError(f"the clip on {port} runs a MicroPython that loads .mpy v{version}.{sub}, but this "
                          f"mpy-cross writes v{compiler[0]}.{compiler[1]}: flash the MicroPython firmware/README.md "
                          f"names (v1.26.1), or install the mpy-cross that matches the clip's", port=port)
    if arch not in MARCH:
        raise DeviceError(f"the clip on {port} runs a MicroPython without native code (architecture {arch}): the "
                          f"step detector is viper code and needs a port that runs it (ESP32: xtensawin)", port=port)
    return MARCH[arch]


def stop_app(port: str) -> None:
    """Three Ctrl-C: a clip on its USB link leaves for the REPL (firmware/clipfw/serial_link.py)."""
    import time

    import serial

    try:
        with serial.Serial(port, 115200, timeout=0.2) as s:
            s.write(b"\r\x03\x03\x03")
            s.flush()
            time.sleep(0.3)
            s.reset_input_buffer()
    except (serial.SerialException, OSError) as e:
        raise DeviceError(f"cannot open {port}: {e}", port=port) from e


def board_mpy(port: str) -> int:
    """sys.implementation._mpy of the clip's MicroPython (through mpremote)."""
    done = subprocess.run(mpremote() + ["connect", port, "resume", "exec",
                                        "import sys; print('MPY', getattr(sys.implementation, '_mpy', 0))"],
                          capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        if line.startswith("MPY "):
            return int(line.split()[1])
    raise DeviceError(f"the clip on {port} did not say which .mpy files it takes: "
                      f"{(done.stderr or done.stdout).strip()}", port=port)


def mpremote() -> list[str]:
    return [clipbuild.flash_tool("mpremote")]


def copy_commands(port: str, build: Path, config: Path | None, reset: bool = True) -> list[list[str]]:
    """The mpremote calls that put the build on the clip, in order. "resume": mpremote
    interrupts the running app (Ctrl-C) without a soft reset first."""
    base = ["connect", port, "resume"]
    # ":." is the working directory: "/" on the clip after boot
    cmds = [base + ["fs", "cp", "-r", str(build / "shared" / "clipcore"), str(build / "fw" / "clipfw"), ":."]]
    cmds.append(base + ["fs", "cp", str(FIRMWARE / "main.py"), ":main.py"])
    if config is not None:
        cmds.append(base + ["fs", "cp", str(config), ":config.json"])
    if reset:
        cmds.append(base + ["reset"])
    return cmds


def flash(port: str, *, config_path: str | None = None, dry_run: bool = False, reset: bool = True,
          echo: Callable[[str], None] = print) -> list[list[str]]:
    """Check, build, copy. With dry_run, print what would be run and touch no device (the
    build is then for an ESP32's xtensawin)."""
    if config_path:
        check_config(config_path)
        echo(f"config {config_path}: accepted by the clip's checks")
    if not dry_run and not os.path.exists(port):
        raise DeviceError(f"no device at {port}: is the clip plugged in, and is that its port?", port=port)
    compiler = mpy_cross_version()
    if dry_run:
        march = "xtensawin"
    else:
        stop_app(port)
        march = march_for(board_mpy(port), compiler, port)
    with tempfile.TemporaryDirectory() as tmp:
        build = clipbuild.build(Path(tmp), march=march)
        files = sorted(p.relative_to(build) for p in build.rglob("*.mpy"))
        echo(f"compiled {len(files)} files for the clip (mpy-cross -march={march}, .mpy v{compiler[0]}.{compiler[1]})")
        cmds = copy_commands(port, build, Path(config_path) if config_path else None, reset)
        for cmd in cmds:
            echo("mpremote " + " ".join(cmd))
            if dry_run:
                continue
            done = subprocess.run(mpremote() + cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise DeviceError(f"mpremote failed on {port}: {(done.stderr or done.stdout).strip()}", port=port)
    return cmds


def sync(port: str, out_dir: str | Path, *, delete: bool = False, echo: Callable[[str], None] = print) -> list[Path]:
    """Fetch the session logs the clip wrote to its flash (``/logs``) over USB serial, check each
    one reads cleanly, and with delete remove from the clip only those that did."""
    from strideclip.stream.sclog import load_log

    if not os.path.exists(port):
        raise DeviceError(f"no device at {port}: is the clip plugged in, and is that its port?", port=port)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stop_app(port)  # (the app closes the log it writes, so it is whole)
    base = mpremote() + ["connect", port, "resume"]
    listing = subprocess.run(base + ["fs", "ls", ":logs"], capture_output=True, text=True)
    if listing.returncode != 0:
        if "ENOENT" in listing.stderr or "No such" in listing.stderr or "not exist" in listing.stderr:
            echo("no logs on the clip")
            return []
        raise DeviceError(f"mpremote failed on {port}: {listing.stderr.strip()}", port=port)
    names = [line.split()[-1] for line in listing.stdout.splitlines() if line.strip().endswith(".sclog")]
    fetched = []
    for name in names:
        dest = out_dir / name
        if dest.exists():
            raise DeviceError(f"{dest} exists; a session log is never overwritten", port=port)
        done = subprocess.run(base + ["fs", "cp", f":logs/{name}", str(dest)], capture_output=True, text=True)
        if done.returncode != 0:
            raise DeviceError(f"copying {name} from {port} failed: {done.stderr.strip()}", port=port)
        log = load_log(dest)
        echo(f"{name}: {len(log.counts)} samples, {log.duration_s:.0f} s, {log.report.summary()}")
        fetched.append(dest)
        if delete and log.report.clean:
            subprocess.run(base + ["fs", "rm", f":logs/{name}"], capture_output=True, text=True, check=True)
    return fetched
