"""The air between the clip on the rig and the laptop, with no radio (tests/rig/README.md): bumble
virtual controllers on one link; the firmware's NimBLE reaches its controller over HCI on a
pseudo-terminal (MICROPYBTUART), the host's ordinary bleak code reaches the laptop's through the
bleak backend on bumble (tests/blesim/bleak_bumble.py).

bumble's LocalLink and Controller are kinder than a real controller in ways the clip can tell:

- LE data is routed by each controller's random address, so a clip keeping its public address
  (as an ESP32 does) has every packet dropped: ``AirLink`` routes by the address each connection
  uses.
- The controller keeps no resolving list, so a bonded phone or Mac (a resolvable private address,
  a new one at each connection) is never recognised, whatever the firmware does:
  ``ClipController`` resolves RPAs from the IRKs NimBLE loads into it and reports the central by
  its identity address, as real controllers do.
- Every packet leaves and is acknowledged at once, so NimBLE's buffers never fill: the clip's
  controller sends at most ``pdus_per_event`` packets per connection event (``air``), like a
  radio, and reports 12 LE buffers of 251 bytes, so the firmware meets ENOMEM when it outruns it.
- A link never times out: ``AirLink.lose`` stops all traffic between two devices and reports a
  supervision timeout (0x08) to both hosts, as a runner leaving the laptop's range does;
  ``AirLink.cut`` does it for one pair (the clip times out first, the other side ``lag_s`` later).
- Two centrals answering one advertisement both think they are connected: ``AirLink`` fails the
  one the advertiser did not take (0x3E, "connection failed to be established").
- Every controller hears every other, as in one room: a clip named in ``AirLink.reach`` is heard
  (advertising, connection requests) only by the controllers named there, so a central out of its
  range cannot find it and a pending connection waits until it is in range (blesim/airserver.py).
- LE Create Connection Cancel leaves the connection pending for ever (the next attempt is refused):
  ``LaptopController`` ends it with LE Connection Complete, status 0x02, as real controllers do.
- bumble's HCI Reset keeps the resolving list and the advertiser: ``ClipController`` clears them,
  so a rebooted clip (a new process on the same controller) starts clean.
- A scanner's scan response repeats the advertising data: ``LaptopController`` reports the
  advertiser's own scan response (the clip's name and charge) as a real one does.
"""
from __future__ import annotations

import asyncio
import collections
import os
import tempfile

from bumble import crypto, hci, ll
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.device import Device, DeviceConfiguration
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

LAPTOP_IDENTITY = "F0:F1:F2:F3:F4:F5"  # the laptop's static random identity address
LAPTOP_IRK = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
CONN_INTERVAL_MS = 30.0  # what hosts ask for (docs/host-link.md)
PDUS_PER_EVENT = 4  # packets a clip gets out per connection event (ESP32 with 251-byte PDUs: 4-6)


def _pair(a: hci.Address, b: hci.Address) -> frozenset:
    return frozenset((bytes(a), bytes(b)))


