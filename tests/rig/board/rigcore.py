"""The rig's board side: the clock, the soft timers, scheduled faults, power cuts, resets and the
run's report (tests/rig/README.md). Every stand-in calls ``tick()`` when the firmware touches it:
due timers are then scheduled, the watchdog is checked and a power cut or fault falls there.

The clock is simulated (``sim``: it moves only when the firmware sleeps or a stand-in charges what
its hardware costs, so runs are fast and repeatable) or real (``real``: NimBLE and bumble need
real time; costs are then real waits). Either way a soft timer's callback goes through
``micropython.schedule``, as on the ESP32: it runs when the firmware next reaches a point where
MicroPython handles pending callbacks, never inside a viper loop, an I2C transfer or a flash
erase, and it is lost when the schedule queue is full.

Nothing here allocates on the paths the firmware takes per sample (ticks, I2C costs, timer
checks): the clock is kept as whole milliseconds plus microseconds, both small ints.
"""
import gc
import json
import micropython
import os
import utime

ESP32_WDT_RESET = 3  # machine.reset_cause() on the ESP32 port
ESP32_SOFT_RESET = 5
ESP32_PWRON_RESET = 1
MASK30 = 0x3FFFFFFF  # ticks wrap at 2**30 on a 32-bit port


class Clock:
    def __init__(self, real, speed=1):
        self.real = real
        self.speed = speed  # real mode: the board's time runs this many times faster (never with BLE)
        self.ms = 0  # since boot
        self.us = 0  # 0..999 past self.ms
        self.last_real_us = utime.ticks_us()

    def sync(self):
        """Real mode: fold in the real time gone by."""
        if self.real:
            now = utime.ticks_us()
            self.advance(utime.ticks_diff(now, self.last_real_us) * self.speed)
            self.last_real_us = now

    def advance(self, us):
        us += self.us
        self.ms += us // 1000
        self.us = us % 1000

    def ticks_us(self):
        q, r = self.ms >> 20, self.ms & 0xFFFFF  # (ms * 1000) mod 2**30, without a big int
        a = ((q * 1000) & 1023) << 20
        b = r * 1000 + self.us
        c = MASK30 - b
        return a - c - 1 if a > c else a + b


class SoftTimer:
    """A hardware timer whose callback is scheduled, not run (the ESP32's machine.Timer)."""

    def __init__(self):
        self.active = False
        self.periodic = False
        self.due_ms = 0
        self.period_ms = 0
        self.callback = None
        self.owner = None  # the machine.Timer handed to the callback
        self.fired = 0
        self.dropped = 0  # lost because the schedule queue was full


