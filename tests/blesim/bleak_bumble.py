"""A bleak backend on bumble: the host's ordinary bleak code runs over a real Bluetooth stack
(bumble's host, ATT/GATT and SMP layers, virtual controllers on a LocalLink) with no radio.

``backends(radio)`` returns a (scanner, client) pair of backend classes bound to one
virtual adapter (a bumble central ``Device``) that the host passes to ``BleakScanner(...,
backend=)`` and ``BleakClient(..., backend=)``. Only what StrideClip's host uses is here:
scanning with advertisement and scan-response data, connect (MTU 247 requested like BlueZ
does), GATT discovery, read, write with and without response, notifications, pairing, and
disconnect in either direction.
"""
from __future__ import annotations

import asyncio
import uuid as _uuid

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble import hci
from bumble.device import Peer

REQUESTED_MTU = 247
CONNECT_SEEN_S = 2.0  # a device just seen advertising and not connected within this was taken by another central
_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

_PROPERTY_NAMES = {0x02: "read", 0x04: "write-without-response", 0x08: "write", 0x10: "notify",
                   0x20: "indicate"}


def uuid_str(bumble_uuid) -> str:
    """bleak's form of a UUID: 128-bit, lower case."""
    h = bumble_uuid.to_hex_str()
    if len(h) == 4:
        return f"0000{h.lower()}{_BASE_UUID_TAIL}"
    return str(_uuid.UUID(h.lower()))


def parse_ad(data: bytes) -> dict:
    """AD structures -> name, service UUIDs (128-bit) and 16-bit service data."""
    out = {"name": None, "uuids": [], "service_data": {}}
    i = 0
    while i + 1 < len(data):
        n, kind = data[i], data[i + 1]
        body = data[i + 2 : i + 1 + n]
        if n == 0:
            break
        if kind in (0x08, 0x09):
            out["name"] = body.decode(errors="replace")
        elif kind in (0x06, 0x07):
            for k in range(0, len(body) - 15, 16):
                out["uuids"].append(str(_uuid.UUID(bytes=bytes(reversed(body[k : k + 16])))))
        elif kind == 0x16 and len(body) >= 2:
            u16 = body[0] | body[1] << 8
            out["service_data"][f"0000{u16:04x}{_BASE_UUID_TAIL}"] = bytes(body[2:])
        i += 1 + n
    return out


