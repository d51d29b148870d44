"""A real pseudo-terminal link for tests: the "clip" end is one pty, the host opens the device
path of another, and a thread copies bytes between them (optionally damaging some on the way).
Real pyserial and mpremote open the host path as they would a USB serial port."""
from __future__ import annotations

import os
import pty
import select
import threading
import tty
from collections.abc import Callable


class PtyLink:
    def __init__(self, damage: Callable[[int, bytes], bytes] | None = None,
                 to_device: Callable[[bytes, Callable[[bytes], None]], None] | None = None):
        self.dev_master, self.dev_slave = pty.openpty()
        self.host_master, self.host_slave = pty.openpty()
        for fd in (self.dev_slave, self.host_master, self.host_slave):
            tty.setraw(fd)
        self.device_path = os.ttyname(self.dev_slave)  # the clip writes and reads here
        self.host_path = os.ttyname(self.host_slave)  # the host opens this as its port
        self.damage = damage  # (offset of the chunk in the clip's stream, chunk) -> chunk
        self.to_device = to_device  # (bytes from the host, write) -> None: the device's receive path
        self.clip_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._bridge, daemon=True)
        self._thread.start()

    def _bridge(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.dev_master, self.host_master], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if fd == self.dev_master:
                    if self.damage:
                        data = self.damage(self.clip_bytes, data)
                    self.clip_bytes += len(data)
                    os.write(self.host_master, data)
                elif self.to_device:
                    self.to_device(data, lambda b: os.write(self.dev_master, b))
                else:
                    os.write(self.dev_master, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.dev_master, self.dev_slave, self.host_master, self.host_slave):
            os.close(fd)
