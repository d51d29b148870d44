"""The virtual air for BLE tests: bumble controllers on one LocalLink, a central for the host
(its "laptop adapter", driven through bleak by the backend in bleak_bumble.py) and simulated
clips as peripherals (clip.py)."""
from __future__ import annotations

import asyncio

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from blesim.bleak_bumble import backends


def make_device(link: LocalLink, address: str, name: str, controller_class=Controller) -> Device:
    controller = controller_class(name, link=link, public_address=address)
    device = Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
    return device


class Radio:
    def __init__(self):
        self.link = LocalLink()
        from rig.air import LaptopController  # (a scan response that is the advertiser's own)

        self.central = make_device(self.link, "F0:F0:F0:F0:F0:F0", "host adapter", LaptopController)
        self.connect_lock = asyncio.Lock()
        self.clips = []
        self.scanner_backend, self.client_backend = backends(self)

    async def start(self) -> None:
        await self.central.power_on()

    @staticmethod
    def address_for(index: int) -> str:
        return ":".join([f"C{index % 16:X}"] + [f"{(index >> 4) & 0xFF:02X}"] * 4 + ["01"])
