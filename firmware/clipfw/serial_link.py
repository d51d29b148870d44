"""USB serial mode: the same frames as over BLE, on a byte stream (docs/protocol.md, framing).

Frames go out on ``out`` (the USB CDC port: sys.stdout.buffer on the clip); command frames come
in on ``inp`` (sys.stdin.buffer), read without blocking through ``poller`` (select.poll on the
clip). A wired host is trusted: no pairing on a cable.
"""
from clipcore import wire as P

from clipfw.views import Views


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

    def poll(self, app):
        """Answer the commands that have arrived."""
        if self.inp is None:
            return
        if self.poller is None:  # a stream that never blocks (tests' scripted host)
            data = self.inp.read(64)
            if not data:
                return
            self.deframer.feed(data)
        else:
            got = 0
            while got < 64 and self.poller.poll(0):  # a byte at a time: read(n) may wait for all n
                self.deframer.feed(self.inp.read(1))
                got += 1
            if not got:
                return
        while True:
            pkt = self.deframer.next_packet()
            if pkt is None:
                break
            n = app.command(pkt)
            app.send_packet(app.small, n)
