"""ST LSM6DSOX (and LSM6DSO) over I2C: accelerometer and gyroscope batched into the FIFO at the
sample rate, read in batches.

FIFO words are 7 bytes: a tag (bits 7..3: 0x01 gyroscope, 0x02 accelerometer) and three int16
little-endian values. Accelerometer and gyroscope words of one sample period arrive as a pair;
a lone word (the other half lost to an overrun) is dropped and counted. One word is read per
I2C transaction (7 bytes from FIFO_DATA_OUT_TAG) into a buffer made once; nothing allocates per
sample. Registers: LSM6DSOX datasheet (ST DS12814), sections 9 and 6.5.
"""
from micropython import const

from clipfw.imu.lsm6 import FIFO_STATUS1, Lsm6, i16

_FIFO_CTRL3 = const(0x09)  # BDR_GY[7:4], BDR_XL[3:0]
_FIFO_CTRL4 = const(0x0A)  # FIFO_MODE[2:0]
_FIFO_DATA_OUT_TAG = const(0x78)
_TAG_GYRO = const(0x01)
_TAG_ACCEL = const(0x02)
_MODE_CONTINUOUS = const(0x06)


class LSM6DSOX(Lsm6):
    WHO_AM_I = const(0x6C)
    MODEL = const(1)  # protocol IMU model code (docs/protocol.md)
    NAME = "lsm6dsox"

    def __init__(self, i2c, address):
        super().__init__(i2c, address)
        self._word = bytearray(7)
        self._status = bytearray(2)  # FIFO_STATUS1, FIFO_STATUS2
        self._pair = [0, 0, 0, 0, 0, 0]  # ax ay az gx gy gz of the sample being paired
        self._have = 0  # bit 0 accel, bit 1 gyro

    def configure_fifo(self, odr):
        self.write(_FIFO_CTRL3, (odr << 4) | odr)  # batch both at the sample rate
        self.write(_FIFO_CTRL4, _MODE_CONTINUOUS)

    def read(self, out, max_samples):
        """Move up to max_samples whole samples from the FIFO into out (flat int16, 6 per
        sample); return how many. Sets self.overrun when the chip's FIFO overflowed."""
        i2c = self.i2c  # one by one: unpacking four at once would build a tuple (allocation)
        addr = self.address
        word = self._word
        pair = self._pair
        i2c.readfrom_mem_into(addr, FIFO_STATUS1, self._status)
        words = self._status[0] | ((self._status[1] & 0x03) << 8)
        self.level = words >> 1  # whole samples waiting (two words each)
        self.overrun = bool(self._status[1] & 0x08)  # FIFO_OVR_LATCHED
        if self.overrun:
            self.overruns += 1
        n = 0
        while words > 0 and n < max_samples:
            i2c.readfrom_mem_into(addr, _FIFO_DATA_OUT_TAG, word)
            words -= 1
            tag = word[0] >> 3
            if tag == _TAG_ACCEL:
                bit, base = 1, 0
            elif tag == _TAG_GYRO:
                bit, base = 2, 3
            else:
                continue  # timestamps, temperature: not batched by us, skipped if present
            if self._have & bit:
                self.dropped_words += 1  # the other half of the previous sample never came
            pair[base] = i16(word, 1)
            pair[base + 1] = i16(word, 3)
            pair[base + 2] = i16(word, 5)
            self._have |= bit
            if self._have == 3:
                o = 6 * n
                out[o] = pair[0]
                out[o + 1] = pair[1]
                out[o + 2] = pair[2]
                out[o + 3] = pair[3]
                out[o + 4] = pair[4]
                out[o + 5] = pair[5]
                self._have = 0
                n += 1
        return n
