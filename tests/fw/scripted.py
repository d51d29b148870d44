"""Scripted hosts for tests/fw/run_app.py, loaded only by the tests that need them (the heap
is the clip's). A script is a file of timed records, read one at a time so a long script costs
no heap: t_ms u32, action u8, length u16, bytes."""
import machine  # the shim: its simulated clock


class Script:
    def __init__(self, path):
        self.f = open(path, "rb")
        self.head = bytearray(7)
        self.due_ms = -1
        self._next()

    def _next(self):
        if self.f.readinto(self.head) == 7:
            self.due_ms = self.head[0] | self.head[1] << 8 | self.head[2] << 16 | self.head[3] << 24
        else:
            self.due_ms = -1

    def pop_due(self, now_ms):
        """(action, bytes) of the next record if it is due, else None."""
        if self.due_ms < 0 or self.due_ms > now_ms:
            return None
        action = self.head[4]
        data = self.f.read(self.head[5] | self.head[6] << 8)
        self._next()
        return action, data


class ScheduledInput(Script):
    """Bytes a host writes to the clip's serial port (action 0), each at its time."""

    @property
    def items(self):
        return self.due_ms >= 0  # something still to write

    def read(self, n):
        due = self.pop_due(machine.CLOCK.now_ms)
        return due[1] if due else None


class ScheduledCentral(Script):
    """A BLE central's actions: 1 connect, 2 MTU (u16), 3 encrypt (bonded u8), 4 write to the
    control characteristic, 5 disconnect."""

    def __init__(self, path, ble, control_handle):
        super().__init__(path)
        self.ble = ble
        self.control = control_handle

    def run_due(self, now_ms):
        due = self.pop_due(now_ms)
        while due:
            action, data = due
            if action == 1:
                self.ble.central_connect()
            elif action == 2:
                self.ble.central_mtu(data[0] | data[1] << 8)
            elif action == 3:
                self.ble.central_encrypt(bool(data[0]))
            elif action == 4:
                self.ble.central_write(self.control, data)
            elif action == 5:
                self.ble.central_disconnect()
            due = self.pop_due(now_ms)
