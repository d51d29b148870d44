"""USB serial mode: the same frames as over BLE, on a byte stream (docs/protocol.md, framing).

Frames go out on ``out`` (the USB CDC port: sys.stdout.buffer on the clip); command frames come
in on ``inp`` (sys.stdin.buffer), read without blocking through ``poller`` (select.poll on the
clip). A wired host is trusted: no pairing on a cable.

On the ESP32 a 0x03 byte arriving on the USB serial port is Ctrl-C: the port's receive interrupt
raises KeyboardInterrupt in whatever runs, and SET_CONFIG's opcode is 3, CRCs are any byte. So
the link turns that off (micropython.kbd_intr(-1)) and stops the app itself on three Ctrl-C in a
row, within half a second, that are not inside a frame: what a developer presses to get the REPL back,
and what `strideclip flash` and `sync --port` send before mpremote.
"""
import time

import micropython
from clipcore import wire as P

from clipfw.views import Views

CTRL_C = 3
CTRL_C_TO_STOP = 3
CTRL_C_WITHIN_MS = 500


class SerialLink:
    def __init__(self, out, inp=None, poller=None):
        self.out = out
        self.inp = inp
        self.poller = poller
        self.deframer = P.Deframer(64)
        self.views = Views()
        self.frame = bytearray(0)
        self.frames_out = 0
        self.bytes_out = 0
        self.ctrl_c = 0  # Ctrl-C bytes in a row outside any frame ...
        self.ctrl_c_ms = 0  # ... since the first of them
        self.one = bytearray(1)
        if inp is not None:
            micropython.kbd_intr(-1)  # 0x03 is data here (the module docstring)

    def prepare(self, out, packet_lengths):
        """The frame buffer (made at boot) and views for the frame lengths the app will send."""
        self.frame = out
        self.views.prepare(out, [P.FRAME_OVERHEAD_BYTES + n for n in packet_lengths])

    def send(self, pkt, n):
        """One packet, framed (sync, length, CRC) as on every byte stream."""
        end = P.frame_into(self.frame, 0, pkt, n)
        self.out.write(self.views.get(self.frame, end))
        self.frames_out += 1
        self.bytes_out += end
        return True

    def host_connected(self):
        return self.inp is not None

    def max_payload(self):
        return 512  # a byte stream: any packet the clip makes fits a frame

    def set_hello(self, pkt, n):
        """(Over BLE the HELLO is also readable; a byte stream has nothing to read.)"""

    def poll(self, app):
        """Answer the commands that have arrived."""
        if self.inp is None:
            return
        for _ in range(64):  # a byte at a time: read(n) waits for all n; ipoll allocates nothing
            ready = False
            for _ev in self.poller.ipoll(0):
                ready = True
            if not ready:
                return
            if not self.inp.readinto(self.one):
                return  # (a closed port: nothing to read)
            self._byte(self.one, app)

    def _byte(self, b, app):
        d = self.deframer
        d.feed(b)
        while True:
            pkt = d.next_packet()
            if pkt is None:
                break
            app.send_packet(app.small, app.command(pkt))
        # A Ctrl-C outside any frame: the deframer holds no frame start (at most the one byte
        # it keeps in case it is half a sync marker).
        if b[0] == CTRL_C and d.pending_bytes() <= 1:
            now = time.ticks_ms()
            if self.ctrl_c == 0 or time.ticks_diff(now, self.ctrl_c_ms) > CTRL_C_WITHIN_MS:
                self.ctrl_c, self.ctrl_c_ms = 0, now
            self.ctrl_c += 1
            if self.ctrl_c >= CTRL_C_TO_STOP:
                micropython.kbd_intr(CTRL_C)
                raise KeyboardInterrupt
        else:
            self.ctrl_c = 0

    def close(self):
        if self.inp is not None:
            micropython.kbd_intr(CTRL_C)
