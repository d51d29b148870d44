"""Emulated ST LSM6 chips on the rig's I2C bus, at register level (tests/rig/README.md).

The chip samples on its own clock from the moment its FIFO is configured: at time t it has made
``t x rate`` samples, read from the run's recording (a file of int16 ax ay az gx gy gz). Its FIFO
is virtual (indices into the recording, nothing copied), so it has the real chip's capacity;
when it is full, continuous mode overwrites the oldest words and latches the overrun flag. A
register read costs what an ESP32 I2C transfer costs (``Bus``), and a transfer fails where a test
injects an error.

LSM6DSOX (DS12814): 7-byte tagged words (gyro and accel of one sample alternate in order),
FIFO_STATUS1/2 (0x3A), data from FIFO_DATA_OUT_TAG (0x78) whose address rolls back to the tag
after Z_H, so a burst reads word after word. Capacity 512 words (3.5 kB uncompressed; the "9 kB"
of the datasheet counts compression; Linux st_lsm6dsx: max_fifo_size 512): 1.2 s at 208 Hz.
LSM6DS3TR-C (DS12400): untagged 16-bit words, pattern gyro x y z accel x y z; FIFO_STATUS1..4
(0x3A..0x3D) with the pattern position of the next word; data from FIFO_DATA_OUT_L/H
(0x3E/0x3F), the address rolling back to _L after _H, so a burst reads word after word; 4 kB:
2046 words (st_lsm6dsx: 682 x/y/z sets), 0.8 s at 416 Hz.
"""

import micropython

SAMPLE_BYTES = 12


@micropython.viper
def _copy(dst, o: int, src, a: int, n: int):
    """dst[o:o+n] = src[a:a+n] without allocating (and, as viper, without a pending callback
    running in the middle: the chip's registers are hardware)."""
    d = ptr8(dst)  # noqa: F821  (viper builtins)
    s = ptr8(src)  # noqa: F821
    i = 0
    while i < n:
        d[o + i] = s[a + i]
        i += 1


class Recording:
    """Samples of the run, read from the host's file a block at a time."""

    def __init__(self, path, first_idx=0):
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        self.n = self.f.tell() // SAMPLE_BYTES - first_idx
        self.first = first_idx  # the run's sample where this boot's chip starts
        self.block = bytearray(SAMPLE_BYTES * 64)
        self.block_at = -1

    def copy(self, idx, k, n, dst, o):
        """Bytes k..k+n of sample idx into dst at o."""
        b = idx >> 6
        if b != self.block_at:
            self.f.seek(SAMPLE_BYTES * ((b << 6) + self.first))
            self.f.readinto(self.block)
            self.block_at = b
        _copy(dst, o, self.block, SAMPLE_BYTES * (idx & 63) + k, n)


