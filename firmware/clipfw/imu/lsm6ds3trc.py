"""ST LSM6DS3TR-C over I2C: accelerometer and gyroscope in the FIFO at the sample rate.

This chip's FIFO holds untagged 16-bit words in a fixed pattern: with both sensors at the same
rate, gyro x, y, z then accel x, y, z. FIFO_STATUS3/4 give the pattern position of the next
word, so a read that starts mid-sample (after an overrun) skips to the next whole sample. Each
word is read in its own 2-byte transaction from FIFO_DATA_OUT_L into a buffer made once.
Registers: LSM6DS3TR-C datasheet (ST DS12400), sections 8 and 9.
"""
from micropython import const

from clipfw.imu.lsm6 import FIFO_STATUS1, Lsm6, i16

_FIFO_CTRL3 = const(0x08)  # DEC_FIFO_GYRO[5:3], DEC_FIFO_XL[2:0]
_FIFO_CTRL5 = const(0x0A)  # ODR_FIFO[6:3], FIFO_MODE[2:0]
_FIFO_DATA_OUT_L = const(0x3E)
_NO_DECIMATION = const(0x01)
_MODE_CONTINUOUS = const(0x06)
# FIFO pattern position -> index in our sample (ax ay az gx gy gz)
_SLOT = (3, 4, 5, 0, 1, 2)


class LSM6DS3TRC(Lsm6):
    WHO_AM_I = const(0x6A)
    MODEL = const(2)
    NAME = "lsm6ds3trc"

    def __init__(self, i2c, address):
        super().__init__(i2c, address)
        self._word = bytearray(2)
        self._status = bytearray(4)  # FIFO_STATUS1..4
        self._sample = [0, 0, 0, 0, 0, 0]

    def configure_fifo(self, odr):
        self.write(_FIFO_CTRL3, (_NO_DECIMATION << 3) | _NO_DECIMATION)
        self.write(_FIFO_CTRL5, (odr << 3) | _MODE_CONTINUOUS)

    def read(self, out, max_samples):
        i2c = self.i2c
        addr = self.address
        word = self._word
        sample = self._sample
        st = self._status
        i2c.readfrom_mem_into(addr, FIFO_STATUS1, st)
        words = st[0] | ((st[1] & 0x07) << 8)
        pattern = st[2] | ((st[3] & 0x03) << 8)
        self.level = words // 6  # whole samples waiting
        self.overrun = bool(st[1] & 0x40)  # OVER_RUN
        if self.overrun:
            self.overruns += 1
        while pattern != 0 and words > 0:  # re-align to the start of a sample
            i2c.readfrom_mem_into(addr, _FIFO_DATA_OUT_L, word)
            self.dropped_words += 1
            words -= 1
            pattern = (pattern + 1) % 6
        n = 0
        while words >= 6 and n < max_samples:
            for k in range(6):
                i2c.readfrom_mem_into(addr, _FIFO_DATA_OUT_L, word)
                sample[_SLOT[k]] = i16(word, 0)
            words -= 6
            o = 6 * n
            for k in range(6):
                out[o + k] = sample[k]
            n += 1
        return n
