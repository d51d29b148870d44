"""The clip over USB serial (the firmware's "usb" link): framed packets on a byte stream.

pyserial reads what has arrived; clipcore's Deframer cuts it into packets and resynchronises
after damaged bytes (counted in ``dropped_bytes``/``bad_frames``). Commands go out framed the
same way. A port that vanishes mid-run raises TransportError: the caller keeps what it has.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

from clipcore import protocol as P
from strideclip.transports import TransportError


class SerialTransport:
    def __init__(self, port: str, *, baud: int = 921600, read_timeout_s: float = 0.05):
        import serial  # pyserial

        self.port = port
        try:
            self.serial = serial.Serial(port, baud, timeout=read_timeout_s)
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"cannot open {port}: {e}", port=port) from e
        self.deframer = P.Deframer()
        self.bytes_in = 0

    @property
    def dropped_bytes(self) -> int:
        return self.deframer.dropped_bytes

    @property
    def bad_frames(self) -> int:
        return self.deframer.bad_frames

    def packets(self, *, stop_after_s: float | None = None, idle_s: float | None = None) -> Iterator[bytes]:
        """Packets as they arrive, until stop_after_s has passed or nothing came for idle_s."""
        import serial

        started = last = time.monotonic()
        while True:
            now = time.monotonic()
            if stop_after_s is not None and now - started >= stop_after_s:
                return
            if idle_s is not None and now - last >= idle_s:
                return
            try:
                data = self.serial.read(max(1, self.serial.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise TransportError(f"{self.port} was lost: {e}", port=self.port) from e
            if not data:
                continue
            last = now
            self.bytes_in += len(data)
            self.deframer.feed(data)
            while (pkt := self.deframer.next_packet()) is not None:
                yield pkt

    def send(self, pkt: bytes) -> None:
        self.serial.write(P.frame(pkt))

    def close(self) -> None:
        self.serial.close()
