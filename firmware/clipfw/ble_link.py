"""The BLE peripheral: the clip's GATT service with MicroPython's low-level `bluetooth` module.

Service (UUIDs in clipcore.wire, docs/protocol.md "BLE"): a samples characteristic (notify:
SAMPLES/BACKFILL/LOG_DATA), an events characteristic (notify: HELLO, STEP, CUE, STATUS; read: the
HELLO, so a host on any MTU can have it) and a control characteristic (write with response:
COMMAND; notify: RESULT); plus the standard Battery and Device Information services. Packets
travel bare (no framing): one packet per notification.

The event handler runs on the Bluetooth stack's task; if it ever raises, MicroPython drops it for
good (no more connections or writes until a reboot). So it only records what happened (the
aioble way) and catches everything: a connection, an MTU, the encryption state, a control write
copied into a queue made once, a bonding key changed in RAM. The main loop acts on it in
``poll``: greets a new central, asks for a larger MTU, answers writes, saves bonding keys to
flash, advertises again, and reports a caught error in a STATUS.

Order at start-up (as MicroPython's examples/bluetooth/ble_bonding_peripheral.py): the keys are
loaded and the handler registered before the stack is activated, because NimBLE asks for the
stored identity keys (IRKs) as it starts; without them a bonded phone or Mac, which connects from
a resolvable private address, is not recognised after a reboot.

Control writes are answered ``not_authenticated`` until the link is encrypted with a bonded
central. While no central is connected, ``send`` drops packets (the app logs to flash and keeps
its backfill store; the host asks for the gap after reconnecting). A SAMPLES packet needs MTU 239
or more: on a smaller MTU the samples go to flash and the store only, the clip says so once in a
STATUS small_mtu, and events, commands, the HELLO (readable) and log transfers (in pieces that
fit) still work.
"""
import bluetooth
from micropython import const

from clipcore import advertising as AD
from clipcore import wire as P
from clipfw.views import Views

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)

_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

_ADV_INTERVAL_US = const(100_000)
_IO_NO_INPUT_OUTPUT = const(3)
_MTU_WAIT_MS = const(1000)  # a central that has not raised the MTU by then will not
_WRITE_SLOTS = const(4)  # control writes queued between two passes of the loop
_WRITE_BYTES = const(64)
MAX_SECRETS = const(24)  # a few bonded hosts (each bond stores several keys)


def load_secrets(path):
    """Bonding keys from their file, in the order they were stored: records of type u8, key
    length u8, key, value length u8, value. A missing or damaged file gives what it holds intact
    (hosts pair again). Returns (dict, order)."""
    out = {}
    order = []
    if path is None:
        return out, order
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return out, order
    i = 0
    while i + 2 <= len(data):
        t, kn = data[i], data[i + 1]
        if i + 3 + kn > len(data) or i + 3 + kn + data[i + 2 + kn] > len(data):
            break
        key = (t, data[i + 2 : i + 2 + kn])
        vn = data[i + 2 + kn]
        if key not in out:
            order.append(key)
        out[key] = data[i + 3 + kn : i + 3 + kn + vn]
        i += 3 + kn + vn
    return out, order


def save_secrets(path, secrets, order):
    """Rewrite the file (pairing is rare) through a temporary one, so a power cut leaves the
    old file or the new, never half of one."""
    if path is None:
        return
    import os

    tmp = path + ".new"
    with open(tmp, "wb") as f:
        for key in order:
            t, k = key
            value = secrets[key]
            f.write(bytes((t, len(k))) + k + bytes((len(value),)) + value)
    try:
        os.rename(tmp, path)
    except OSError:  # a file system that will not rename over a file (FAT)
        os.remove(path)
        os.rename(tmp, path)


