"""ST LSM6DSOX (and LSM6DSO) over I2C: accelerometer and gyroscope batched into the FIFO at the
sample rate, read in batches.

FIFO words are 7 bytes: a tag (bits 7..3: 0x01 gyroscope, 0x02 accelerometer) and three int16
little-endian values. Accelerometer and gyroscope words of one sample period arrive as a pair;
a lone word (the other half lost to an overrun) is dropped and counted. One word is read per
I2C transaction (7 bytes from FIFO_DATA_OUT_TAG) into a buffer made once; nothing allocates per
sample. Registers: LSM6DSOX datasheet (ST DS12814), sections 9 and 6.5.
"""
from micropython import const

WHO_AM_I_VALUE = const(0x6C)
_FIFO_CTRL3 = const(0x09)  # BDR_GY[7:4], BDR_XL[3:0]
_FIFO_CTRL4 = const(0x0A)  # FIFO_MODE[2:0]
_CTRL1_XL = const(0x10)  # ODR_XL[7:4], FS_XL[3:2]
_CTRL2_G = const(0x11)  # ODR_G[7:4], FS_G[3:2]
_CTRL3_C = const(0x12)  # BDU (6), IF_INC (2), SW_RESET (0)
_FIFO_STATUS1 = const(0x3A)  # DIFF_FIFO[7:0]
_FIFO_STATUS2 = const(0x3B)  # DIFF_FIFO[9:8] in bits 1..0, FIFO_OVR_LATCHED bit 3
_FIFO_DATA_OUT_TAG = const(0x78)
_TAG_GYRO = const(0x01)
_TAG_ACCEL = const(0x02)
_MODE_CONTINUOUS = const(0x06)

_ODR = {104: 0x4, 208: 0x5, 416: 0x6}
_FS_XL = {2: 0b00, 4: 0b10, 8: 0b11, 16: 0b01}
_FS_G = {250: 0b00, 500: 0b01, 1000: 0b10, 2000: 0b11}
ACCEL_UG_PER_LSB = {2: 61, 4: 122, 8: 244, 16: 488}
GYRO_MDPS_PER_LSB_Q8 = {250: 2240, 500: 4480, 1000: 8960, 2000: 17920}  # 8.75, 17.5, 35, 70 mdps


def _i16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 65536 if v & 0x8000 else v


class LSM6DSOX:
    WHO_AM_I = WHO_AM_I_VALUE
    MODEL = const(1)  # protocol IMU model code (docs/protocol.md)
    NAME = "lsm6dsox"

    def __init__(self, i2c, address):
        self.i2c = i2c
        self.address = address
        self._word = bytearray(7)
        self._status = bytearray(2)
        self._one = bytearray(1)
        self._pair = [0, 0, 0, 0, 0, 0]  # ax ay az gx gy gz of the sample being paired
        self._have = 0  # bit 0 accel, bit 1 gyro
        self.dropped_words = 0  # lone halves dropped
        self.overruns = 0
        self.rate_hz = 0
        self.accel_ug_per_lsb = 0
        self.gyro_mdps_per_lsb_q8 = 0

    def _write(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.address, reg, self._one)

    def configure(self, rate_hz, accel_fs_g, gyro_fs_dps):
        odr = _ODR[rate_hz]
        self._write(_CTRL3_C, 0x01)  # software reset
        self._write(_CTRL3_C, 0x44)  # block data update, register address auto-increment
        self._write(_CTRL1_XL, (odr << 4) | (_FS_XL[accel_fs_g] << 2))
        self._write(_CTRL2_G, (odr << 4) | (_FS_G[gyro_fs_dps] << 2))
        self._write(_FIFO_CTRL3, (odr << 4) | odr)  # batch both at the sample rate
        self._write(_FIFO_CTRL4, _MODE_CONTINUOUS)
        self.rate_hz = rate_hz
        self.accel_ug_per_lsb = ACCEL_UG_PER_LSB[accel_fs_g]
        self.gyro_mdps_per_lsb_q8 = GYRO_MDPS_PER_LSB_Q8[gyro_fs_dps]

    def read(self, out, max_samples):
        """Move up to max_samples whole samples from the FIFO into out (flat int16, 6 per
        sample); return how many. Sets self.overrun when the chip's FIFO overflowed."""
        i2c = self.i2c  # one by one: unpacking four at once would build a tuple (allocation)
        addr = self.address
        word = self._word
        pair = self._pair
        i2c.readfrom_mem_into(addr, _FIFO_STATUS1, self._status)
        words = self._status[0] | ((self._status[1] & 0x03) << 8)
        self.overrun = bool(self._status[1] & 0x08)
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
            pair[base] = _i16(word, 1)
            pair[base + 1] = _i16(word, 3)
            pair[base + 2] = _i16(word, 5)
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
