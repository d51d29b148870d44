"""ST LSM6DS3TR-C over I2C: accelerometer and gyroscope in the FIFO at the sample rate.

This chip's FIFO holds untagged 16-bit words in a fixed pattern: with both sensors at the same
rate, gyro x, y, z then accel x, y, z. FIFO_STATUS3/4 give the pattern position of the next
word, so a read that starts mid-sample (after an overrun) first skips to the next whole sample.
Words are read in bursts of up to 16 whole samples (192 bytes) from FIFO_DATA_OUT_L: the register
address stays on FIFO_DATA_OUT_L/H while the FIFO is read, word after word, which is how ST's own
driver (lsm6ds3tr-c_reg.c, lsm6ds3tr_c_fifo_raw_data_get) and Linux's st_lsm6dsx read it. One
transfer a word cost ~0.5 ms on an ESP32: 2 500 a second at 416 Hz, more than the bus has.
Registers: LSM6DS3TR-C datasheet (ST DS12400), sections 8 and 9.
"""
from micropython import const

from clipfw.imu.lsm6 import FIFO_STATUS1, Lsm6, i16

_FIFO_CTRL3 = const(0x08)  # DEC_FIFO_GYRO[5:3], DEC_FIFO_XL[2:0]
_FIFO_CTRL5 = const(0x0A)  # ODR_FIFO[6:3], FIFO_MODE[2:0]
_FIFO_DATA_OUT_L = const(0x3E)
_NO_DECIMATION = const(0x01)
_MODE_CONTINUOUS = const(0x06)
_BURST_SAMPLES = const(16)


class LSM6DS3TRC(Lsm6):
    WHO_AM_I = const(0x6A)
    MODEL = const(2)
    NAME = "lsm6ds3trc"

    def __init__(self, i2c, address):
        super().__init__(i2c, address)
        self._burst = bytearray(12 * _BURST_SAMPLES)
        self._views = [memoryview(self._burst)[:12 * k] for k in range(_BURST_SAMPLES + 1)]  # k samples
        self._skip = [memoryview(self._burst)[:2 * k] for k in range(6)]  # k words
        self._status = bytearray(4)  # FIFO_STATUS1..4

    def configure_fifo(self, odr):
        self.write(_FIFO_CTRL3, (_NO_DECIMATION << 3) | _NO_DECIMATION)
        self.write(_FIFO_CTRL5, (odr << 3) | _MODE_CONTINUOUS)

    def read(self, out, max_samples):
        i2c = self.i2c
        addr = self.address
        st = self._status
        i2c.readfrom_mem_into(addr, FIFO_STATUS1, st)
        words = st[0] | ((st[1] & 0x07) << 8)
        pattern = st[2] | ((st[3] & 0x03) << 8)
        self.level = words // 6  # whole samples waiting
        self.overrun = bool(st[1] & 0x40)  # OVER_RUN
        if self.overrun:
            self.overruns += 1
        if pattern and words:  # re-align to the start of a sample: skip the rest of this one
            skip = min(6 - pattern, words)
            i2c.readfrom_mem_into(addr, _FIFO_DATA_OUT_L, self._skip[skip])
            self.dropped_words += skip
            words -= skip
        n = 0
        buf = self._burst
        while words >= 6 and n < max_samples:
            k = min(words // 6, max_samples - n, _BURST_SAMPLES)
            i2c.readfrom_mem_into(addr, _FIFO_DATA_OUT_L, self._views[k])
            words -= 6 * k
            for s in range(k):
                b = 12 * s
                o = 6 * (n + s)
                out[o] = i16(buf, b + 6)  # accel x (the pattern: gyro x y z, accel x y z)
                out[o + 1] = i16(buf, b + 8)
                out[o + 2] = i16(buf, b + 10)
                out[o + 3] = i16(buf, b)
                out[o + 4] = i16(buf, b + 2)
                out[o + 5] = i16(buf, b + 4)
            n += k
        return n
