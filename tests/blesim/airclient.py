"""The tests' side of the shared air (blesim/airserver.py): start it in a process of its own, move
clips between gateways' ranges, read each clip's truth; and each gateway's environment for a
``strideclip`` subprocess on it (``--ble-backend blesim.remoteworld:world``)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
BACKEND = "blesim.remoteworld:world"


class AirClient:
    """``AirClient(gateways=2, clips=1, minutes=1, speed=10)`` starts the air; ``close()`` ends it."""

    def __init__(self, *, gateways: int = 2, clips: int = 1, minutes: float = 1.0, speed: float = 10.0,
                 store_s: float = 120.0, reach: str | None = None, start: str = "heard", seed: int = 60,
                 stderr_path: str | os.PathLike | None = None, ready_timeout_s: float = 60.0):
        args = [sys.executable, "-m", "blesim.airserver", "--gateways", str(gateways), "--clips", str(clips),
                "--minutes", str(minutes), "--speed", str(speed), "--store-s", str(store_s), "--start", start,
                "--seed", str(seed)] + (["--reach", reach] if reach is not None else [])
        self._stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, env=self.env(), stdout=subprocess.PIPE, stderr=self._stderr)
        line = self._ready_line(ready_timeout_s)
        ready = json.loads(line)
        self.ports: dict[str, int] = ready["gateways"]
        self.addresses: dict[str, str] = ready["clips"]
        self._sock = socket.create_connection(("127.0.0.1", ready["control"]))
        self._lines = self._sock.makefile("rb")

    def _ready_line(self, timeout_s: float) -> bytes:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            self.proc.kill()
            raise RuntimeError(f"the air server was not ready within {timeout_s} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the air server ended (exit {self.proc.wait()}) before it was ready")
        return line

    @staticmethod
    def env(**extra: str) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "PYTHONPATH": path, **extra}

    def gateway_env(self, gateway: str, **extra: str) -> dict[str, str]:
        """The environment of a process that is gateway ``gateway`` (with ``--ble-backend BACKEND``)."""
        return self.env(BLESIM_AIR=f"127.0.0.1:{self.ports[gateway]}", BLESIM_NAME=gateway, **extra)

    def ask(self, **request) -> dict:
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        reply = json.loads(self._lines.readline())
        if not reply.pop("ok"):
            raise RuntimeError(f"air server: {reply['error']}")
        return reply

    def move(self, clip: str, *gateways: str, supervision_timeout_s: float = 0.72, lag_s: float = 0.0) -> None:
        """The clip is now in range of these gateways only: links to any other time out."""
        self.ask(op="move", clip=clip, to=list(gateways), supervision_timeout_s=supervision_timeout_s, lag_s=lag_s)

    def start(self) -> None:
        """The clips' runs start now (an air started with ``start="command"``)."""
        self.ask(op="start")

    def status(self) -> dict:
        return self.ask(op="status")

    def truth(self, clip: str) -> dict:
        """{"links": [...], "carried": {gateway: [[ptype, first_idx, end_idx], ...]}, "sampled": n}."""
        return self.ask(op="truth", clip=clip)

    def close(self) -> None:
        try:
            self.ask(op="quit")
        except (OSError, ValueError, RuntimeError):
            pass
        self._sock.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()

    def __enter__(self) -> "AirClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
