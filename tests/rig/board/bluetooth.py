"""MicroPython's own `bluetooth` module (NimBLE) on the rig, with one fault a test can switch on
(tests/rig/README.md): the heap is exhausted while the event handler runs, so the value it reads
(gatts_read allocates a bytes object) cannot be made and MemoryError is raised in the handler,
as on an ESP32 whose heap a leak has filled. (The rig cannot lock the heap instead: this port's
NimBLE allocates its own memory from the MicroPython heap, the ESP32's does not.) Every other
call goes straight to the real module; the handler is the firmware's own, so MicroPython drops
it for good if it ever raises, as on the board."""
import ubluetooth
from ubluetooth import UUID  # noqa: F401  (the real one)

import rigcore

FLAG_READ = ubluetooth.FLAG_READ
FLAG_WRITE = ubluetooth.FLAG_WRITE
FLAG_NOTIFY = ubluetooth.FLAG_NOTIFY


class BLE:
    def __init__(self):
        self._ble = ubluetooth.BLE()

    def active(self, *args):
        return self._ble.active(*args)

    def config(self, *args, **kw):
        return self._ble.config(*args, **kw)

    def irq(self, handler):
        return self._ble.irq(handler)

    def gatts_register_services(self, services):
        return self._ble.gatts_register_services(services)

    def gatts_set_buffer(self, handle, size, append=False):
        return self._ble.gatts_set_buffer(handle, size, append)

    def gatts_write(self, handle, data, send_update=False):
        return self._ble.gatts_write(handle, data, send_update)

    def gatts_read(self, handle):
        rig = rigcore.RIG
        if rig.ble_alloc_fail_until > rig.clock.ms:
            rig.report["ble_alloc_failures"] = rig.report.get("ble_alloc_failures", 0) + 1
            raise MemoryError("memory allocation failed, allocating 32 bytes")
        return self._ble.gatts_read(handle)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        if data is None:
            return self._ble.gatts_notify(conn_handle, value_handle)
        return self._ble.gatts_notify(conn_handle, value_handle, data)

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        return self._ble.gap_advertise(interval_us, adv_data=adv_data, resp_data=resp_data, connectable=connectable)

    def gattc_exchange_mtu(self, conn_handle):
        return self._ble.gattc_exchange_mtu(conn_handle)

    def gap_disconnect(self, conn_handle):
        return self._ble.gap_disconnect(conn_handle)