class AirLink(LocalLink):
    def __init__(self):
        super().__init__()
        self.muted: set[frozenset] = set()
        self.reach: dict[str, set[str]] = {}  # a clip controller's name -> the controllers' names in its range

    def hears(self, a: Controller, b: Controller) -> bool:
        """Whether two controllers are in each other's range: a clip named in ``reach`` only with
        the controllers named for it; any other pair always (one laptop beside its clips)."""
        for clip, other in ((a, b), (b, a)):
            if clip.name in self.reach:
                return other.name in self.reach[clip.name]
        return True

    def send_advertising_pdu(self, sender_controller, packet):
        loop = asyncio.get_running_loop()  # (advertising and connection requests alike)
        for c in list(self.controllers):
            if c is not sender_controller and self.hears(sender_controller, c):
                loop.call_soon(c.on_ll_advertising_pdu, packet)
        if isinstance(packet, ll.ConnectInd):  # six connection intervals to hear from the peripheral
            loop.call_later(max(0.05, 6 * packet.interval * 1.25e-3), self._established, sender_controller, packet)

    def _established(self, central: Controller, packet: ll.ConnectInd) -> None:
        """A CONNECT_IND the advertiser did not take (another central's came first, or it went out
        of range) is a connection that fails to be established (0x3E), as on a radio; bumble's
        central would otherwise hold a link to nobody."""
        conn = central.le_connections.get(packet.advertiser_address)
        peer = self.find_le_controller(packet.advertiser_address)
        if conn is not None and (peer is None or packet.initiator_address not in peer.le_connections):
            central.on_le_disconnected(conn, hci.HCI_ErrorCode.CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR)

    def send_acl_data(self, sender_controller, destination_address, transport, data):
        if transport != PhysicalTransport.LE:
            return super().send_acl_data(sender_controller, destination_address, transport, data)
        connection = sender_controller.le_connections.get(destination_address)
        receiver = self.find_le_controller(destination_address)
        if connection is None or receiver is None or _pair(connection.self_address, destination_address) in self.muted:
            return  # no such link, or out of range: nothing gets through
        asyncio.get_running_loop().call_soon(receiver.on_link_acl_data, connection.self_address, transport, data)

    def send_ll_control_pdu(self, sender_address, receiver_address, packet):
        if _pair(sender_address, receiver_address) in self.muted:
            return
        super().send_ll_control_pdu(sender_address, receiver_address, packet)

    def connections_between(self, a: hci.Address, b: hci.Address):
        key = _pair(a, b)
        for controller in list(self.controllers):
            for connection in list(controller.le_connections.values()):
                if _pair(connection.self_address, connection.peer_address) == key:
                    yield controller, connection

    async def lose(self, laptop: Controller, clip: "ClipController", supervision_timeout_s: float = 0.72,
                   out_of_range_s: float = 0.0) -> None:
        """The runner leaves the laptop's range: data stops at once, after the supervision timeout
        both hosts hear Disconnection Complete (0x08), and nothing gets through (no advertising
        seen, no connection) for out_of_range_s more."""
        pairs = {_pair(conn.self_address, conn.peer_address) for conn in clip.le_connections.values()}
        self.muted |= pairs
        clip.out_of_range = True
        try:
            await asyncio.sleep(supervision_timeout_s)
            for controller in (clip, laptop):
                _time_out(controller, pairs)
            await asyncio.sleep(out_of_range_s)
        finally:
            self.muted -= pairs
            clip.out_of_range = False

    async def cut(self, central: Controller, clip: Controller, supervision_timeout_s: float = 0.72,
                  lag_s: float = 0.0) -> None:
        """The links between a central and a clip break (out of range, or the central lost power):
        data stops at once both ways; the clip hears Disconnection Complete (0x08) after the
        supervision timeout, the central ``lag_s`` later (each side times out from the last packet
        it heard). The central may be gone from the link already (its process killed)."""
        addresses = {bytes(central.random_address), bytes(central.public_address)}
        addresses |= {bytes(conn.self_address) for conn in central.le_connections.values()}
        pairs = {_pair(conn.self_address, conn.peer_address) for conn in clip.le_connections.values()
                 if bytes(conn.peer_address) in addresses}
        if not pairs:
            return
        self.muted |= pairs
        try:
            await asyncio.sleep(supervision_timeout_s)
            _time_out(clip, pairs)
            await asyncio.sleep(lag_s)
            _time_out(central, pairs)
        finally:
            self.muted -= pairs


def _time_out(controller: Controller, pairs: set[frozenset]) -> None:
    """The controller's links in ``pairs`` end with a supervision timeout (0x08) told to its host."""
    for connection in list(controller.le_connections.values()):
        if _pair(connection.self_address, connection.peer_address) in pairs:
            controller.on_le_disconnected(connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)


