"""The clip's flash image from the outside (tests/rig/README.md): what `strideclip flash` and
`sync --port` do over USB, done straight on the image with the same littlefs.

    micropython rigfs.py HOST_DIR BOARD_DIR install     # format, copy HOST_DIR/put/* to /
    micropython rigfs.py HOST_DIR BOARD_DIR put         # copy HOST_DIR/put/* over what is there
    micropython rigfs.py HOST_DIR BOARD_DIR pull PATH   # copy PATH (a file or a folder) to HOST_DIR/pull/
    micropython rigfs.py HOST_DIR BOARD_DIR check       # mount (never format); print what is there
    micropython rigfs.py HOST_DIR BOARD_DIR ls PATH     # the names in a folder, one a line, and sizes
"""
import os
import sys

import vfs

host, board_dir, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
vfs.mount(vfs.VfsPosix(board_dir), "/rig")
vfs.mount(vfs.VfsPosix(host), "/host")
sys.path[:] = ["/rig"]
import rigcore  # noqa: E402
import rigflash  # noqa: E402

rigcore.RIG = rigcore.Rig({"host": "/host"})
image = "/host/flash.img"
if cmd == "install" or not rigflash.exists(image):
    rigflash.new_image(image)
flash = rigflash.Flash(rigcore.RIG, image, 512, 0, 0)  # no time passes out here
if cmd == "install":
    vfs.VfsLfs2.mkfs(flash)
vfs.mount(vfs.VfsLfs2(flash), "/flash")


def isdir(path):
    return os.stat(path)[0] & 0x4000


def copy_tree(src, dst):
    for name in os.listdir(src):
        s, d = src + "/" + name, dst + "/" + name
        if isdir(s):
            try:
                os.mkdir(d)
            except OSError:
                pass
            copy_tree(s, d)
        else:
            with open(s, "rb") as fi, open(d, "wb") as fo:
                fo.write(fi.read())


if cmd in ("install", "put"):
    copy_tree("/host/put", "/flash")
elif cmd == "pull":
    src = "/flash" + sys.argv[4]
    try:
        os.mkdir("/host/pull")
    except OSError:
        pass
    if isdir(src):
        copy_tree(src, "/host/pull")
    else:
        with open(src, "rb") as fi, open("/host/pull/" + src.rsplit("/", 1)[1], "wb") as fo:
            fo.write(fi.read())
elif cmd == "ls":
    try:
        for name in os.listdir("/flash" + sys.argv[4]):
            print(name, os.stat("/flash" + sys.argv[4] + "/" + name)[6])
    except OSError:
        pass  # no such folder: nothing in it
elif cmd == "check":
    for name in os.listdir("/flash"):
        print(name, os.stat("/flash/" + name)[6])
    print("statvfs", os.statvfs("/flash"))
vfs.umount("/flash")
