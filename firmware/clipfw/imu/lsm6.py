"""What ST's LSM6 family shares: register addresses and codes for the sensors, sensitivities,
and the I2C plumbing. The FIFO differs per chip (lsm6dsox.py, lsm6ds3trc.py)."""
from clipcore.wire import i16  # noqa: F401  (the drivers read their FIFO words with it)
from micropython import const

WHO_AM_I_REG = const(0x0F)
CTRL1_XL = const(0x10)  # ODR_XL[7:4], FS_XL[3:2]
CTRL2_G = const(0x11)  # ODR_G[7:4], FS_G[3:2]
CTRL3_C = const(0x12)  # BDU (6), IF_INC (2), SW_RESET (0)
FIFO_STATUS1 = const(0x3A)  # number of unread FIFO entries, low byte

# Codes and sensitivities by arithmetic rather than tables (dicts cost the clip RAM):
# ODR 104/208/416 Hz -> 4/5/6 (the same codes for the sensors and the FIFO);
# accel +-2/4/8/16 g -> FS_XL 0b00/0b10/0b11/0b01, 61 ug/LSB at +-2 g, doubling with the range;
# gyro 250/500/1000/2000 dps -> FS_G 0..3, 8.75 mdps/LSB at 250 (the DS3TR-C's "245"), doubling.
_FS_XL_CODES = b"\x00\x02\x03\x01"


def _log2(x):
    n = 0
    while x > 1:
        x >>= 1
        n += 1
    return n


def odr_code(rate_hz):
    return 4 + rate_hz // 208


def fs_xl_code(accel_fs_g):
    return _FS_XL_CODES[_log2(accel_fs_g) - 1]


def fs_g_code(gyro_fs_dps):
    return _log2(gyro_fs_dps // 250)


class Lsm6:
    """Common set-up; subclasses add configure_fifo() and read()."""

    def __init__(self, i2c, address):
        self.i2c = i2c
        self.address = address
        self._one = bytearray(1)
        self.dropped_words = 0  # FIFO entries dropped while re-aligning to whole samples
        self.overruns = 0
        self.overrun = False
        self.level = 0  # samples in the FIFO when it was last looked at (before that read)
        self.rate_hz = 0
        self.accel_ug_per_lsb = 0
        self.gyro_mdps_per_lsb_q8 = 0

    def write(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.address, reg, self._one)

    def configure(self, rate_hz, accel_fs_g, gyro_fs_dps):
        odr = odr_code(rate_hz)
        self.write(CTRL3_C, 0x01)  # software reset
        self.write(CTRL3_C, 0x44)  # block data update, register address auto-increment
        self.write(CTRL1_XL, (odr << 4) | (fs_xl_code(accel_fs_g) << 2))
        self.write(CTRL2_G, (odr << 4) | (fs_g_code(gyro_fs_dps) << 2))
        self.configure_fifo(odr)
        self.rate_hz = rate_hz
        self.accel_ug_per_lsb = 61 * accel_fs_g // 2
        self.gyro_mdps_per_lsb_q8 = 2240 * gyro_fs_dps // 250  # 8.75 mdps x 256 at 250 dps
