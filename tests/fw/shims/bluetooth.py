"""Test-only stand-in for MicroPython's `bluetooth` on the unix port (tests/test_firmware.py).

The clip side is the real API shape: BLE().active/config/irq/gatts_register_services/
gatts_write/gatts_read/gatts_notify/gap_advertise. The central side is driven by the test
(``central_*``) and delivers the same IRQ events a stack would. Notifications are written to
``NOTIFY_FILE`` (records: handle u8, length u16, bytes) so the host side can decode them.
"""
_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21
_IRQ_ENCRYPTION_UPDATE = 28

NOTIFY_FILE = None  # an open binary file, set by the test


def UUID(value):
    """A UUID as its on-air bytes (little-endian): like the real bluetooth.UUID, bytes() of it
    gives them, and the stack takes it as an opaque handle."""
    if isinstance(value, int):
        return bytes((value & 0xFF, value >> 8))
    h = value.replace("-", "")
    return bytes(int(h[i:i + 2], 16) for i in range(30, -2, -2))


class BLE:
    def __init__(self):
        self._active = False
        self.cfg = {}
        self.handler = None
        self.values = {}
        self.next_handle = 1
        self.adv_data = None
        self.advertising = 0
        self.conn = -1
        self.mtu = 23
        self.header = bytearray(3)

    def active(self, value=None):
        if value is not None:
            self._active = value
        return self._active

    def config(self, *args, **kw):
        if args:
            return self.cfg.get(args[0])
        self.cfg.update(kw)

    def irq(self, handler):
        self.handler = handler

    def gatts_register_services(self, services):
        out = []
        for _uuid, chars in services:
            handles = []
            for _c in chars:
                handles.append(self.next_handle)
                self.values[self.next_handle] = b""
                self.next_handle += 1
            out.append(tuple(handles))
        return tuple(out)

    def gatts_set_buffer(self, handle, size):
        pass

    def gatts_write(self, handle, data):
        self.values[handle] = bytes(data)

    def gatts_read(self, handle):
        return self.values[handle]

    def gatts_notify(self, conn, handle, data):
        if conn != self.conn:
            raise OSError(128)  # ENOTCONN
        if len(data) > self.mtu - 3:
            raise OSError(22)
        n = len(data)
        self.header[0] = handle
        self.header[1] = n & 0xFF
        self.header[2] = n >> 8
        NOTIFY_FILE.write(self.header)
        NOTIFY_FILE.write(data)

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None):
        self.adv_data = adv_data
        self.resp_data = resp_data
        self.advertising += 1

    # -- the central, driven by the test --------------------------------------------------------
    def central_connect(self, conn=0):
        self.conn = conn
        self.mtu = 23
        self.handler(_IRQ_CENTRAL_CONNECT, (conn, 0, b"\x00" * 6))

    def central_mtu(self, mtu):
        self.mtu = mtu
        self.handler(_IRQ_MTU_EXCHANGED, (self.conn, mtu))

    def central_encrypt(self, bonded=True):
        self.handler(_IRQ_ENCRYPTION_UPDATE, (self.conn, 1, 0, 1 if bonded else 0, 16))

    def central_write(self, handle, data):
        self.values[handle] = bytes(data)
        self.handler(_IRQ_GATTS_WRITE, (self.conn, handle))

    def central_disconnect(self):
        conn = self.conn
        self.conn = -1
        self.handler(_IRQ_CENTRAL_DISCONNECT, (conn, 0, b"\x00" * 6))