class Lsm6:

    def __init__(self, rig, recording, who_am_i, rate_ppm=0):
        self.rig = rig
        self.rec = recording
        self.regs = bytearray(128)
        self.regs[0x0F] = who_am_i
        self.rate_hz = 0
        self.rate_ppm = rate_ppm  # the chip's own clock, this far off nominal
        self.t0_ms = -1  # when it first sampled: the recording's start (the runner's motion goes on from there)
        self.running = False
        self.head = 0  # FIFO: index of the oldest word still held (words count from 0 at start)
        self.made = 0  # words the chip has made so far
        self.overrun = False
        self.overruns = 0
        self.overrun_ms = [0] * 16  # when the first 16 happened (made now: no allocation later)
        self.words_read = 0
        self.transfers = 0

    def stats(self):
        return {"samples_made": self.made // self.WORDS_PER_SAMPLE, "words_read": self.words_read,
                "transfers": self.transfers, "overruns": self.overruns, "recording": self.rec.n,
                "overrun_ms": self.overrun_ms[:min(self.overruns, 16)]}

    # -- the chip's clock ----------------------------------------------------------------------
    def _words_now(self):
        """Words made since the recording started, by the chip's clock."""
        c = self.rig.clock
        ms = c.ms - self.t0_ms
        # whole seconds first, so no intermediate leaves the small-int range
        rate = self.rate_hz
        samples = (ms // 1000) * rate + ((ms % 1000) * 1000 + c.us) * rate // 1_000_000
        if self.rate_ppm:
            samples += samples * self.rate_ppm // 1_000_000
        if samples > self.rec.n:
            samples = self.rec.n  # the recording ends: the chip has nothing more to give
        return samples * self.WORDS_PER_SAMPLE

    def _catch_up(self):
        if not self.running:
            return
        made = self._words_now()
        if made > self.made:
            self.made = made
            if made - self.head > self.CAPACITY_WORDS:  # continuous mode: the oldest are overwritten
                self.head = made - self.CAPACITY_WORDS
                if not self.overrun:
                    if self.overruns < 16:
                        self.overrun_ms[self.overruns] = self.rig.clock.ms
                    self.overruns += 1
                self.overrun = True

    def power_on_reset(self):
        who = self.regs[0x0F]
        for i in range(len(self.regs)):
            self.regs[i] = 0
        self.regs[0x0F] = who
        self.running = False
        self.overrun = False

    def level_words(self):
        self._catch_up()
        return self.made - self.head

    def write(self, reg, buf):
        for i in range(len(buf)):
            self._set(reg + i, buf[i])

    def _set(self, reg, value):
        self.regs[reg] = value
        if reg == 0x12 and value & 0x01:  # CTRL3_C SW_RESET: FIFO and settings cleared
            self.running = False
            self.overrun = False
        self._configured()

    def _start(self, odr_code):
        """FIFO in continuous mode at this ODR code: the chip samples from now, with an empty FIFO
        (after a reset, the recording goes on where the time is: the runner did not stop)."""
        rate = (0, 12, 26, 52, 104, 208, 416, 833)[odr_code] if odr_code < 8 else 0
        if rate and not self.running:
            self.rate_hz = rate
            if self.t0_ms < 0:
                self.t0_ms = self.rig.clock.ms
            self.running = True
            self.made = self.head = self._words_now()
            self.overrun = False

    def word_byte(self, w, k):
        """Byte k of word w (its position in the chip's output order)."""
        raise NotImplementedError


class LSM6DSOX(Lsm6):
    WHO_AM_I_DEFAULT = 0x6C
    WORDS_PER_SAMPLE = 2
    CAPACITY_WORDS = 512

    def __init__(self, rig, recording, who_am_i=0x6C, rate_ppm=0):
        super().__init__(rig, recording, who_am_i, rate_ppm)

    def _configured(self):
        r = self.regs
        if (r[0x0A] & 0x07) == 0x06 and r[0x09] & 0x0F:  # FIFO_CTRL4 continuous, FIFO_CTRL3 BDR_XL
            self._start(r[0x09] & 0x0F)

    def read_into(self, reg, buf):
        n = len(buf)
        if reg == 0x3A:  # FIFO_STATUS1, FIFO_STATUS2 (DIFF_FIFO[9:8], FIFO_OVR_LATCHED bit 3)
            level = self.level_words()
            buf[0] = level & 0xFF
            if n > 1:
                buf[1] = ((level >> 8) & 0x03) | (0x08 if self.overrun else 0)
                self.overrun = False  # the latch clears when read
            return
        if reg != 0x78:
            for i in range(n):
                buf[i] = self.regs[reg + i]
            return
        self._catch_up()
        o = 0
        while o + 7 <= n:
            if self.head >= self.made:  # empty: the chip repeats nothing useful
                for i in range(7):
                    buf[o + i] = 0
            else:
                w = self.head
                s = w >> 1
                # the order of the two words alternates sample by sample, as it may on the chip
                gyro = (w & 1) == (s & 1)
                buf[o] = 0x08 if gyro else 0x10  # tag: 0x01 gyroscope, 0x02 accelerometer, << 3
                self.rec.copy(s, 6 if gyro else 0, 6, buf, o + 1)
                self.head += 1
                self.words_read += 1
            o += 7


class LSM6DS3TRC(Lsm6):
    WHO_AM_I_DEFAULT = 0x6A
    WORDS_PER_SAMPLE = 6
    CAPACITY_WORDS = 2046  # not a whole number of samples
    _ORDER = (6, 8, 10, 0, 2, 4)  # gyro x y z, then accel x y z: byte offsets in our sample

    def __init__(self, rig, recording, who_am_i=0x6A, rate_ppm=0):
        super().__init__(rig, recording, who_am_i, rate_ppm)
        self.odd = False  # the next byte read from 0x3E..0x3F is a word's high byte

    def _configured(self):
        r = self.regs
        if (r[0x0A] & 0x07) == 0x06 and r[0x0A] >> 3:  # FIFO_CTRL5: continuous mode, ODR_FIFO
            self._start((r[0x0A] >> 3) & 0x0F)

    def read_into(self, reg, buf):
        n = len(buf)
        if reg == 0x3A:  # FIFO_STATUS1..4: DIFF_FIFO[10:0], OVER_RUN (bit 6), FIFO_PATTERN[9:0]
            level = self.level_words()
            buf[0] = level & 0xFF
            if n > 1:
                buf[1] = ((level >> 8) & 0x07) | (0x40 if self.overrun else 0)
                self.overrun = False
            if n > 2:
                pattern = self.head % 6
                buf[2] = pattern & 0xFF
                if n > 3:
                    buf[3] = pattern >> 8
            return
        if reg != 0x3E:
            for i in range(n):
                buf[i] = self.regs[reg + i]
            return
        self._catch_up()
        i = 0
        while i < n:
            if self.head >= self.made:
                buf[i] = 0
                i += 1
                continue
            w = self.head
            if not self.odd and i + 1 < n:  # a whole word at once
                self.rec.copy(w // 6, self._ORDER[w % 6], 2, buf, i)
                self.head += 1
                self.words_read += 1
                i += 2
                continue
            self.rec.copy(w // 6, self._ORDER[w % 6] + (1 if self.odd else 0), 1, buf, i)
            if self.odd:
                self.head += 1  # the word is out when its high byte is read
                self.words_read += 1
            self.odd = not self.odd
            i += 1


class Bus:
    """The ESP32's hardware I2C as the rig charges it: a fixed cost per transfer (driver, command
    link, interrupt; measured figures in tests/rig/README.md) plus 9 bit times per byte at the
    bus frequency, and errors where a test injects them."""

    def __init__(self, rig, freq_hz, overhead_us):
        self.rig = rig
        self.freq_hz = freq_hz
        self.overhead_us = overhead_us
        self.busy_us = 0

    def transfer(self, addr, n_bytes):
        """Charge one transfer of n_bytes (address and register bytes included); return the
        device or raise as the ESP32 would."""
        rig = self.rig
        rig.tick()
        us = self.overhead_us + (9 * n_bytes + 2) * 1_000_000 // self.freq_hz
        self.busy_us += us
        rig.cost_us(us)
        if rig.alloc_next:
            rig.alloc_next = False
            rig.report["allocated"] = bytearray(16) is not None
        exc = rig.raise_next
        if exc is not None:
            rig.raise_next = None
            raise RuntimeError(exc)
        if rig.i2c_errors > 0:
            rig.i2c_errors -= 1
            raise OSError(19)  # ENODEV: the ESP32 port's error for a transfer the chip did not acknowledge
        dev = rig.devices.get(addr)
        if dev is None:
            raise OSError(19)  # ENODEV
        dev.transfers += 1
        return dev
