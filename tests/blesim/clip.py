"""A simulated clip as a bumble BLE peripheral, for the host's tests that need many clips or
runs faster than real time (the firmware itself runs on the rig, tests/rig, in real time).
tests/test_blesim_conformance.py holds it to the firmware on the rig: the same GATT table
(clipcore.wire UUIDs, Battery and Device Information), the same advertising and scan-response
bytes, the same answers and events to the same commands.

It streams a simulated run's raw counts as SAMPLES packets through clipcore.protocol in
(scaled) real time, and behaves as firmware/clipfw does where the host can tell: the sample
clock runs whether or not a central is connected (packets no one receives are lost, their
sequence numbers too); clip_id is the low 32 bits of its Bluetooth address; the HELLO is the
events characteristic's value, and goes out after the MTU exchange and on request; control
writes are refused ``not_authenticated`` until the link is encrypted; SET_CONFIG is confirmed by
a STATUS config_changed, a buzz or metronome by a CUE (source: host); the last ``store_s`` seconds
are kept for BACKFILL, sent after the command's RESULT, numbered from seq 0, then a STATUS
backfill_done. Faults for tests: ``drop_link`` (out of range for a while),
``answer_commands=False`` (a clip that never answers), ``garbage=True`` (our UUID, nonsense).
With ``log_dir`` it holds session logs on a "flash" and serves them with the firmware's own
clipfw.logsync; ``lose_log_every=k`` loses every k-th LOG_DATA notification on the air.
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
from bumble import gatt

from clipcore import advertising as AD
from clipcore import cues
from clipcore import protocol as P
from strideclip.stream.packets import encode_packet, encode_samples
from blesim.radio import Radio, make_device

sys.path.append(str(Path(__file__).resolve().parents[2] / "firmware"))
from clipfw.logsync import LogServer  # noqa: E402  (the clip's own code serves its flash logs)

FW_VERSION = "0.3.0"  # what the firmware's Device Information says (firmware/clipfw/__init__.py)


class SimClip:
    def __init__(self, radio: Radio, index: int, name: str, counts: np.ndarray, hello: P.Hello, *,
                 speed: float = 1.0, store_s: float = 120.0, answer_commands: bool = True, garbage: bool = False,
                 battery_pct: int = 87, spp: int = 19, log_dir: str | None = None, lose_log_every: int = 0):
        self.radio = radio
        self.name = name
        self.address = radio.address_for(index)
        self.counts = counts
        self.clip_id = int(self.address.replace(":", "")[-8:], 16)  # the low 32 bits of its address
        self.hello = hello._replace(battery_pct=battery_pct, clip_id=self.clip_id)
        self.rate_hz = hello.rate_hz
        self.speed = speed
        self.spp = spp
        self.store_packets = int(store_s * self.rate_hz / spp) + 1
        self.answer_commands = answer_commands
        self.garbage = garbage
        self.battery_pct = battery_pct
        self.device = make_device(radio.link, self.address, name)
        self.connection = None
        self.encrypted = False
        self.store: deque = deque(maxlen=self.store_packets)  # (first_idx, counts) of recent packets
        self.cue_config = cues.make_config(self.rate_hz)  # what SET_CONFIG changes
        self.commands: list = []  # (opcode, args) the clip acted on
        self.refused: list = []  # (opcode or None, result code)
        self.notified: dict[int, float] = {}  # seq -> time.monotonic() it was notified
        self.sent_packets = self.unsent_packets = 0
        self.offline_until = 0.0
        self.done = asyncio.Event()
        self._next_seq = 0
        self._next_idx = 0
        self._streaming = True
        self.logs = LogServer(log_dir) if log_dir else None
        self.lose_log_every = lose_log_every
        self.log_packets = 0
        self._log_out: list[bytes] = []
        self._build_gatt()
        radio.clips.append(self)

    # -- GATT ---------------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        notify, write = gatt.Characteristic.Properties.NOTIFY, gatt.Characteristic.Properties.WRITE
        read = gatt.Characteristic.Properties.READ
        readable, writeable = gatt.Characteristic.READABLE, gatt.Characteristic.WRITEABLE
        self.samples_char = gatt.Characteristic(P.BLE_SAMPLES_UUID, notify, readable, b"")
        self.events_char = gatt.Characteristic(P.BLE_EVENTS_UUID, notify | read, readable, encode_packet(self.hello))
        self.control_char = gatt.Characteristic(P.BLE_CONTROL_UUID, write | notify, writeable,
                                                gatt.CharacteristicValue(write=self._on_control_write))
        self.battery_char = gatt.Characteristic(gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC, read | notify, readable,
                                                bytes([self.battery_pct]))
        info = [gatt.Characteristic(uuid, read, readable, value) for uuid, value in (
            (gatt.GATT_MANUFACTURER_NAME_STRING_CHARACTERISTIC, b"StrideClip"),
            (gatt.GATT_MODEL_NUMBER_STRING_CHARACTERISTIC, b"StrideClip clip"),
            (gatt.GATT_SERIAL_NUMBER_STRING_CHARACTERISTIC, b"%08x" % self.clip_id),
            (gatt.GATT_FIRMWARE_REVISION_STRING_CHARACTERISTIC, FW_VERSION.encode()))]
        self.device.add_service(gatt.Service(P.BLE_SERVICE_UUID, [self.samples_char, self.events_char,
                                                                   self.control_char]))
        self.device.add_service(gatt.Service(gatt.GATT_BATTERY_SERVICE, [self.battery_char]))
        self.device.add_service(gatt.Service(gatt.GATT_DEVICE_INFORMATION_SERVICE, info))

    async def start(self) -> None:
        self.device.on("connection", self._on_connection)
        await self.device.power_on()
        await self._advertise()
        if self.logs is not None:
            self._later(self._serve_logs())

    async def _advertise(self) -> None:
        """The clip's advertising data (the service UUID) and scan response (name, charge), both
        built by clipcore.advertising, as legacy PDUs as the firmware's NimBLE sends them."""
        await self.device.start_advertising(advertising_data=AD.advertising_payload(P.BLE_SERVICE_UUID),
                                            scan_response_data=AD.scan_response(self.name, self.battery_pct),
                                            advertising_interval_min=20, advertising_interval_max=20)

    def _on_connection(self, connection) -> None:
        self.connection = connection
        self.encrypted = False
        connection.on("disconnection", self._on_disconnection)
        connection.on("connection_encryption_change", lambda *a: setattr(self, "encrypted", connection.is_encrypted))
        connection.on("connection_att_mtu_update", lambda *a: self._later(self._send_event(encode_packet(self.hello))))

    def _on_disconnection(self, reason) -> None:
        self.connection = None
        self.encrypted = False
        self._later(self._readvertise())

    async def _readvertise(self) -> None:
        delay = self.offline_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # out of range: nothing to find until then
        await self._advertise()

    def _later(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks = getattr(self, "_tasks", set())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def host_listening(self) -> bool:
        """A central is connected and subscribed to the samples."""
        conn = self.connection
        cccd = self.device.gatt_server.subscribers.get(conn, {}).get(self.samples_char.handle) if conn else None
        return bool(cccd and cccd[0] & 0x01)

    # -- streaming ----------------------------------------------------------------------------
    async def stream(self) -> None:
        """Sample the whole run at ``speed`` times real time, a packet per ``spp`` samples."""
        t0 = time.monotonic()
        n = len(self.counts)
        while self._next_idx < n:
            due = min(n, int((time.monotonic() - t0) * self.speed * self.rate_hz))
            while self._next_idx + self.spp <= due or (due == n and self._next_idx < n):
                await self._packet()
            await asyncio.sleep(0.005)
        self.done.set()

    async def _packet(self) -> None:
        first, seq = self._next_idx, self._next_seq
        block = self.counts[first : first + self.spp]
        self._next_idx += len(block)
        self._next_seq = (seq + 1) & 0xFFFF
        self.store.append((first, block))
        if self.garbage:
            pkt = bytes(np.random.default_rng(seq).integers(0, 256, 40, dtype=np.uint8))
        else:
            pkt = encode_samples(seq, first, block)
        if await self._notify(self.samples_char, pkt):
            self.notified[seq] = time.monotonic()
            self.sent_packets += 1
        else:
            self.unsent_packets += 1

    async def _notify(self, char, pkt: bytes) -> bool:
        conn = self.connection
        if conn is None or len(pkt) > conn.att_mtu - 3:
            return False  # no central, or the MTU is not raised yet: the packet is not sent
        cccd = self.device.gatt_server.subscribers.get(conn, {}).get(char.handle)
        if not cccd or not cccd[0] & 0x01:
            return False  # as a host that has not subscribed yet would: it never sees it
        try:
            await self.device.notify_subscriber(conn, char, pkt)
        except Exception:  # the link went down while sending
            return False
        return True

    # -- flash logs (clipfw.logsync, as on the clip's main loop) --------------------------------
    def host_connected(self) -> bool:
        return self.connection is not None

    def max_payload(self) -> int:
        return self.connection.att_mtu - 3 if self.connection else 20

    def send(self, pkt, n: int) -> bool:
        """The link as LogServer.pump sees it: pieces queued here, notified right after."""
        if self.connection is None:
            return False
        self._log_out.append(bytes(pkt[:n]))
        return True

    async def _serve_logs(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.logs.pump(self)
            out, self._log_out = self._log_out, []
            for pkt in out:
                self.log_packets += 1
                if self.lose_log_every and self.log_packets % self.lose_log_every == 0:
                    continue  # lost on the air
                await self._notify(self.samples_char, pkt)

    async def _send_event(self, pkt: bytes) -> None:
        await self._notify(self.events_char, pkt)

    # -- faults -------------------------------------------------------------------------------
    async def drop_link(self, offline_s: float = 0.0) -> None:
        """The runner went out of range: the link drops and the clip cannot be found for offline_s."""
        self.offline_until = time.monotonic() + offline_s
        conn = self.connection
        if conn is not None:
            await conn.disconnect()

    # -- control ------------------------------------------------------------------------------
    def _on_control_write(self, connection, value: bytes) -> None:
        self._later(self._command(bytes(value)))

    async def _command(self, pkt: bytes) -> None:
        code = P.command_result_code(pkt)
        cmd_id = pkt[1] if len(pkt) > 1 else 0
        opcode = pkt[2] if len(pkt) > 2 else 0
        if self.garbage:
            await self._notify(self.control_char, b"\xde\xad" + pkt)
            return
        if not self.answer_commands:
            self.refused.append((opcode, "ignored"))
            return
        detail = 0
        if code == P.RESULT_OK and not self.encrypted:
            code = P.RESULT_NOT_AUTHENTICATED
        after = None
        if code == P.RESULT_OK:
            _, opcode, args = P.parse_command(pkt)
            code, detail, after = await self._act(opcode, args)
            if code == P.RESULT_OK:
                self.commands.append((opcode, args))
        if code != P.RESULT_OK:
            self.refused.append((opcode, code))
        buf = bytearray(P.RESULT_BYTES)
        P.pack_result(buf, cmd_id, opcode, code, detail)
        await self._notify(self.control_char, bytes(buf))
        if after is not None:  # (the backfill: after its RESULT, as the firmware sends it)
            await after

    async def _event(self, pack, *fields) -> None:
        buf = bytearray(32)
        await self._send_event(bytes(buf[:pack(buf, self._next_idx, *fields)]))

    async def _act(self, opcode: int, args: tuple):
        """(result code, detail, what to send after the RESULT or None), as firmware/clipfw/app.py."""
        if opcode == P.OP_HELLO:
            await self._send_event(encode_packet(self.hello))
        elif opcode == P.OP_SET_CONFIG:
            code = cues.set_config(self.cue_config, args[0], args[1])
            if code != P.RESULT_OK:
                return code, args[0], None
            await self._event(P.pack_status, P.STATUS_CONFIG_CHANGED, args[0])
            return P.RESULT_OK, args[1], None
        elif opcode == P.OP_BACKFILL:
            first_idx, count = args
            oldest = self.store[0][0] if self.store else -1
            if not self.store or first_idx < oldest or first_idx + count > self._next_idx:
                return P.RESULT_UNAVAILABLE, oldest, None
            return P.RESULT_OK, count, self._backfill(first_idx, first_idx + count)
        elif opcode in (P.OP_LOG_LIST, P.OP_LOG_READ, P.OP_LOG_DELETE):
            if self.logs is None:
                return P.RESULT_UNAVAILABLE, 0, None
            return (*self.logs.command(opcode, args), None)
        elif opcode == P.OP_STOP_STREAM:
            self._streaming = False
        elif opcode == P.OP_START_STREAM:
            self._streaming = True
        elif opcode == P.OP_BUZZ:
            await self._event(P.pack_cue, P.CUE_BUZZ, P.REASON_MANUAL, P.SOURCE_HOST, 0, 0)
        elif opcode == P.OP_METRONOME_START:
            await self._event(P.pack_cue, P.CUE_METRONOME_START, P.REASON_MANUAL, P.SOURCE_HOST, args[0], args[1])
        elif opcode == P.OP_METRONOME_STOP:
            await self._event(P.pack_cue, P.CUE_METRONOME_STOP, P.REASON_MANUAL, P.SOURCE_HOST, 0, 0)
        return P.RESULT_OK, 0, None

    async def _backfill(self, start: int, end: int) -> None:
        """The stored packets overlapping [start, end), whole, as BACKFILL numbered from seq 0;
        then a STATUS backfill_done with the samples sent."""
        sent = seq = 0
        for first, block in list(self.store):
            if first + len(block) <= start or first >= end:
                continue
            if await self._notify(self.samples_char, encode_samples(seq, first, block, backfill=True)):
                sent += len(block)
                seq += 1
        await self._event(P.pack_status, P.STATUS_BACKFILL_DONE, sent)