class ClipController(Controller):
    """The clip's controller: a resolving list, radio-paced transmission, clean resets."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.le_acl_data_packet_length, self.total_num_le_acl_data_packets = 251, 12
        self.resolving_list: list[tuple[hci.Address, bytes]] = []
        self.air = (CONN_INTERVAL_MS, PDUS_PER_EVENT)
        self._queue: collections.deque = collections.deque()
        self._timer = None
        self.out_of_range = False
        self.acl_from_host = 0

    def on_hci_reset_command(self, command):
        self.resolving_list.clear()
        self.le_address_resolution = False
        self.le_legacy_advertiser.stop()
        self._queue.clear()
        return super().on_hci_reset_command(command)

    def on_hci_le_add_device_to_resolving_list_command(self, command):
        if any(command.peer_irk):  # (NimBLE also adds an all-zero entry for its own addresses)
            identity = hci.Address(bytes(command.peer_identity_address), command.peer_identity_address_type)
            self.resolving_list = [e for e in self.resolving_list if e[0] != identity]
            self.resolving_list.append((identity, bytes(command.peer_irk)))
        return super().on_hci_le_add_device_to_resolving_list_command(command)

    def on_hci_le_clear_resolving_list_command(self, command):
        self.resolving_list.clear()
        return super().on_hci_le_clear_resolving_list_command(command)

    def resolve(self, address: hci.Address) -> hci.Address | None:
        if not address.is_resolvable:
            return None
        raw = bytes(address)  # little endian: hash (3), prand (3)
        for identity, irk in self.resolving_list:
            if crypto.ah(irk, raw[3:]) == raw[:3]:
                return identity
        return None

    def on_hci_acl_data_packet(self, packet):
        self.acl_from_host += 1
        self._queue.append(packet)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.air[0] / 1000, self._event)

    def _event(self):
        """One connection event: a few packets go out (and their buffers come back to NimBLE)."""
        interval_ms, per_event = self.air
        for _ in range(min(per_event, len(self._queue))):
            super().on_hci_acl_data_packet(self._queue.popleft())
        self._timer = asyncio.get_running_loop().call_later(interval_ms / 1000, self._event) if self._queue else None

    def send_advertising_pdu(self, packet):
        if not self.out_of_range:  # out of range: unseen
            super().send_advertising_pdu(packet)

    def send_hci_packet(self, packet):
        if (isinstance(packet, hci.HCI_LE_Connection_Complete_Event) and self.le_address_resolution
                and (identity := self.resolve(packet.peer_address)) is not None):
            packet = hci.HCI_LE_Enhanced_Connection_Complete_Event(
                status=packet.status, connection_handle=packet.connection_handle, role=packet.role,
                peer_address_type=identity.address_type + 2,  # a public or random *identity* address
                peer_address=identity, local_resolvable_private_address=hci.Address.ANY_RANDOM,
                peer_resolvable_private_address=packet.peer_address,
                connection_interval=packet.connection_interval, peripheral_latency=packet.peripheral_latency,
                supervision_timeout=packet.supervision_timeout,
                central_clock_accuracy=packet.central_clock_accuracy)
        super().send_hci_packet(packet)


class LaptopController(Controller):
    """The laptop's controller: a scan response carries what the advertiser put in it; a
    cancelled connection attempt ends."""

    def on_hci_le_create_connection_cancel_command(self, command):
        pending, self.pending_le_connection = self.pending_le_connection, None
        if pending is not None:  # told after the command completes (Vol 4, Part E, 7.8.13)
            failed = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, connection_handle=0,
                role=hci.Role.CENTRAL, peer_address_type=pending.peer_address_type,
                peer_address=pending.peer_address, connection_interval=0, peripheral_latency=0,
                supervision_timeout=0, central_clock_accuracy=0)
            asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        # (none pending: it has just connected, and the host gets that connection)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def scan_response_of(self, address: hci.Address) -> bytes | None:
        advertiser = self.link.find_le_controller(address)
        if advertiser is None:
            return None
        if advertiser.le_legacy_advertiser.enabled:
            return bytes(advertiser.le_legacy_advertiser.scan_response_data)
        for adv_set in advertiser.advertising_sets.values():  # (extended commands, legacy PDUs)
            if adv_set.enabled and adv_set.address == address:
                return bytes(adv_set.scan_response_data)
        return None

    def send_hci_packet(self, packet):
        legacy = isinstance(packet, hci.HCI_LE_Advertising_Report_Event)
        if legacy or isinstance(packet, hci.HCI_LE_Extended_Advertising_Report_Event):
            scan_rsp = (hci.HCI_LE_Advertising_Report_Event.EventType.SCAN_RSP if legacy
                        else hci.HCI_LE_Extended_Advertising_Report_Event.EventType.SCAN_RESPONSE)
            for report in packet.reports:
                if report.event_type == scan_rsp:
                    data = self.scan_response_of(report.address)
                    if data is not None:
                        report.data = data
            packet = type(packet)(packet.reports)
        super().send_hci_packet(packet)


def _pairing(_connection) -> PairingConfig:
    """Just Works, LE Secure Connections, bonding; the laptop gives its LTK and IRK (identity)."""
    kd = PairingDelegate.KeyDistribution
    keys = kd.DISTRIBUTE_ENCRYPTION_KEY | kd.DISTRIBUTE_IDENTITY_KEY
    return PairingConfig(sc=True, mitm=False, bonding=True, identity_address_type=PairingConfig.AddressType.RANDOM,
                         delegate=PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
                                                  local_initiator_key_distribution=keys,
                                                  local_responder_key_distribution=keys))


class Air:
    """One link, the laptop (a central using resolvable private addresses from its IRK, with a
    key store: it re-encrypts with a bond rather than pairing again, as BlueZ does) and the
    clips' controllers. ``scanner_backend`` / ``client_backend`` are bleak backends on the laptop,
    for the host's own code (tests/blesim/bleak_bumble.py)."""

    def __init__(self, max_mtu: int = 517, requested_mtu: int | None = 247):
        from blesim.bleak_bumble import backends

        self.link = AirLink()
        self.laptop = controller = LaptopController("laptop", link=self.link)
        config = DeviceConfiguration(name="laptop", address=hci.Address(LAPTOP_IDENTITY), irk=LAPTOP_IRK,
                                     le_privacy_enabled=True, le_rpa_timeout=0)
        self.central = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
        self.central.keystore = MemoryKeyStore()
        self.central.pairing_config_factory = _pairing
        self.central.gatt_server.max_mtu = max_mtu  # a central that cannot go beyond 23 answers so ...
        self.requested_mtu = requested_mtu  # ... and never asks
        self.connect_lock = asyncio.Lock()
        self.scanner_backend, self.client_backend = backends(self)
        self.clips: list[tuple[ClipController, object]] = []

    async def start(self) -> None:
        await self.central.power_on()

    async def new_rpa(self) -> hci.Address:
        """The laptop moves to a new resolvable private address (same IRK), as OSes do."""
        rpa = hci.Address.generate_private_address(self.central.irk)
        await self.central.send_sync_command(hci.HCI_LE_Set_Random_Address_Command(random_address=rpa))
        self.central.random_address = rpa
        return rpa

    async def clip_controller(self, public_address: str) -> tuple[ClipController, str]:
        """A controller for a clip, and the pty path its NimBLE opens (MICROPYBTUART)."""
        path = os.path.join(tempfile.mkdtemp(prefix="clip-hci-"), "hci")
        transport = await open_transport("pty:" + path)
        controller = ClipController("clip", host_source=transport.source, host_sink=transport.sink, link=self.link,
                                    public_address=public_address)
        self.clips.append((controller, transport))
        return controller, os.path.realpath(path)

    async def close(self) -> None:
        for controller, transport in self.clips:
            await transport.close()
