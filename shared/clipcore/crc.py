"""CRC-16/CCITT-FALSE, the checksum of every stream frame (serial, flash log, host log).

Parameters: poly 0x1021, init 0xFFFF, not reflected, xorout 0x0000.
Check value: crc16(b"123456789") == 0x29B1.

The clip computes it with the 256-entry table below (built once at import, 512 bytes).
CPython ships the same CRC in C as ``binascii.crc_hqx``; it is used when present
because the host checks every frame of hour-long logs. The tests prove both agree.
"""
import array

try:
    import micropython
except ImportError:  # CPython (clipcore.viper)
    from clipcore.viper import micropython, ptr8, ptr16

CRC16_INIT = 0xFFFF


def _make_table():
    table = array.array("H", bytes(512))
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table[i] = c & 0xFFFF
    return table


_TABLE = _make_table()

try:
    from binascii import crc_hqx as _crc_hqx
except ImportError:  # MicroPython has no crc_hqx
    _crc_hqx = None


@micropython.viper
def crc16_table(buf, start: int, end: int, crc: int) -> int:
    """Table-driven CRC of buf[start:end], continuing from crc. Allocates nothing (viper on
    the clip: every byte the clip sends goes through here)."""
    table = ptr16(_TABLE)
    b = ptr8(buf)
    i = start
    while i < end:
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ b[i]) & 0xFF]
        i += 1
    return crc


def crc16(buf, start=0, end=-1, crc=CRC16_INIT):
    """CRC of buf[start:end] (end=-1 means len(buf)), continuing from crc."""
    if end < 0:
        end = len(buf)
    if _crc_hqx is not None:
        return _crc_hqx(memoryview(buf)[start:end], crc)
    return crc16_table(buf, start, end, crc)
