"""The BLE peripheral: the clip's GATT service with MicroPython's low-level `bluetooth` module.

Service (UUIDs in clipcore.wire, docs/protocol.md "BLE"): a samples characteristic (notify:
SAMPLES/BACKFILL), an events characteristic (notify: HELLO, STEP, CUE, STATUS) and a control
characteristic (write with response: COMMAND; notify: RESULT); plus the standard Battery and
Device Information services. Packets travel bare (no framing): one packet per notification.

The IRQ handler only records what happened (the aioble way): a connection, an MTU, the
encryption state, or a control write copied into a buffer made once. The main loop acts on it
in ``poll``. Control writes are answered ``not_authenticated`` until the link is encrypted with
a bonded central. While no central is connected, ``send`` drops packets (the app logs to flash
and keeps its backfill store; the host asks for the gap after reconnecting).
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


MAX_SECRETS = const(24)  # a few bonded hosts (each bond stores several keys)


def load_secrets(path):
    """Bonding keys from their file: records of type u8, key length u8, key, value length u8,
    value. A missing or damaged file gives what it holds intact (hosts pair again)."""
    out = {}
    if path is None:
        return out
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return out
    i = 0
    while i + 2 <= len(data):
        t, kn = data[i], data[i + 1]
        if i + 3 + kn > len(data) or i + 3 + kn + data[i + 2 + kn] > len(data):
            break
        key = data[i + 2 : i + 2 + kn]
        vn = data[i + 2 + kn]
        out[(t, key)] = data[i + 3 + kn : i + 3 + kn + vn]
        i += 3 + kn + vn
    return out


def save_secrets(path, secrets):
    """Rewrite the file (pairing is rare) through a temporary one, so a power cut leaves the
    old file or the new, never half of one."""
    if path is None:
        return
    import os

    tmp = path + ".new"
    with open(tmp, "wb") as f:
        for (t, key), value in secrets.items():
            f.write(bytes((t, len(key))) + key + bytes((len(value),)) + value)
    try:
        os.rename(tmp, path)
    except OSError:  # a file system that will not rename over a file (FAT)
        os.remove(path)
        os.rename(tmp, path)


class BleLink:
    def __init__(self, name, clip_id, fw_version, ble=None, secrets_path=None):
        self.ble = ble or bluetooth.BLE()
        self.ble.active(True)
        self.ble.config(gap_name=name, mtu=P.BLE_MTU)
        self.ble.config(bond=True, le_secure=True, mitm=False, io=_IO_NO_INPUT_OUTPUT)
        self.ble.irq(self._irq)
        svc = (bluetooth.UUID(P.BLE_SERVICE_UUID), (
            (bluetooth.UUID(P.BLE_SAMPLES_UUID), _FLAG_NOTIFY),
            (bluetooth.UUID(P.BLE_EVENTS_UUID), _FLAG_NOTIFY),
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
        self.ble.gatts_set_buffer(self.h_control, 64)
        self.ble.gatts_write(h_mfr, b"StrideClip")
        self.ble.gatts_write(h_model, b"StrideClip clip")
        self.ble.gatts_write(h_serial, b"%08x" % clip_id)
        self.ble.gatts_write(h_fw, b"%d.%d.%d" % fw_version)
        self.name = name
        self.adv = AD.advertising_payload(P.BLE_SERVICE_UUID)
        self.resp = AD.scan_response(name, P.BATTERY_UNKNOWN)
        self.conn = -1  # connection handle of the central, -1: none
        self.encrypted = False
        self.mtu = 23
        self.write_buf = bytearray(64)  # the control write the IRQ copied, made once
        self.write_len = 0
        self.secrets_path = secrets_path  # bonding keys survive a reboot there (None: RAM only)
        self.secrets = load_secrets(secrets_path)
        self.views = Views()
        self.out = bytearray(0)
        self.greet = False
        self.notifications = 0
        self.dropped = 0  # packets not sent: no central, or one larger than the MTU allows
        self.advertise()

    def advertise(self):
        self.ble.gap_advertise(_ADV_INTERVAL_US, adv_data=self.adv, resp_data=self.resp)

    # -- IRQ: record, do not act ----------------------------------------------------------------
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.encrypted = False
            self.mtu = 23
            self.greet = True  # the main loop sends the HELLO
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = -1
            self.encrypted = False
            self.write_len = 0
            self.advertise()  # be found again at once
        elif event == _IRQ_MTU_EXCHANGED:
            self.mtu = data[1]
        elif event == _IRQ_ENCRYPTION_UPDATE:
            self.encrypted = bool(data[1]) and bool(data[3])  # encrypted, with a bonded central
        elif event == _IRQ_GATTS_WRITE and data[1] == self.h_control:
            value = self.ble.gatts_read(self.h_control)
            n = min(len(value), len(self.write_buf))
            for i in range(n):
                self.write_buf[i] = value[i]
            self.write_len = n if len(value) <= len(self.write_buf) else len(self.write_buf) + 1
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            if key is None:  # the stack enumerates: the index'th secret of this type
                found = [v for (t, _k), v in self.secrets.items() if t == sec_type]
                return found[index] if index < len(found) else None
            return self.secrets.get((sec_type, bytes(key)))
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            if value is None:
                self.secrets.pop((sec_type, bytes(key)), None)
            else:
                k = (sec_type, bytes(key))
                if k not in self.secrets and len(self.secrets) >= MAX_SECRETS:
                    self.secrets.pop(next(iter(self.secrets)))  # room for a new bond: forget one
                self.secrets[k] = bytes(value)
            save_secrets(self.secrets_path, self.secrets)
            return True
        return None

    # -- the app's side ---------------------------------------------------------------------------
    def prepare(self, out, packet_lengths):
        self.out = out
        self.views.prepare(out, packet_lengths)

    def host_connected(self):
        return self.conn >= 0

    def send(self, pkt, n):
        """One packet as one notification: samples on their own characteristic, the rest on
        events. False if it did not go out (no central, MTU not yet raised, stack busy): the
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
            self.dropped += 1  # the stack is out of buffers: the host backfills by sample index
            return False
        self.notifications += 1
        return True

    def poll(self, app):
        """Greet a new central with the HELLO; answer a control write that arrived."""
        if self.greet and self.mtu > 23:  # after the MTU exchange: the HELLO is 23 bytes + 3
            self.greet = False
            app.send_packet(app.small, P.pack_hello(app.small, app.hello))
        n = self.write_len
        if not n:
            return
        self.write_len = 0
        if n > len(self.write_buf):  # longer than any command: refused as it stands
            app.send_packet(app.small, P.pack_result(app.small, self.write_buf[1], self.write_buf[2],
                                                     P.RESULT_BAD_LENGTH, 0))
            return
        pkt = bytes(self.write_buf[:n])
        app.send_packet(app.small, app.command(pkt, authenticated=self.encrypted))

    def battery(self, pct):
        """The charge on the Battery service and in the scan response (re-advertised while no
        central is connected, so a scan shows it)."""
        self.ble.gatts_write(self.h_battery, bytes((pct,)))
        self.resp = AD.scan_response(self.name, pct)
        if self.conn < 0:
            self.advertise()
