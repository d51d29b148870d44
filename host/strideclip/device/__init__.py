"""The clip as a device: compiling its files with mpy-cross (clipbuild) and copying the firmware
onto it, or its flash logs off it, over USB (flash)."""
