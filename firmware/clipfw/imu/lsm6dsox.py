"""ST LSM6DSOX (and LSM6DSO) over I2C: accelerometer and gyroscope batched into the FIFO at the
sample rate, read in batches.

FIFO words are 7 bytes: a tag (bits 7..3: 0x01 gyroscope, 0x02 accelerometer) and three int16
little-endian values. Accelerometer and gyroscope words of one sample period arrive as a pair;
a lone word (the other half lost to an overrun) is dropped and counted. Words are read in
bursts of 16 or 4 per I2C transaction (from FIFO_DATA_OUT_TAG: the chip's register address rolls
back to the tag after each word's Z_H, which is how ST's own Linux driver st_lsm6dsx reads its
tagged FIFO), the last few one at a time, into buffers made once; nothing allocates per sample.
A word read alone costs ~90 bus bits (addressing and data), in a burst ~63, and one Python call
less. Registers: LSM6DSOX datasheet (ST DS12814), sections 9 and 6.5.
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
        self._burst16 = bytearray(7 * 16)
        self._burst4 = bytearray(7 * 4)
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
        pair = self._pair
        i2c.readfrom_mem_into(addr, FIFO_STATUS1, self._status)
        words = self._status[0] | ((self._status[1] & 0x03) << 8)
        self.level = words >> 1  # whole samples waiting (two words each)
        self.overrun = bool(self._status[1] & 0x08)  # FIFO_OVR_LATCHED
        if self.overrun:
            self.overruns += 1
        n = 0
        while words > 0 and n < max_samples:
            # the longest burst there are words for and that cannot overfill out (k words make
            # at most k / 2 samples): 16, 4 or 1 words
            if words >= 16 and max_samples - n >= 8:
                buf = self._burst16
            elif words >= 4 and max_samples - n >= 2:
                buf = self._burst4
            else:
                buf = self._word
            end = len(buf)
            i2c.readfrom_mem_into(addr, _FIFO_DATA_OUT_TAG, buf)
            words -= end // 7
            o = 0
            while o < end:
                tag = buf[o] >> 3
                if tag == _TAG_ACCEL:
                    bit = 1
                    base = 0
                elif tag == _TAG_GYRO:
                    bit = 2
                    base = 3
                else:
                    o += 7
                    continue  # timestamps, temperature: not batched by us, skipped if present
                if self._have & bit:
                    self.dropped_words += 1  # the other half of the previous sample never came
                pair[base] = i16(buf, o + 1)
                pair[base + 1] = i16(buf, o + 3)
                pair[base + 2] = i16(buf, o + 5)
                self._have |= bit
                if self._have == 3:
                    k = 6 * n
                    out[k] = pair[0]
                    out[k + 1] = pair[1]
                    out[k + 2] = pair[2]
                    out[k + 3] = pair[3]
                    out[k + 4] = pair[4]
                    out[k + 5] = pair[5]
                    self._have = 0
                    n += 1
                o += 7
        return n
