"""The clip over USB serial (the firmware's "usb" link): framed packets on a byte stream.

pyserial reads what has arrived (in a worker thread, so the event loop and other clips go on);
clipcore's Deframer cuts it into packets and resynchronises after damaged bytes (counted in
``dropped_bytes``/``bad_frames``). Commands go out framed the same way. The port is opened when
the transport is made, so a missing port is an error at once; a port that vanishes mid-run
ends ``run`` with TransportError: the caller keeps what it has. A USB cable is not a radio
link: there is no reconnecting.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from clipcore import protocol as P
from strideclip.errors import TransportError
from strideclip.link.transport import Commands


class SerialTransport:
    takes_commands = True

    def __init__(self, port: str, *, on_packet: Callable[[bytes, float], None],
                 on_link: Callable[..., None] | None = None, on_sent: Callable[[bytes], None] | None = None,
                 baud: int = 921600, read_timeout_s: float = 0.05, command_timeout_s: float = 2.0):
        import serial  # pyserial

        self.port = port
        self.on_packet = on_packet
        self.on_link = on_link or (lambda event, **fields: None)
        self.on_sent = on_sent or (lambda pkt: None)
        try:
            self.serial = serial.Serial(port, baud, timeout=read_timeout_s)
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"cannot open {port}: {e}", port=port) from e
        self.deframer = P.Deframer()
        self.commands = Commands(port, command_timeout_s)
        self.bytes_in = 0
        self.connected = True

    @property
    def rtt_ms(self) -> float | None:
        return self.commands.rtt_ms

    def stats(self) -> dict:
        return {"bytes_in": self.bytes_in, "dropped_bytes": self.deframer.dropped_bytes,
                "bad_frames": self.deframer.bad_frames}

    def _read(self) -> bytes:
        return self.serial.read(max(1, self.serial.in_waiting))

    async def run(self, stop: asyncio.Event) -> None:
        import serial

        self.on_link("connected", port=self.port)
        try:
            while not stop.is_set():
                try:
                    data = await asyncio.to_thread(self._read)
                except (serial.SerialException, OSError, TypeError) as e:
                    self.connected = False
                    self.commands.fail_pending("the port was lost")
                    self.on_link("lost", error=str(e))
                    raise TransportError(f"{self.port} was lost: {e}", port=self.port) from e
                if not data:
                    continue
                t_s = time.monotonic()
                self.bytes_in += len(data)
                self.deframer.feed(data)
                while (pkt := self.deframer.next_packet()) is not None:
                    self.commands.on_packet(pkt, t_s)
                    self.on_packet(pkt, t_s)
        finally:
            self.serial.close()

    async def command(self, opcode: int, args: tuple, *, timeout_s: float | None = None) -> int:
        if not self.connected:
            raise TransportError(f"{self.port} is not connected", port=self.port)
        return await self.commands.send(opcode, args, self.send_packet, timeout_s=timeout_s)

    async def send_packet(self, pkt: bytes) -> None:
        """One command packet, framed, to the port (logged through on_sent)."""
        import serial

        if not self.connected:
            raise TransportError(f"{self.port} is not connected", port=self.port)
        self.on_sent(pkt)
        try:
            self.serial.write(P.frame(pkt))
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"{self.port}: sending a command failed: {e}", port=self.port) from e
