"""A real Eclipse Mosquitto for the tests (issue #24, docs/team.md), configured by the real
``strideclip broker-config`` and listening on a free localhost port of its own (never the
system's service, if one runs):

    broker = start_broker(tmp_path, gateways=["gw-a", "gw-b"])   # or the ``mosquitto_broker`` fixture
    broker.url, broker.credentials_path, broker.users["gw-a"]
    broker.stop()   # SIGTERM: mosquitto saves its sessions (persistence) and ends
    broker.kill()   # SIGKILL: a crash; what was not yet saved (autosave every 10 s) is lost
    broker.start()  # again: the same port, users and persistence

Every broker started here is ended when its test ends (the fixture), when ``close()`` is called,
and at the latest when the test process exits (atexit); with the process's death, too, when
started from the main thread (the kernel's parent-death signal). Root's mosquitto would drop to
the ``mosquitto`` user, who cannot enter pytest's 0700 tmp folders: as root the broker's folder
is a world-enterable temporary folder instead (removed by ``close()``), and mosquitto is started
as that user directly.
"""
from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mpy import find_tool

MOSQUITTO = "/usr/sbin/mosquitto"
MISSING = "mosquitto is not installed (make test installs it with apt)"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1
_MADE: list[Broker] = []  # every broker of this process, for the exit's clean-up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """(In the child, before exec.) SIGTERM when the thread that started it ends."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _mosquitto_user() -> int | None:
    """The uid root's mosquitto would run as, when this is root."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam("mosquitto").pw_uid
    except KeyError:
        return None


class Broker:
    """One mosquitto (see the module's docstring)."""

    def __init__(self, folder: Path, gateways: list[str], coach: str = "coach", *, own_folder: bool = False):
        self.folder, self.gateways, self.coach = folder, list(gateways), coach
        self._own_folder = own_folder
        self.mosquitto_uid = _mosquitto_user()  # who mosquitto runs as (None: as this user)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "mosquitto.log"
        _MADE.append(self)
        self.configure()

    def configure(self, *options: str) -> None:
        """``strideclip broker-config`` into the folder (with ``options`` besides the users and the
        port; kept for a reconfiguration), for a new free port and new passwords."""
        self.options = options or getattr(self, "options", ())
        self.port = _free_port()
        args = [find_tool("strideclip"), "broker-config", str(self.folder), "--port", str(self.port),
                "--coach-user", self.coach, "--force", *self.options]
        for g in self.gateways:
            args += ["--gateway", g]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"strideclip broker-config failed: {done.stderr}"
        self.conf_path = self.folder / "mosquitto.conf"
        self.credentials_path = self.folder / "credentials.json"
        self.users: dict[str, str] = json.loads(self.credentials_path.read_text())["users"]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def user_credentials_path(self, user: str) -> Path:
        """The credentials file holding ``user``'s password only (what a gateway is given)."""
        return self.folder / "credentials" / f"{user}.json"

    def start(self) -> Broker:
        """Start mosquitto (again) and wait until it takes a connection."""
        assert not self.running, "this broker is running"
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf_path)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                user=self.mosquitto_uid, preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto ended at start (exit {self.proc.returncode}): {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto took no connection on port {self.port} in {START_TIMEOUT_S} s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM and wait: mosquitto saves its persistence and ends."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL and wait: a crash."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self, *, sig: int = signal.SIGTERM) -> None:
        """End it (if running) and remove a folder made for it."""
        self._end(sig)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_broker(tmp_path: Path, gateways: list[str] | tuple[str, ...] = ("gw-a", "gw-b"), coach: str = "coach",
                 *, start: bool = True) -> Broker:
    """A configured broker (started unless ``start`` is False); skips the test without mosquitto.
    Its folder is ``tmp_path/broker`` (as root: a temporary folder mosquitto's user can enter)."""
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(MISSING)
    if _mosquitto_user() is not None:
        folder, own = Path(tempfile.mkdtemp(prefix="strideclip-broker-")), True
        folder.chmod(0o711)
    else:
        folder, own = tmp_path / "broker", False
    broker = Broker(folder, list(gateways), coach, own_folder=own)
    try:
        if start:
            try:
                broker.start()
            except RuntimeError as e:  # the free port was taken meanwhile: once more on another
                if "in use" not in str(e):
                    raise
                broker.configure()
                broker.start()
    except BaseException:
        broker.close()
        raise
    return broker


@atexit.register
def _end_all() -> None:
    for broker in _MADE:
        broker.close(sig=signal.SIGKILL)