class BleLink:
    def __init__(self, name, fw_version, ble=None, secrets_path=None):
        self.secrets_path = secrets_path  # bonding keys survive a reboot there (None: RAM only)
        self.secrets, self.order = load_secrets(secrets_path)
        self.secrets_dirty = False
        self.ble = ble or bluetooth.BLE()
        self.ble.irq(self._irq)  # before active(): NimBLE loads the stored IRKs as it starts
        self.ble.config(bond=True, le_secure=True, mitm=False, io=_IO_NO_INPUT_OUTPUT)
        self.ble.active(True)
        self.ble.config(gap_name=name, mtu=P.BLE_MTU)
        addr = self.ble.config("mac")[1]
        self.clip_id = int.from_bytes(addr[2:], "big")  # the low 32 bits of the address hosts see
        svc = (bluetooth.UUID(P.BLE_SERVICE_UUID), (
            (bluetooth.UUID(P.BLE_SAMPLES_UUID), _FLAG_NOTIFY),
            (bluetooth.UUID(P.BLE_EVENTS_UUID), _FLAG_NOTIFY | _FLAG_READ),
            (bluetooth.UUID(P.BLE_CONTROL_UUID), _FLAG_WRITE | _FLAG_NOTIFY),
        ))
        battery = (bluetooth.UUID(0x180F), ((bluetooth.UUID(0x2A19), _FLAG_READ | _FLAG_NOTIFY),))
        info = (bluetooth.UUID(0x180A), (
            (bluetooth.UUID(0x2A29), _FLAG_READ),  # manufacturer
            (bluetooth.UUID(0x2A24), _FLAG_READ),  # model
            (bluetooth.UUID(0x2A25), _FLAG_READ),  # serial number
            (bluetooth.UUID(0x2A26), _FLAG_READ),  # firmware revision
        ))
        ((self.h_samples, self.h_events, self.h_control), (self.h_battery,),
         (h_mfr, h_model, h_serial, h_fw)) = self.ble.gatts_register_services((svc, battery, info))
        self.ble.gatts_set_buffer(self.h_control, _WRITE_BYTES)
        self.ble.gatts_write(h_mfr, b"StrideClip")
        self.ble.gatts_write(h_model, b"StrideClip clip")
        self.ble.gatts_write(h_serial, b"%08x" % self.clip_id)
        self.ble.gatts_write(h_fw, b"%d.%d.%d" % fw_version)
        self.name = name
        self.adv = AD.advertising_payload(P.BLE_SERVICE_UUID)
        self.resp = AD.scan_response(name, P.BATTERY_UNKNOWN)
        self.conn = -1  # connection handle of the central, -1: none
        self.encrypted = False
        self.mtu = 23
        self.connected_ms = 0
        self.greet = False  # a new central: HELLO once the MTU allows it
        self.mtu_asked = False
        self.small_mtu_said = False
        self.readvertise = False
        # control writes the handler copied, made once: slot k at k * _WRITE_BYTES
        self.writes = bytearray(_WRITE_SLOTS * _WRITE_BYTES)
        self.write_lens = [0] * _WRITE_SLOTS
        self.writes_in = 0  # written by the handler ...
        self.writes_out = 0  # ... taken by the loop
        self.writes_lost = 0
        self.irq_errors = 0
        self.irq_errors_said = 0
        self.views = Views()
        self.out = bytearray(0)
        self.notifications = 0
        self.dropped = 0  # packets not sent: no central, too large for the MTU, or the stack busy
        self.advertise()

    def advertise(self):
        self.ble.gap_advertise(_ADV_INTERVAL_US, adv_data=self.adv, resp_data=self.resp)

    # -- the stack's event handler: record, never raise ------------------------------------------
    def _irq(self, event, data):
        try:
            return self._event(event, data)
        except Exception:  # noqa: BLE001  (an exception here would disable the handler for good)
            self.irq_errors += 1
            return None

    def _event(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.encrypted = False
            self.mtu = 23
            self.greet = True
            self.mtu_asked = False
            self.small_mtu_said = False
            self.connected_ms = -1  # the loop stamps it
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = -1
            self.encrypted = False
            self.greet = False
            self.readvertise = True  # be found again at once (from the loop)
        elif event == _IRQ_MTU_EXCHANGED:
            self.mtu = data[1]
        elif event == _IRQ_ENCRYPTION_UPDATE:
            self.encrypted = bool(data[1]) and bool(data[3])  # encrypted, with a bonded central
        elif event == _IRQ_GATTS_WRITE and data[1] == self.h_control:
            if self.writes_in - self.writes_out >= _WRITE_SLOTS:
                self.writes_lost += 1  # the host gets no RESULT and asks again
                return None
            value = self.ble.gatts_read(self.h_control)
            slot = self.writes_in % _WRITE_SLOTS
            n = min(len(value), _WRITE_BYTES)
            o = slot * _WRITE_BYTES
            for i in range(n):
                self.writes[o + i] = value[i]
            self.write_lens[slot] = n
            self.writes_in += 1
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            if key is None:  # the stack enumerates: the index'th secret of this type
                k = 0
                for t, kk in self.order:
                    if t == sec_type:
                        if k == index:
                            return self.secrets[(t, kk)]
                        k += 1
                return None
            return self.secrets.get((sec_type, bytes(key)))
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            k = (sec_type, bytes(key))
            if value is None:
                if k in self.secrets:
                    del self.secrets[k]
                    self.order.remove(k)
            else:
                if k not in self.secrets:
                    if len(self.order) >= MAX_SECRETS:  # room for a new bond: forget the oldest
                        del self.secrets[self.order.pop(0)]
                    self.order.append(k)
                self.secrets[k] = bytes(value)
            self.secrets_dirty = True  # written to flash by the loop, not on the stack's task
            return True
        return None

    # -- the app's side ---------------------------------------------------------------------------
    def prepare(self, out, packet_lengths):
        self.out = out
        self.views.prepare(out, packet_lengths)

    def host_connected(self):
        return self.conn >= 0

    def max_payload(self):
        return self.mtu - P.ATT_OVERHEAD_BYTES

    def set_hello(self, pkt, n):
        """The HELLO as the events characteristic's value: a host reads it on any MTU."""
        self.ble.gatts_write(self.h_events, bytes(pkt[:n]))

    def send(self, pkt, n):
        """One packet as one notification: samples on their own characteristic, the rest on
        events. False if it did not go out (no central, too large for the MTU, stack busy): the
        app then logs it to flash, and the samples stay in the backfill store."""
        if self.conn < 0 or n > self.mtu - P.ATT_OVERHEAD_BYTES:
            self.dropped += 1
            return False
        out = self.out
        if n == len(pkt):
            out[0:n] = pkt
        else:
            for i in range(n):
                out[i] = pkt[i]
        ptype = pkt[0] & 0x0F
        # bulk (samples, their backfill, log transfers) on one characteristic, the rest on events
        handle = self.h_samples if ptype == P.T_SAMPLES or ptype == P.T_BACKFILL or ptype == P.T_LOG_DATA \
            else self.h_events
        if ptype == P.T_RESULT:
            handle = self.h_control
        try:
            self.ble.gatts_notify(self.conn, handle, self.views.get(out, n))
        except OSError:
            self.dropped += 1  # ENOMEM: the stack's buffers are full; the host backfills by index
            return False
        self.notifications += 1
        return True

    def poll(self, app):
        """What the handler recorded: greet, ask for the MTU, answer writes, save keys."""
        import time

        now = time.ticks_ms()
        if self.readvertise:
            self.readvertise = False
            self._guarded(self.advertise, app, P.ERROR_BLE_EVENT)
        if self.irq_errors != self.irq_errors_said:
            self.irq_errors_said = self.irq_errors
            app.recovered(P.ERROR_BLE_EVENT)
        if self.secrets_dirty:
            self.secrets_dirty = False
            self._guarded(self._save, app, P.ERROR_FLASH)
        if self.conn >= 0:
            if self.connected_ms < 0:
                self.connected_ms = now
            if not self.mtu_asked:  # a central that never asks still gets the MTU raised
                self.mtu_asked = True
                try:
                    self.ble.gattc_exchange_mtu(self.conn)
                except OSError:
                    pass  # the central is exchanging already, or cannot
            waited = time.ticks_diff(now, self.connected_ms) >= _MTU_WAIT_MS
            if self.greet and (self.mtu >= P.HELLO_BYTES + P.ATT_OVERHEAD_BYTES or waited):
                self.greet = False
                app.send_packet(app.small, P.pack_hello(app.small, app.hello))
            if not self.small_mtu_said and waited and self.mtu < app.packet_lengths[-1] + P.ATT_OVERHEAD_BYTES:
                self.small_mtu_said = True
                app._status(P.STATUS_SMALL_MTU, self.mtu)
        while self.writes_out != self.writes_in:
            slot = self.writes_out % _WRITE_SLOTS
            o = slot * _WRITE_BYTES
            pkt = bytes(self.writes[o:o + self.write_lens[slot]])
            self.writes_out += 1
            app.send_packet(app.small, app.command(pkt, authenticated=self.encrypted))

    def _guarded(self, fn, app, where):
        try:
            fn()
        except Exception:  # noqa: BLE001  (a failing flash or stack call is reported, not fatal)
            app.recovered(where)

    def _save(self):
        save_secrets(self.secrets_path, self.secrets, self.order)

    def battery(self, pct):
        """The charge on the Battery service (notified to a connected central) and in the scan
        response (re-advertised while no central is connected, so a scan shows it)."""
        self.ble.gatts_write(self.h_battery, bytes((pct,)))
        if self.conn >= 0:
            try:
                self.ble.gatts_notify(self.conn, self.h_battery)
            except OSError:
                pass
        self.resp = AD.scan_response(self.name, pct)
        if self.conn < 0:
            self.advertise()