def backends(radio):
    """Scanner and client backend classes that use ``radio.central`` (a powered bumble Device).
    With ``radio.connect_when_seen`` a connection waits (scanning) until its device advertises,
    then is made, as Linux does for BlueZ: several can wait at once, where a controller takes one
    LE Create Connection at a time (a gateway following clips that come and go)."""
    scans = [0]  # who needs the radio scanning: bleak scans and connections waiting for their device
    scan_lock = asyncio.Lock()

    async def scanning(on: bool) -> None:
        scans[0] += 1 if on else -1
        async with scan_lock:  # (one start or stop at a time, each for the count as it is then)
            if (scans[0] > 0) != radio.central.is_scanning:
                await (radio.central.start_scanning(filter_duplicates=False) if scans[0] > 0
                       else radio.central.stop_scanning())

    class BumbleScanner(BaseBleakScanner):
        def __init__(self, detection_callback, service_uuids, scanning_mode="active", **kwargs):
            super().__init__(detection_callback, service_uuids)
            self._ads: dict[str, dict] = {}

        async def start(self) -> None:
            self.seen_devices = {}
            self._ads = {}
            radio.central.on("advertisement", self._on_adv)
            await scanning(True)

        async def stop(self) -> None:
            radio.central.remove_listener("advertisement", self._on_adv)
            await scanning(False)

        def _on_adv(self, adv) -> None:
            address = str(adv.address)
            merged = self._ads.setdefault(address, {"name": None, "uuids": [], "service_data": {}})
            parsed = parse_ad(adv.data_bytes)
            merged["name"] = parsed["name"] or merged["name"]
            merged["uuids"] = sorted(set(merged["uuids"]) | set(parsed["uuids"]))
            merged["service_data"].update(parsed["service_data"])
            if not self.is_allowed_uuid(merged["uuids"]):
                return
            data = AdvertisementData(local_name=merged["name"], manufacturer_data={},
                                     service_data=dict(merged["service_data"]), service_uuids=list(merged["uuids"]),
                                     tx_power=None, rssi=adv.rssi, platform_data=(adv,))
            device = self.create_or_update_device(address, address, merged["name"], adv, data)
            self.call_detection_callbacks(device, data)

    class BumbleClient(BaseBleakClient):
        def __init__(self, address_or_ble_device, **kwargs):
            super().__init__(address_or_ble_device, disconnected_callback=kwargs.get("disconnected_callback"),
                             timeout=kwargs.get("timeout", 10.0))
            self._connection = None
            self._peer: Peer | None = None
            self._chars: dict[int, object] = {}

        @property
        def name(self) -> str:
            return self.address

        @property
        def mtu_size(self) -> int:
            return self._connection.att_mtu if self._connection else 23

        @property
        def is_connected(self) -> bool:
            return self._connection is not None

        async def _seen(self) -> None:
            """Wait, scanning, until the device advertises (BleakError after the timeout)."""
            seen = asyncio.Event()

            def on_adv(adv) -> None:
                if str(adv.address) == self.address:
                    seen.set()

            radio.central.on("advertisement", on_adv)
            await scanning(True)
            try:
                await asyncio.wait_for(seen.wait(), self._timeout)
            except asyncio.TimeoutError:
                raise BleakError(f"could not connect to {self.address}: not seen within {self._timeout} s") from None
            finally:
                radio.central.remove_listener("advertisement", on_adv)
                await scanning(False)

        async def connect(self, pair: bool, **kwargs) -> None:
            timeout_s = self._timeout
            if getattr(radio, "connect_when_seen", False):
                await self._seen()
                timeout_s = CONNECT_SEEN_S
            async with radio.connect_lock:  # one pending LE connection at a time, as controllers allow
                try:  # (bumble's timeout cancels the attempt in the controller, as BlueZ does)
                    conn = await asyncio.wait_for(
                        radio.central.connect(hci.Address(self.address), own_address_type=hci.OwnAddressType.RANDOM,
                                              timeout=timeout_s),
                        timeout_s + 2.0)
                except (asyncio.TimeoutError, hci.HCI_Error, Exception) as e:
                    raise BleakError(f"could not connect to {self.address}: {str(e) or type(e).__name__}") from e
            self._connection = conn
            conn.on("disconnection", self._on_disconnection)
            self._peer = Peer(conn)
            try:
                await self._while_up(self._set_up(pair))
            except BleakError:
                await self.disconnect()
                raise

        async def _while_up(self, awaitable):
            """An operation on the link that fails at once (BleakError) if the link drops meanwhile, as
            BlueZ's do; bumble's would wait for its 30 s GATT timeout, or for ever (pairing). Its
            errors are BleakErrors, as bleak's are."""
            conn = self._connection
            work = asyncio.ensure_future(awaitable)
            if conn is None:
                work.cancel()
                raise BleakError("Not connected")
            lost = asyncio.get_running_loop().create_future()

            def on_lost(*_args) -> None:
                if not lost.done():
                    lost.set_result(None)

            conn.on("disconnection", on_lost)
            try:
                await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                conn.remove_listener("disconnection", on_lost)
                if not work.done():
                    work.cancel()
            if not work.done() or work.cancelled():
                raise BleakError(f"{self.address} disconnected")
            try:
                return work.result()
            except BleakError:
                raise
            except Exception as e:  # noqa: BLE001  (bumble's ATT, SMP and HCI errors: bleak says BleakError)
                raise BleakError(f"{self.address}: {str(e) or type(e).__name__}") from e

        async def _set_up(self, pair: bool) -> None:
            """What follows the connection: the MTU, pairing if asked, the GATT table."""
            mtu = getattr(radio, "requested_mtu", REQUESTED_MTU)  # (a radio may stand for a central that never asks)
            if mtu:
                await self._peer.request_mtu(mtu)
            if pair:
                await self._pair()
            await self._peer.discover_services()
            self.services = BleakGATTServiceCollection()
            for svc in self._peer.services:
                bsvc = BleakGATTService(svc, svc.handle, uuid_str(svc.uuid))
                self.services.add_service(bsvc)
                for ch in await svc.discover_characteristics():
                    props = [name for bit, name in _PROPERTY_NAMES.items() if int(ch.properties) & bit]
                    bch = BleakGATTCharacteristic(ch, ch.handle, uuid_str(ch.uuid), props,
                                                  lambda: self.mtu_size - 3, bsvc)
                    self.services.add_characteristic(bch)
                    self._chars[ch.handle] = ch
                    for d in await ch.discover_descriptors():
                        self.services.add_descriptor(BleakGATTDescriptor(d, d.handle, uuid_str(d.type), bch))

        def _on_disconnection(self, reason) -> None:
            self._connection = None
            self._peer = None
            if self._disconnected_callback is not None:
                self._disconnected_callback()

        async def disconnect(self) -> None:
            conn = self._connection
            if conn is not None:
                self._disconnected_callback = None  # a requested disconnect is not reported as a loss
                await conn.disconnect()
                self._connection = None

        async def pair(self, *args, **kwargs) -> None:
            await self._while_up(self._pair())

        async def _pair(self) -> None:
            """Pair, or with a bond already made re-encrypt with its keys (what BlueZ does); a
            peer that lost the bond is paired again."""
            conn = self._connection
            if conn is None:
                raise BleakError("not connected")
            keystore = radio.central.keystore
            if keystore is not None and await keystore.get(str(conn.peer_address)) is not None:
                try:
                    await conn.encrypt()
                    return
                except (hci.HCI_Error, Exception):  # noqa: BLE001  (the peer forgot us: pair afresh)
                    pass
            await conn.pair()

        async def unpair(self) -> None:
            raise NotImplementedError("bumble backend: unpair")

        def _need(self):
            if self._peer is None:
                raise BleakError("Not connected")
            return self._peer

        async def read_gatt_char(self, characteristic, **kwargs) -> bytearray:
            return bytearray(await self._while_up(self._need().read_value(self._chars[characteristic.handle])))

        async def read_gatt_descriptor(self, descriptor, **kwargs) -> bytearray:
            return bytearray(await self._while_up(self._need().read_value(descriptor.handle)))

        async def write_gatt_char(self, characteristic, data, response: bool) -> None:
            await self._while_up(self._need().write_value(self._chars[characteristic.handle], bytes(data),
                                                          with_response=response))

        async def write_gatt_descriptor(self, descriptor, data) -> None:
            await self._while_up(self._need().write_value(descriptor.handle, bytes(data), with_response=True))

        async def start_notify(self, characteristic, callback, **kwargs) -> None:
            await self._while_up(self._need().subscribe(self._chars[characteristic.handle],
                                                        lambda value: callback(bytearray(value))))

        async def stop_notify(self, characteristic) -> None:
            await self._while_up(self._need().unsubscribe(self._chars[characteristic.handle]))

    return BumbleScanner, BumbleClient
