"""An emulated LSM6DS3TR-C at register level for the firmware tests (see fake_lsm6dsox.py)."""
class FakeLSM6DS3TRC:
    """The LSM6DS3TR-C's FIFO: untagged 16-bit words, gyro x y z then accel x y z per sample,
    FIFO_STATUS3/4 giving the pattern position of the next word; OVER_RUN when it wrapped."""

    WORDS = 1201  # ~1 s at 208 Hz; like the chip's 2048 words, not a whole number of samples

    def __init__(self, who_am_i=0x6A):
        self.regs = bytearray(128)
        self.regs[0x0F] = who_am_i
        self.fifo = bytearray(2 * self.WORDS)
        self.head = 0
        self.count = 0
        self.next_pattern = 0  # pattern position of the word at head
        self.overrun = False
        self.pushed = 0

    def write(self, reg, buf):
        self.regs[reg] = buf[0]

    def push(self, src, i):
        o = 12 * i
        for k in (6, 8, 10, 0, 2, 4):  # gyro x y z, then accel x y z
            if self.count == self.WORDS:
                self.head = (self.head + 1) % self.WORDS
                self.next_pattern = (self.next_pattern + 1) % 6
                self.count -= 1
                self.overrun = True
            w = 2 * ((self.head + self.count) % self.WORDS)
            self.fifo[w] = src[o + k]
            self.fifo[w + 1] = src[o + k + 1]
            self.count += 1
        self.pushed += 1

    def read_into(self, reg, buf):
        if reg == 0x3A:  # FIFO_STATUS1..4
            buf[0] = self.count & 0xFF
            buf[1] = ((self.count >> 8) & 0x07) | (0x40 if self.overrun else 0)
            buf[2] = self.next_pattern & 0xFF
            buf[3] = 0
            self.overrun = False
        elif reg == 0x3E:  # FIFO_DATA_OUT_L, _H: one word
            if self.count == 0:
                buf[0] = buf[1] = 0
                return
            w = 2 * self.head
            buf[0] = self.fifo[w]
            buf[1] = self.fifo[w + 1]
            self.head = (self.head + 1) % self.WORDS
            self.next_pattern = (self.next_pattern + 1) % 6
            self.count -= 1
        else:
            for i in range(len(buf)):
                buf[i] = self.regs[reg + i]
