"""The benchmark's baseline on the rig (bench/bench_clip_loop.py): the firmware's own IMU driver
reading the FIFO each pass, and nothing else, so the emulated chip's cost can be taken away
from the whole loop's. Booted instead of main.py (rigboot, opts "firmware": "imu_only")."""
import array
import time

import rigcore
from clipfw import POLL_MS
from clipfw.imu import open_imu
from machine import I2C, Pin

imu = open_imu(I2C(0, sda=Pin(21), scl=Pin(22), freq=400000), 0x6A)
imu.configure(rigcore.RIG.opts.get("rate_hz", 208), 16, 2000)
buf = array.array("h", bytes(12 * 64))
while True:
    imu.read(buf, 64)
    time.sleep_ms(POLL_MS)
