"""How much heap the clip's own part needs, on the rig (tests/rig/README.md): the smallest heap
with which the firmware still runs a session cleanly (no MemoryError caught, no crash), found by
bisection. The rig gives the firmware exactly the heap asked (a ballast takes the rest; the
stand-ins are measured and do not count). Two sessions:

- BLE, real NimBLE (its bindings and, on this port, NimBLE's own memory come from the
  MicroPython heap: on an ESP32 NimBLE's does not, so this figure is an upper bound): a bonded
  host streams 40 s with a 10 s drop and its backfill, the flash log writing meanwhile;
- USB, simulated clock: 3 minutes streamed with a backfill.

Run: .venv/bin/python bench/bench_clip_heap.py
"""
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import rig as R  # noqa: E402
from rig.air import Air  # noqa: E402

from clipcore import protocol as P  # noqa: E402
from strideclip.link.ble import scan  # noqa: E402
from strideclip.session.live import run_live  # noqa: E402
from strideclip.sim import simulate, steady_run  # noqa: E402


def clean(boot: R.Boot, events) -> bool:
    return "crashed" not in boot.report and not any(
        isinstance(e, P.Status) and e.code == P.STATUS_ERROR for e in events)


def usb_session(firmware: Path, tmp: Path, heap: int) -> bool:
    run = simulate(steady_run(3, seed=60))
    board = R.Board(tmp / f"usb{heap}", firmware, {"link": "usb"})
    buf = bytearray(32)
    backfill = P.frame(bytes(buf[:P.pack_command(buf, 1, P.OP_BACKFILL, (208 * 100, 208 * 20))]))
    boot = board.boot(run.counts, end_ms=180_500, clip_heap_bytes=heap, usb_in=[(150, backfill)])
    d = P.Deframer()
    d.feed(boot.serial)
    events = []
    while (pkt := d.next_packet(eof=True)) is not None:
        events.append(P.decode(pkt))
    return clean(boot, events) and any(isinstance(e, P.Status) and e.code == P.STATUS_BACKFILL_DONE for e in events)


def ble_session(firmware: Path, tmp: Path, heap: int) -> bool:
    from strideclip.stream.sclog import load_log

    run = simulate(steady_run(0.75, seed=61))

    async def main():
        air = Air()
        await air.start()
        clip = R.BleClip(air, R.Board(tmp / f"ble{heap}", firmware, {"clip_name": "Ana"}))
        await clip.boot(run.counts, end_ms=44_000, clip_heap_bytes=heap)
        await asyncio.sleep(1.0)
        adverts = await scan(1.0, backend=air.scanner_backend)
        stop = asyncio.Event()

        async def drop_then_stop():
            await asyncio.sleep(12)
            await air.link.lose(air.laptop, clip.controller, out_of_range_s=10)
            await asyncio.sleep(15)
            stop.set()

        task = asyncio.ensure_future(drop_then_stop())
        live = await run_live(adverts, tmp / f"host{heap}", backend=air.client_backend, stop=stop)
        task.cancel()
        boot = await clip.finish()
        await air.close()
        return live, boot

    live, boot = asyncio.run(main())
    if not live:
        return False
    log = load_log(live[0].log_path)
    return clean(boot, [m for _t, m in log.events]) and not log.gaps and len(log.counts) > 30 * 208


def smallest(works, lo_kb: int = 32, hi_kb: int = 96) -> int:
    """The smallest heap (kB, to 2 kB) with which works(bytes) holds; hi_kb must work."""
    if not works(hi_kb * 1024):
        return -1
    while hi_kb - lo_kb > 2:
        mid = (lo_kb + hi_kb) // 2
        if works(mid * 1024):
            hi_kb = mid
        else:
            lo_kb = mid
    return hi_kb


def main() -> None:
    if R.unavailable():
        sys.exit(R.unavailable())
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        firmware = R.build_firmware(tmp / "fw")
        usb = smallest(lambda heap: usb_session(firmware, tmp, heap))
        print(f"USB link, 3 min with a backfill: the clip's part needs at most {usb} kB (of its 96 kB budget)")
        ble = smallest(lambda heap: ble_session(firmware, tmp, heap), lo_kb=48)
        print(f"BLE link (real NimBLE, its memory on this heap), 40 s bonded with a drop and its backfill: "
              f"the clip's part needs at most {ble} kB")


if __name__ == "__main__":
    main()
