"""Where a clip's packets come from: one interface for every link, all feeding one decoder.

A transport is made with three callbacks and then run in an asyncio loop:

- ``on_packet(pkt, t_s)`` - each whole packet as it arrives (``t_s``: time.monotonic());
- ``on_link(event, **fields)`` - "connected", "lost", "retry", "warning";
- ``on_sent(pkt)`` - each command packet written to the clip (the log keeps them).

What it offers is the ``Transport`` protocol below. The transports: BLE with bleak (ble.py), USB
serial with pyserial (serial.py), a session log or the simulator played back at a chosen
pace (playback.py), and a clip carried by gateways through an MQTT broker (broker.py).
strideclip.session.live records any of them the same way.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from clipcore import protocol as P
from strideclip.errors import CommandError, CommandTimeout, TransportError


class Transport(Protocol):
    """What every link offers (BleTransport, SerialTransport, PlaybackTransport,
    SimulatedClipTransport), whatever its bytes travel on."""

    takes_commands: bool  # False: a playback, whose commands reach no clip (cues, backfill, pings are not sent)

    @property
    def connected(self) -> bool:
        """The link is up now: commands may go out."""
        ...

    @property
    def rtt_ms(self) -> float | None:
        """The latest command's round trip (None before any)."""
        ...

    def stats(self) -> dict:
        """The link's own figures (bytes, notifications, connections, ...), for the log."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver packets until ``stop`` is set; raise TransportError if the link is gone for good."""
        ...

    async def command(self, opcode: int, args: tuple, *, timeout_s: float | None = None) -> int:
        """Send a command and wait for its RESULT; return its detail. Raise CommandError if the
        clip refused it, CommandTimeout if it did not answer, TransportError if not connected."""
        ...

    async def send_packet(self, pkt: bytes) -> None:
        """Write one command packet to the clip as it is (``command`` packs one; a gateway writes
        the coach's, strideclip.session.gateway), logged through ``on_sent``; its RESULT comes back
        as an ordinary packet. TransportError if not connected or the write failed."""
        ...


class Commands:
    """Command ids, packing and RESULT matching, the same for every link."""

    def __init__(self, port: str, timeout_s: float = 2.0):
        self.port = port
        self.timeout_s = timeout_s
        self.rtt_ms: float | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 1

    def pack(self, opcode: int, args: tuple) -> tuple[int, bytes]:
        """(cmd_id, packet), checked as the clip would check it: a bad one is never sent."""
        cmd_id = self._next_id
        self._next_id = cmd_id % 255 + 1
        buf = bytearray(16)
        try:
            n = P.pack_command(buf, cmd_id, opcode, args)
        except P.ProtocolError as e:
            raise CommandError(f"not sent to {self.port}: {e}", port=self.port,
                               code=P.check_command_args(opcode, args)) from e
        return cmd_id, bytes(buf[:n])

    def on_packet(self, pkt: bytes, t_s: float) -> None:
        """Hand every received packet here: a RESULT completes its command."""
        if len(pkt) == P.RESULT_BYTES and pkt[0] & 0x0F == P.T_RESULT:
            fut = self._pending.pop(pkt[1], None)
            if fut is not None and not fut.done():
                fut.set_result((pkt, t_s))

    async def send(self, opcode: int, args: tuple, write: Callable[[bytes], Awaitable[None]], *,
                   timeout_s: float | None = None) -> int:
        """Pack, ``await write(pkt)``, wait for the RESULT; return its detail or raise."""
        cmd_id, pkt = self.pack(opcode, args)
        name = P.OPCODE_NAMES.get(opcode, str(opcode))
        wait_s = timeout_s or self.timeout_s
        fut = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = fut
        sent = time.monotonic()
        try:
            await write(pkt)
            got, t_s = await asyncio.wait_for(fut, wait_s)
        except asyncio.TimeoutError:
            raise CommandTimeout(f"{self.port} did not answer {name} (id {cmd_id}) within {wait_s:g} s",
                                 port=self.port) from None
        finally:
            self._pending.pop(cmd_id, None)
        self.rtt_ms = (t_s - sent) * 1000
        result = P.decode(got)
        if result.code != P.RESULT_OK:
            raise CommandError(f"{self.port} refused {name}: {P.RESULT_NAMES.get(result.code, result.code)} "
                               f"(detail {result.detail})", port=self.port, code=result.code, detail=result.detail)
        return result.detail

    def fail_pending(self, why: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TransportError(f"{self.port}: {why}", port=self.port))
        self._pending.clear()
