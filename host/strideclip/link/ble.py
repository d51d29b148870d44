"""A clip over BLE with bleak: scan by service UUID, connect, subscribe, commands, reconnect.

The clip's GATT table is in docs/protocol.md ("BLE"); packets travel bare, one per
notification. ``BleTransport.run`` keeps one clip connected until told to stop: after a lost
link it reconnects with backoff (0.25 s doubling to 5 s after quick failures; 0.25 s after an attempt
that waited for the clip to advertise) and hands every notification, with
its receive time, to ``on_packet``; the caller notices the sample gap and asks for a backfill
with ``command``. The bleak backend can be passed in (``backend=``); by default bleak picks the
platform's (BlueZ on Linux). The tests run this code unchanged over bumble (tests/blesim).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from clipcore import protocol as P
from strideclip.errors import TransportError
from strideclip.link.transport import Commands

if TYPE_CHECKING:  # (bleak is imported when a clip is scanned for or connected)
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

BATTERY_SERVICE_DATA_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
MIN_MTU = P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * 19 + P.ATT_OVERHEAD_BYTES  # a full 19-sample packet
BACKOFF_S = (0.25, 5.0)  # first retry, longest wait


@dataclass
class ClipAdvert:
    """A clip seen in a scan: what it advertises (name and charge in its scan response)."""

    name: str
    address: str
    rssi_dbm: int | None
    battery_pct: int | None

    def as_dict(self) -> dict:
        return asdict(self)


async def scan(seconds: float = 3.0, *, backend: type[BaseBleakScanner] | None = None) -> list[ClipAdvert]:
    """Clips advertising the StrideClip service, strongest first."""
    from bleak import BleakScanner
    from bleak.exc import BleakError

    try:
        found = await BleakScanner.discover(seconds, return_adv=True, service_uuids=[P.BLE_SERVICE_UUID],
                                            backend=backend)
    except (BleakError, OSError) as e:
        raise TransportError(f"cannot scan for clips: {e} (is Bluetooth on?)", port="ble") from e
    clips = []
    for address, (device, adv) in found.items():
        battery = adv.service_data.get(BATTERY_SERVICE_DATA_UUID, b"")
        pct = battery[0] if battery and battery[0] <= 100 else None
        clips.append(ClipAdvert(adv.local_name or device.name or address, device.address, adv.rssi, pct))
    return sorted(clips, key=lambda c: -(c.rssi_dbm if c.rssi_dbm is not None else -999))


def pick(clips: list[ClipAdvert], wanted: list[str]) -> list[ClipAdvert]:
    """The clips named (or addressed) in ``wanted``, all of them if it is empty; a name that no
    clip advertises is an error naming it and what was found."""
    if not wanted:
        return clips
    chosen = []
    for w in wanted:
        match = [c for c in clips if w in (c.name, c.address)]
        if not match:
            seen = ", ".join(f"{c.name} ({c.address})" for c in clips) or "none"
            raise TransportError(f"no clip named {w!r} found; clips seen: {seen}", port=w)
        chosen.append(match[0])
    return chosen


class BleTransport:
    """One clip, kept connected. ``on_packet(pkt, t_s)`` gets each notification as it arrives
    (``t_s`` from time.monotonic); ``on_link(event, **fields)`` hears connected / lost / retry."""

    takes_commands = True

    def __init__(self, address: str, *, on_packet: Callable[[bytes, float], None],
                 on_link: Callable[..., None] | None = None, on_sent: Callable[[bytes], None] | None = None,
                 backend: type[BaseBleakClient] | None = None, connect_timeout_s: float = 10.0,
                 command_timeout_s: float = 2.0):
        self.address = address
        self.on_packet = on_packet
        self.on_link = on_link or (lambda event, **fields: None)
        self.on_sent = on_sent or (lambda pkt: None)
        self.backend = backend
        self.connect_timeout_s = connect_timeout_s
        self.client = None
        self.mtu = 23
        self.connections = 0
        self.notifications = 0
        self.commands = Commands(address, command_timeout_s)
        self._lost = asyncio.Event()

    @property
    def rtt_ms(self) -> float | None:
        return self.commands.rtt_ms

    def stats(self) -> dict:
        return {"connections": self.connections, "notifications": self.notifications, "mtu": self.mtu}

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, and reconnect after every lost link until ``stop`` is set."""
        delay = BACKOFF_S[0]
        while not stop.is_set():
            tried_at_s = time.monotonic()
            try:
                await self._connect()
            except TransportError as e:
                if time.monotonic() - tried_at_s >= self.connect_timeout_s / 2:
                    # the attempt itself waited for the clip to advertise (out of range): no pause on top,
                    # or a clip back in range would wait for the pause (a gateway's clips after a hand-over)
                    delay = BACKOFF_S[0]
                self.on_link("retry", error=str(e), wait_s=delay)
                if await _wait(stop, delay):
                    break
                delay = min(delay * 2, BACKOFF_S[1])
                continue
            delay = BACKOFF_S[0]
            lost = asyncio.ensure_future(self._lost.wait())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
            lost.cancel(), stopped.cancel()
            if self._lost.is_set():
                self.commands.fail_pending("the link was lost")
                self.client = None
                self.on_link("lost")
        await self.close()

    async def _connect(self) -> None:
        from bleak import BleakClient
        from bleak.exc import BleakError

        self._lost.clear()
        client = BleakClient(self.address, disconnected_callback=lambda _c: self._lost.set(),
                             timeout=self.connect_timeout_s, backend=self.backend)
        try:
            await client.connect()
        except (BleakError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"cannot connect to {self.address}: {e}", port=self.address) from e
        try:
            for uuid in (P.BLE_SAMPLES_UUID, P.BLE_EVENTS_UUID, P.BLE_CONTROL_UUID):
                if client.services.get_characteristic(uuid) is None:
                    raise TransportError(f"{self.address} advertises the StrideClip service but has no "
                                         f"characteristic {uuid}: not a StrideClip", port=self.address)
            try:
                await client.pair()  # the clip takes commands only over an encrypted, bonded link
            except (BleakError, NotImplementedError) as e:
                self.on_link("warning", error=f"pairing failed: {e}; commands will be refused")
            self.mtu = client.mtu_size
            if self.mtu < MIN_MTU:
                self.on_link("warning", error=f"MTU {self.mtu} < {MIN_MTU}: the clip cannot send full sample packets")
            hello = bytes(await client.read_gatt_char(P.BLE_EVENTS_UUID))  # the HELLO, readable on any MTU
            if hello and hello[0] & 0x0F == P.T_HELLO:
                self.on_packet(hello, time.monotonic())
            receive = self._receive
            await client.start_notify(P.BLE_EVENTS_UUID, receive)
            await client.start_notify(P.BLE_CONTROL_UUID, receive)
            await client.start_notify(P.BLE_SAMPLES_UUID, receive)
            self.client = client  # connected: commands may go out, their results will be heard
        except (BleakError, asyncio.TimeoutError, OSError) as e:
            self.client = None
            await _quietly(client.disconnect())
            raise TransportError(f"{self.address}: setting up the link failed: {e}", port=self.address) from e
        except TransportError:
            self.client = None
            await _quietly(client.disconnect())
            raise
        self.connections += 1
        self.on_link("connected", mtu=self.mtu, reconnect=self.connections > 1)
        try:  # its HELLO (sent before we subscribed) tells how to read the samples
            await self.command(P.OP_HELLO, ())
        except TransportError as e:
            self.on_link("warning", error=str(e))

    def _receive(self, _char, data: bytearray) -> None:
        t_s = time.monotonic()
        pkt = bytes(data)
        self.notifications += 1
        self.commands.on_packet(pkt, t_s)
        self.on_packet(pkt, t_s)

    async def command(self, opcode: int, args: tuple, *, timeout_s: float | None = None) -> int:
        """Send a command and wait for its RESULT; return its detail. Raise CommandError if the
        clip refused it, CommandTimeout if it did not answer, TransportError if not connected."""
        if not self.connected:
            raise TransportError(f"{self.address} is not connected", port=self.address)
        return await self.commands.send(opcode, args, self.send_packet, timeout_s=timeout_s)

    async def send_packet(self, pkt: bytes) -> None:
        """One command packet to the control characteristic as it is (logged through on_sent)."""
        from bleak.exc import BleakError

        client = self.client
        if client is None or not client.is_connected:
            raise TransportError(f"{self.address} is not connected", port=self.address)
        self.on_sent(pkt)
        try:
            await client.write_gatt_char(P.BLE_CONTROL_UUID, pkt, response=True)
        except (BleakError, OSError) as e:
            raise TransportError(f"{self.address}: sending a command failed: {e}", port=self.address) from e

    async def close(self) -> None:
        client, self.client = self.client, None
        self.commands.fail_pending("closed")
        if client is not None:
            await _quietly(client.disconnect())


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return False


async def _quietly(coro) -> None:
    try:
        await coro
    except Exception:  # noqa: BLE001 - tearing down a link that may already be gone
        pass
