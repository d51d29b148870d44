"""The clip's flash as the rig gives it to littlefs: a NOR chip's vfs partition as a block device
(tests/rig/README.md), kept in a file on the host so it outlives a power cut or a reset.

Geometry of a 4 MB ESP32 board's vfs partition: 4096-byte blocks, 2 MB. The extended block
interface of the ESP32's esp32.Partition (readblocks/writeblocks with an offset, ioctl 6 to erase
a block), which MicroPython's littlefs driver uses. Like NOR flash, programming only clears bits
(new = old AND data), so a write over unerased data corrupts it as on the chip. Every erase and
program costs its datasheet time, during which the CPU waits (the ESP32 runs from flash cache,
off while the flash is written). A power cut can fall in the middle of a program or an erase:
only a part of the bytes change, then the rig dies.
"""
import os

import micropython


BLOCK_BYTES = 4096
# Typical times of the 4 MB parts on ESP32 modules (W25Q32JV, GD25Q32C datasheets: sector erase
# 45 ms typical, byte program 30 us + 2.5 us a byte); ESP-IDF programs at most 64 bytes a
# command (SPI_FLASH_HAL_MAX_WRITE_BYTES), so ~0.2 ms a command.
ERASE_US = 45_000
PROGRAM_US = 200  # one program command of up to 64 bytes
PROGRAM_BYTES = 64
PAGE_BYTES = 256


@micropython.viper
def _program(cells, data, at: int, n: int):
    """NOR programming: cells[i] &= data[at + i] (bits only clear), allocation-free."""
    c = ptr8(cells)  # noqa: F821  (viper builtins)
    d = ptr8(data)  # noqa: F821
    i = 0
    while i < n:
        c[i] = c[i] & d[at + i]
        i += 1


class Flash:
    def __init__(self, rig, path, block_count=512, erase_us=ERASE_US, program_us=PROGRAM_US,
                 cut_op=-1, seed=1):
        self.rig = rig
        self.f = open(path, "r+b")
        self.block_count = block_count
        self.erase_us = erase_us
        self.program_us = program_us
        self.cut_op = cut_op  # a power cut in the middle of this erase or program (-1: none)
        self.rand = seed or 1
        self.scratch = bytearray(PAGE_BYTES)
        # views of the scratch for the lengths littlefs programs (multiples of its 32-byte prog
        # size): made once, so programming the flash allocates nothing, as on the chip
        self.views = {k: memoryview(self.scratch)[:k] for k in range(32, PAGE_BYTES + 1, 32)}
        self.ones = b"\xff" * PAGE_BYTES
        self.erases = 0
        self.programs = 0
        self.bytes_programmed = 0
        self.reads = 0
        self.busy_us = 0
        self.max_busy_us = 0  # the longest the CPU waited on the flash at once

    def stats(self):
        return {"erases": self.erases, "programs": self.programs, "bytes_programmed": self.bytes_programmed,
                "reads": self.reads, "busy_ms": self.busy_us // 1000, "ops": self.erases + self.programs}

    def _charge(self, us):
        self.busy_us += us
        self.rig.cost_us(us)

    def _random(self, n):
        """0..n-1 from a small LCG (a power cut's cut point: repeatable from the seed)."""
        self.rand = (self.rand * 1103515245 + 12345) & 0x7FFFFFFF
        return self.rand % n

    def _op(self):
        """Count an erase or program; True if the power goes in the middle of this one."""
        self.rig.tick()
        return self.erases + self.programs == self.cut_op

    # -- the block protocol --------------------------------------------------------------------
    def readblocks(self, block, buf, offset=0):
        self.rig.tick()
        self.reads += 1
        self.f.seek(block * BLOCK_BYTES + offset)
        self.f.readinto(buf)
        self.rig.cost_us(5 + len(buf) // 20)  # QIO at 40 MHz: 20 bytes a microsecond

    def writeblocks(self, block, buf, offset=0):
        torn = self._op()
        self.programs += 1
        n = len(buf)
        at = block * BLOCK_BYTES + offset
        stop = self._random(n + 1) if torn else n  # a power cut: only the first bytes land
        done = 0
        s = self.scratch
        while done < stop:
            k = min(PAGE_BYTES, stop - done)
            self.f.seek(at + done)
            view = self.views.get(k) or memoryview(s)[:k]
            self.f.readinto(view)
            _program(s, buf, done, k)  # NOR: programming clears bits, never sets them
            self.f.seek(at + done)
            self.f.write(view)
            done += k
        self.bytes_programmed += stop
        if torn:
            self.rig.power_cut("flash program of block %d" % block)
        self._charge((n + PROGRAM_BYTES - 1) // PROGRAM_BYTES * self.program_us)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.block_count
        if op == 5:  # block size
            return BLOCK_BYTES
        if op == 6:  # erase
            torn = self._op()
            self.erases += 1
            stop = self._random(BLOCK_BYTES + 1) if torn else BLOCK_BYTES
            self.f.seek(arg * BLOCK_BYTES)
            done = 0
            while done < stop:
                k = min(PAGE_BYTES, stop - done)
                self.f.write(self.ones if k == PAGE_BYTES else self.ones[:k])
                done += k
            if torn:
                self.rig.power_cut("flash erase of block %d" % arg)
            self._charge(self.erase_us)
            return 0
        return 0  # 1 init, 2 deinit, 3 sync: nothing to do


def new_image(path, block_count=512):
    """A blank chip: every byte erased."""
    with open(path, "wb") as f:
        ones = b"\xff" * BLOCK_BYTES
        for _ in range(block_count):
            f.write(ones)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
