"""IMU drivers. Each reads its chip's FIFO in batches into buffers made once and hands over
whole samples (ax, ay, az, gx, gy, gz int16 counts) in a flat int16 array.

``open_imu`` finds the chip by its WHO_AM_I register and raises ImuError naming what it found
(or that nothing answered) when no supported chip is there. Only the driver of the chip found
is loaded: every module costs the clip RAM.
"""

# WHO_AM_I -> (config name, module, class)
CHIPS = {
    0x6C: ("lsm6dsox", "clipfw.imu.lsm6dsox", "LSM6DSOX"),
    0x6A: ("lsm6ds3trc", "clipfw.imu.lsm6ds3trc", "LSM6DS3TRC"),
}


class ImuError(OSError):
    pass


def open_imu(i2c, address, model="auto"):
    """The driver for the chip at address. model "auto" accepts any supported chip."""
    try:
        who = i2c.readfrom_mem(address, 0x0F, 1)[0]  # every supported chip keeps WHO_AM_I here
    except OSError:
        raise ImuError("no IMU answers at I2C address 0x%02X (check wiring and imu_address)" % address)
    chip = CHIPS.get(who)
    if chip is None or model not in ("auto", chip[0]):
        raise ImuError("IMU at 0x%02X says WHO_AM_I=0x%02X: not a supported %s chip"
                       % (address, who, "6-axis" if model == "auto" else model))
    module = __import__(chip[1], None, None, (chip[2],))
    return getattr(module, chip[2])(i2c, address)
