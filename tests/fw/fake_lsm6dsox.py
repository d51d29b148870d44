"""An emulated LSM6DSOX at register level for the firmware tests: WHO_AM_I, the control
registers, and a FIFO of tagged 7-byte words filled from recorded samples, with the chip's
continuous-mode overrun (oldest words overwritten, FIFO_OVR_LATCHED set until read)."""
FIFO_WORDS = 300  # ~0.7 s at 208 Hz (the real chip holds ~1300 words); the heap is kept for the app
TAG_GYRO = 0x01 << 3
TAG_ACCEL = 0x02 << 3


class FakeLSM6DSOX:
    def __init__(self, who_am_i=0x6C):
        self.regs = bytearray(128)
        self.regs[0x0F] = who_am_i
        self.fifo = bytearray(7 * FIFO_WORDS)
        self.head = 0  # next word to read
        self.count = 0
        self.overrun = False
        self.sample = bytearray(12)  # one sample being pushed
        self.pushed = 0
        self.gyro_first = True  # the order of the two words alternates, as it may on the chip
        self.reads = 0  # words read
        self.bursts = 0  # FIFO read transactions

    def write(self, reg, buf):
        self.regs[reg] = buf[0]

    def _push_word(self, tag, off):
        if self.count == FIFO_WORDS:  # continuous mode: the oldest word is overwritten
            self.head = (self.head + 1) % FIFO_WORDS
            self.count -= 1
            self.overrun = True
        w = 7 * ((self.head + self.count) % FIFO_WORDS)
        self.fifo[w] = tag
        for i in range(6):
            self.fifo[w + 1 + i] = self.sample[off + i]
        self.count += 1

    def push(self, src, i):
        """Batch sample i of src (12 bytes each: ax ay az gx gy gz int16 LE) into the FIFO."""
        o = 12 * i
        for k in range(12):
            self.sample[k] = src[o + k]
        if self.gyro_first:
            self._push_word(TAG_GYRO, 6)
            self._push_word(TAG_ACCEL, 0)
        else:
            self._push_word(TAG_ACCEL, 0)
            self._push_word(TAG_GYRO, 6)
        self.gyro_first = not self.gyro_first
        self.pushed += 1

    def read_into(self, reg, buf):
        if reg == 0x3A:  # FIFO_STATUS1, FIFO_STATUS2
            buf[0] = self.count & 0xFF
            if len(buf) > 1:
                buf[1] = ((self.count >> 8) & 0x03) | (0x08 if self.overrun else 0)
                self.overrun = False  # the latch clears when read
        elif reg == 0x78:  # FIFO_DATA_OUT_TAG ..Z_H, rolling back to the tag: word after word
            self.bursts += 1
            for o in range(0, len(buf) - 6, 7):
                if self.count == 0:
                    for i in range(7):
                        buf[o + i] = 0
                    continue
                w = 7 * self.head
                for i in range(7):
                    buf[o + i] = self.fifo[w + i]
                self.head = (self.head + 1) % FIFO_WORDS
                self.count -= 1
                self.reads += 1
        else:
            for i in range(len(buf)):
                buf[i] = self.regs[reg + i]

