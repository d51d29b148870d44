"""Where a live clip comes from (``ClipSource``): its name, address and kind, and how to open
its transport (strideclip.link: BLE, USB serial, a log or the simulator played back)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strideclip.link.ble import BleTransport, ClipAdvert
from strideclip.link.playback import ClipRun, PlaybackTransport, SimulatedClipTransport
from strideclip.link.serial import SerialTransport
from strideclip.link.transport import Transport

if TYPE_CHECKING:  # (bleak is imported when a clip is connected; aiomqtt when a broker is used)
    from bleak.backends.client import BaseBleakClient

    from strideclip.link.broker import BrokerLink


@dataclass
class ClipSource:
    """A clip to follow: its name, where it is, and how to open its transport with the
    callbacks (on_packet, on_link, on_sent)."""

    name: str
    address: str  # BLE address, serial port, file, or the broker's URL
    kind: str  # "ble", "usb-serial", "log", "simulator", "broker": the log header's source
    open: Callable[..., Transport]
    rssi_dbm: int | None = None
    battery_pct: int | None = None


def ble_source(advert: ClipAdvert, backend: type[BaseBleakClient] | None = None) -> ClipSource:
    return ClipSource(advert.name, advert.address, "ble",
                      lambda **cb: BleTransport(advert.address, backend=backend, **cb),
                      rssi_dbm=advert.rssi_dbm, battery_pct=advert.battery_pct)


def serial_source(port: str) -> ClipSource:
    return ClipSource(Path(port).name, port, "usb-serial", lambda **cb: SerialTransport(port, **cb))


def log_source(path: str | Path, speed: float) -> ClipSource:
    return ClipSource(Path(path).stem, str(path), "log", lambda **cb: PlaybackTransport.from_log(path, speed=speed, **cb))


def sim_source(name: str, run: ClipRun, speed: float, *, answers: bool = False) -> ClipSource:
    """A simulated run; with ``answers`` the simulated clip takes commands (cues, backfill)."""
    if answers:
        return ClipSource(name, "simulator", "simulator", lambda **cb: SimulatedClipTransport(name, run, speed=speed, **cb),
                          battery_pct=run.hello.battery_pct if run.hello.battery_pct <= 100 else None)
    return ClipSource(name, "simulator", "simulator", lambda **cb: PlaybackTransport.from_sim(name, run, speed=speed, **cb))


def broker_source(name: str, link: BrokerLink) -> ClipSource:
    """A clip carried by gateways through the broker ``link`` is connected to (docs/team.md)."""
    return ClipSource(name, str(link.url), "broker", lambda **cb: link.transport(name, **cb))
