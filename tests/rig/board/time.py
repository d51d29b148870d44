"""Stand-in for the ESP32's `time` on the rig: ticks from the rig's clock (rigcore.Clock), sleeps
that let due soft timers run (tests/rig/README.md). The pure functions are the real ones."""
from utime import ticks_add, ticks_diff  # noqa: F401  (re-exported, as the ESP32's time has them)
import utime

import rigcore


def ticks_ms():
    rig = rigcore.RIG
    rig.tick()
    return rig.clock.ms & rigcore.MASK30


def ticks_us():
    rig = rigcore.RIG
    rig.tick()
    return rig.clock.ticks_us()


def ticks_cpu():
    return ticks_us()


def sleep_ms(ms):
    rigcore.RIG.sleep_ms(ms)


def sleep_us(us):
    rigcore.RIG.cost_us(us)  # a busy wait on the ESP32 too (under a millisecond)


def sleep(s):
    rigcore.RIG.sleep_ms(int(s * 1000))


def time():
    return utime.time()


def time_ns():
    return utime.time_ns()


def localtime(secs=None):
    return utime.localtime(secs)


def gmtime(secs=None):
    return utime.gmtime(secs)


def mktime(t):
    return utime.mktime(t)
