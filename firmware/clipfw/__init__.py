"""The clip's MicroPython application (firmware/README.md). Uses clipcore for the protocol,
the step detector and the cue policy; talks to the hardware through `machine` and `bluetooth`."""
FW_VERSION = (0, 2, 0)

# How often the main loop runs. The FIFO holds ~3 s at 208 Hz (1.5 s at 416 Hz), so nothing is
# lost between passes; each pass has a fixed cost, and 100 ms rather than 20 ms made the whole
# loop ~2.6x cheaper per sample (bench/bench_clip_loop.py). Beats are timed by hardware timers.
POLL_MS = 100
