"""The clip's MicroPython application (firmware/README.md). Uses clipcore for the protocol,
the step detector and the cue policy; talks to the hardware through `machine` and `bluetooth`."""
FW_VERSION = (0, 2, 0)
