"""IMU drivers. Each reads its chip's FIFO in batches into buffers made once and hands over
whole samples (ax, ay, az, gx, gy, gz int16 counts) in a flat int16 array.

``open_imu`` finds the chip by its WHO_AM_I register and raises ImuError naming what it found
(or that nothing answered) when no supported chip is there.
"""


class ImuError(OSError):
    pass


def open_imu(i2c, address, model="auto"):
    """The driver for the chip at address. model "auto" probes every supported WHO_AM_I."""
    from clipfw.imu import lsm6dsox

    drivers = {"lsm6dsox": lsm6dsox.LSM6DSOX}
    try:
        who = i2c.readfrom_mem(address, 0x0F, 1)[0]  # every supported chip keeps WHO_AM_I here
    except OSError:
        raise ImuError("no IMU answers at I2C address 0x%02X (check wiring and imu_address)" % address)
    for name, cls in drivers.items():
        if model in ("auto", name) and who == cls.WHO_AM_I:
            return cls(i2c, address)
    raise ImuError("IMU at 0x%02X says WHO_AM_I=0x%02X: not a supported %s chip"
                   % (address, who, "6-axis" if model == "auto" else model))