class Rig:
    def __init__(self, opts):
        self.opts = opts
        self.clock = Clock(opts.get("clock") == "real", opts.get("speed", 1))
        self.lockstep = None  # (to host, from host): the host's input arrives at the board's times
        self.cost_debt_us = 0  # real clock: hardware time owed, slept a millisecond at a time
        self.timers = [SoftTimer() for _ in range(4)]  # the ESP32 has four hardware timers
        self.faults = sorted(opts.get("faults", []))  # [t_ms, kind, arg]: see fault()
        self.next_fault = 0
        self.cut_ms = opts.get("cut_ms", -1)  # a power cut at this time (-1: none)
        self.end_ms = opts.get("end_ms", -1)  # the run ends here (see end())
        self.wdt_timeout_ms = 0
        self.wdt_fed_ms = 0
        self.lock = opts.get("heap_lock", None)  # [from_ms, to_ms]: passes run under heap_lock
        self.locked = False
        self.locked_passes = 0
        self.passes = 0  # passes of the firmware's loop (from one sleep to the next)
        self.ballast = None  # heap kept from the firmware (rigboot), given back for the report
        self.i2c_errors = 0  # transfers still to fail (an injected fault)
        self.raise_next = None  # an exception the next I2C transfer raises
        self.alloc_next = False  # the next I2C transfer allocates (inside the firmware's pass)
        self.hog = None  # True while a fault holds the heap (locked)
        self.ble_alloc_fail_until = 0  # the BLE handler's reads fail with MemoryError until then (bluetooth.py)
        self.hog_until = 0
        self.report = {}  # filled by the stand-ins, written at the end
        self.devices = {}  # I2C address -> emulated chip
        self.buses = []  # machine.I2C's buses (their busy time)
        self.rmt_log = []  # what the RMT was told to play, and when (esp32.py)
        self.flash = None  # the flash chip (rigflash.Flash)
        self.ending = False
        self.dead = False  # the board is going down: nothing more happens on it
        self._in_tick = False

    # -- time -------------------------------------------------------------------------------
    def cost_us(self, us):
        """Hardware that takes this long (an I2C transfer, a flash erase): the CPU waits and
        nothing pending runs, as on the ESP32. In real time the waits are gathered to a
        millisecond before sleeping (usleep overshoots by ~60 us, which would make a littlefs scan
        of a few thousand 6 us reads take ten times its time)."""
        if self.clock.real:
            self.cost_debt_us += us
            if self.cost_debt_us >= 1000 * self.clock.speed:
                start = utime.ticks_us()
                utime.sleep_us(self.cost_debt_us // self.clock.speed)  # usleep: no pending callbacks
                self.cost_debt_us -= utime.ticks_diff(utime.ticks_us(), start) * self.clock.speed
            self.clock.sync()
        else:
            self.clock.advance(us)
        self.tick()

    def sleep_ms(self, ms):
        """time.sleep_ms: pending callbacks run while it waits (each timer's at its due time)."""
        if self.locked:
            micropython.heap_unlock()
            self.locked = False
        self.passes += 1
        if self.ending:
            raise KeyboardInterrupt  # (end(): Ctrl-C, where it is safe to raise)
        clock = self.clock
        clock.sync()
        if self.lockstep:
            self.handshake()
        end = clock.ms + ms
        while True:
            self.tick()
            if clock.ms >= end:
                break
            step = end - clock.ms
            for t in self.timers:
                if t.active and clock.ms < t.due_ms < clock.ms + step:
                    step = t.due_ms - clock.ms
            if clock.real:
                utime.sleep_ms(step // clock.speed)  # NimBLE's events and the scheduled callbacks run meanwhile
                clock.sync()
            else:
                clock.advance(step * 1000)
                utime.sleep_ms(0)  # run what tick() scheduled, at this time
        lock = self.lock
        if lock and lock[0] <= clock.ms < lock[1]:
            micropython.heap_lock()
            self.locked = True
            self.locked_passes += 1

    def handshake(self):
        """Lockstep with the host (tests/rig/__init__.py, Lockstep): say the time, and wait while
        the host writes to the board's stdin what a host would have sent by then."""
        to_host, from_host = self.lockstep
        to_host.write("%d\n" % self.clock.ms)
        from_host.readline()

    # -- what happens when the firmware touches the board -------------------------------------
    def tick(self):
        if self._in_tick or self.dead:
            return
        self._in_tick = True
        clock = self.clock
        clock.sync()
        now = clock.ms
        for t in self.timers:
            while t.active and t.due_ms <= now:
                t.fired += 1
                if t.periodic:
                    t.due_ms += t.period_ms  # the hardware keeps its period whenever the callback runs
                else:
                    t.active = False
                try:
                    micropython.schedule(t.callback, t.owner)
                except Exception:  # queue full: the ESP32 drops it too
                    t.dropped += 1
        if self.wdt_timeout_ms and now - self.wdt_fed_ms > self.wdt_timeout_ms:
            self._in_tick = False
            self.reset(ESP32_WDT_RESET, "watchdog")
        if 0 <= self.cut_ms <= now:
            self._in_tick = False
            self.power_cut("time")
        if self.hog is not None and now >= self.hog_until:
            self.hog = None
            micropython.heap_unlock()
        while self.next_fault < len(self.faults) and self.faults[self.next_fault][0] <= now:
            self.fault(self.faults[self.next_fault])
            self.next_fault += 1
        if 0 <= self.end_ms <= now and not self.ending:
            self._in_tick = False
            self.end()
        self._in_tick = False

    def fault(self, f):
        kind = f[1]
        if kind == "i2c_error":  # the next arg transfers fail (a loose contact: NACK)
            self.i2c_errors = f[2]
        elif kind == "raise":  # the next I2C transfer raises something no driver expects
            self.raise_next = f[2]
        elif kind == "imu_reset":  # a power glitch resets the IMU: powered down, FIFO empty
            for dev in self.devices.values():
                dev.power_on_reset()
        elif kind == "stall":  # the CPU is held this many ms (a flash burst, a stuck driver)
            self.cost_us(f[2] * 1000)
        elif kind == "alloc":  # allocate in the firmware's pass (the heap-lock test's negative control)
            self.alloc_next = True
        elif kind == "ble_alloc":  # for arg ms the BLE event handler cannot allocate (bluetooth.py)
            self.ble_alloc_fail_until = self.clock.ms + f[2]
        elif kind == "hog":  # no heap at all for arg ms (a leak elsewhere took it): every allocation fails
            self.hog_until = self.clock.ms + f[2]
            self.hog = True
            micropython.heap_lock()
        self.report.setdefault("faults", []).append([self.clock.ms, kind])

    # -- leaving the board --------------------------------------------------------------------
    def write_report(self, how):
        self._unlock_all()
        self.dead = True
        self.ballast = None  # the run is over: the report may use the clip's heap
        gc.collect()
        r = self.report
        r["end"] = how
        r["t_ms"] = self.clock.ms
        r["locked_passes"] = self.locked_passes
        r["passes"] = self.passes
        r["timers"] = [[t.fired, t.dropped] for t in self.timers]
        if self.flash is not None:
            r["flash"] = self.flash.stats()
        for addr, dev in self.devices.items():
            r["imu"] = dev.stats()
        r["i2c_busy_ms"] = sum(b.busy_us for b in self.buses) // 1000
        r["rmt"] = self.rmt_log
        gc.collect()
        r["mem_free"] = gc.mem_free()
        r["mem_alloc"] = gc.mem_alloc()
        with open(self.opts["host"] + "/report.json", "w") as f:
            f.write(json.dumps(r))

    def _unlock_all(self):
        if self.locked:
            micropython.heap_unlock()
        if self.hog:
            micropython.heap_unlock()
        self.locked = False
        self.hog = None

    def die(self):
        """The power is gone: nothing more runs, nothing more is written."""
        os.system("kill -9 $PPID")  # the shell's parent is this interpreter
        while True:
            pass

    def power_cut(self, where):
        self._unlock_all()
        self.report["cut"] = {"t_ms": self.clock.ms, "where": where}
        self.write_report("power_cut")
        self.die()

    def reset(self, cause, why):
        """machine.reset() or the watchdog: the board restarts (the host boots it again)."""
        self._unlock_all()
        self.report["reset"] = {"cause": cause, "why": why, "t_ms": self.clock.ms}
        self.write_report("reset")
        self.die()

    def end(self):
        """The run is over: the power goes off, or (opts end: interrupt) Ctrl-C reaches the app at
        its next sleep. (On the ESP32 a KeyboardInterrupt is raised between bytecodes, never in
        the middle of a littlefs operation; here the flash is Python called from littlefs, so
        the rig raises it only where the loop sleeps.)"""
        self.ending = True
        if self.opts.get("end", "power_off") == "interrupt":
            return
        if self.locked:
            micropython.heap_unlock()
            self.locked = False
        self.write_report("power_off")
        self.die()


RIG = None  # set by rigboot
