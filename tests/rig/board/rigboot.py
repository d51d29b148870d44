"""Boots the clip on the rig as an ESP32 boots (tests/rig/README.md):

    micropython -X heapsize=... rigboot.py HOST_DIR

HOST_DIR holds opts.json (what the test sets), flash.img (the clip's flash), counts.bin (the run
the IMU will see) and receives report.json. The stand-ins (this folder) are mounted at /rig and
the host folder at /host; the flash is mounted with littlefs at / as the ESP32's _boot.py does
(a filesystem that will not mount is formatted, as there: the test sees it in the report), and
the firmware's own main.py is imported from it. Before that, what the stand-ins hold of the heap
is measured and a ballast block leaves the firmware exactly the heap the clip budgets.
"""
import gc
import sys

gc.collect()
_bare = gc.mem_alloc()
import json  # noqa: E402
import vfs  # noqa: E402

host = sys.argv[1]
board_dir = sys.argv[2]
with open(host + "/opts.json") as f:
    opts = json.loads(f.read())
opts["host"] = "/host"
vfs.mount(vfs.VfsPosix(board_dir), "/rig")
vfs.mount(vfs.VfsPosix(host), "/host")
sys.path[:] = ["/rig"]

import rigcore  # noqa: E402

rig = rigcore.Rig(opts)
rigcore.RIG = rig
if opts.get("lockstep"):
    rig.lockstep = (open("/host/to_host", "w"), open("/host/to_rig", "r"))
import machine  # noqa: E402,F401  (the stand-ins the firmware will import: loaded now, counted now)
import time  # noqa: E402,F401
import bluetooth  # noqa: E402,F401  (the real module, through rig/board/bluetooth.py)
import rigflash  # noqa: E402
import rigimu  # noqa: E402

if opts.get("imu", "lsm6dsox") != "none":  # the chip on the bus (none: nothing answers)
    chip = rigimu.LSM6DS3TRC if opts.get("imu") == "lsm6ds3trc" else rigimu.LSM6DSOX
    rig.devices[opts.get("imu_address", 0x6A)] = chip(
        rig, rigimu.Recording("/host/counts.bin", opts.get("first_idx", 0)),
        opts.get("who_am_i", chip.WHO_AM_I_DEFAULT), opts.get("rate_ppm", 0))
    del chip
flash = rigflash.Flash(rig, "/host/flash.img", opts.get("flash_blocks", 512), opts.get("erase_us", rigflash.ERASE_US),
                       opts.get("program_us", rigflash.PROGRAM_US), opts.get("cut_op", -1),
                       opts.get("seed", 1))
rig.flash = flash
gc.collect()
standin = gc.mem_alloc() - opts.get("bare_bytes", _bare)
rig.report["standin_bytes"] = standin
heap = gc.mem_alloc() + gc.mem_free()
ballast_bytes = heap - standin - opts.get("clip_heap_bytes", 96 * 1024)
if ballast_bytes < 0:
    raise SystemExit("rig: the heap (%d) is too small for the stand-ins (%d) and the clip's budget" % (heap, standin))
rig.ballast = bytearray(ballast_bytes) if ballast_bytes else None
rig.report["ballast_bytes"] = ballast_bytes

# From here on everything is the clip's: the filesystem, then the firmware.
vfs.umount("/")
try:
    vfs.mount(vfs.VfsLfs2(flash), "/")
except OSError as e:
    rig.report["mount_failed"] = str(e)
    vfs.VfsLfs2.mkfs(flash)
    vfs.mount(vfs.VfsLfs2(flash), "/")
import os  # noqa: E402

os.chdir("/")
sys.path[:] = ["", "/lib", "/rig"]
del f, heap, standin, json, vfs
gc.collect()
try:
    if opts.get("firmware") == "imu_only":  # the benchmark's baseline (imu_only.py)
        import imu_only  # noqa: F401
    else:
        import main  # noqa: E402,F401  (the firmware: main.py on the flash)
except KeyboardInterrupt:
    rig.report["interrupted"] = True
except BaseException as e:  # noqa: BLE001  (the app died: on the clip it would sit at the REPL)
    if rig.locked:
        import micropython

        micropython.heap_unlock()
        rig.locked = False
    sys.print_exception(e, sys.stderr)
    rig.report["crashed"] = repr(e)
rig.write_report("exit")
