"""The clip's MicroPython application (firmware/README.md). Uses clipcore for the protocol,
the step detector and the cue policy; talks to the hardware through `machine` and `bluetooth`."""
FW_VERSION = (0, 3, 0)

# How often the main loop runs. The IMU's FIFO holds 1.2 s at 208 Hz and 0.6 s at 416 Hz
# (LSM6DSOX, 512 words; the LSM6DS3TR-C 1.6 / 0.8 s), so nothing is lost between passes, nor in
# a flash erase's stall; each pass has a fixed cost, and 100 ms rather than 20 ms made the whole
# loop ~2.6x cheaper per sample (bench/bench_clip_loop.py). Beats are played by the RMT hardware.
POLL_MS = 100
