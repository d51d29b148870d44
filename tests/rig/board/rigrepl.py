"""The clip's REPL on the rig, its flash mounted as on the board (tests/test_flash.py):

    micropython -i rigrepl.py HOST_DIR BOARD_DIR

Mounts HOST_DIR/flash.img with littlefs at / (a blank image is formatted, as the ESP32's _boot.py
does) and leaves the interpreter at its REPL, where mpremote finds it: `strideclip flash` then
copies the firmware onto the same flash a later boot (rigboot.py) runs from."""
import os
import sys

import vfs

host, board_dir = sys.argv[1], sys.argv[2]
vfs.mount(vfs.VfsPosix(board_dir), "/rig")
vfs.mount(vfs.VfsPosix(host), "/host")
sys.path[:] = ["/rig"]
import rigcore  # noqa: E402
import rigflash  # noqa: E402

rigcore.RIG = rigcore.Rig({"host": "/host"})
if not rigflash.exists("/host/flash.img"):
    rigflash.new_image("/host/flash.img")
_flash = rigflash.Flash(rigcore.RIG, "/host/flash.img", 512, 0, 0)
vfs.umount("/")
try:
    vfs.mount(vfs.VfsLfs2(_flash), "/")
except OSError:
    vfs.VfsLfs2.mkfs(_flash)
    vfs.mount(vfs.VfsLfs2(_flash), "/")
os.chdir("/")
sys.path[:] = ["", "/lib"]
del os, sys, vfs, host, board_dir
