"""Stand-in for the ESP32 port's `esp32` module on the rig: the RMT peripheral as MicroPython
v1.26 drives it (ESP-IDF's legacy RMT driver; tests/rig/README.md).

The RMT plays a pulse train by itself; the stand-in logs what it was given and when, and the host
rebuilds the pin from that (tests/rig/__init__.py, rmt_pulses), as the hardware would play it:
loop mode repeats the train back to back with one idle tick between iterations; loop(False) lets
the iteration in progress finish; deinit() stops the output at once. As on the chip, write_pulses
on a channel still playing waits (the CPU blocked) until the playing train or loop iteration is
over, durations must be 1..32767 ticks, a loop holds at most 126 pulses, and the carrier's high
and low halves must each fit 1..65535 ticks of the 80 MHz clock.
"""
import rigcore

APB_HZ = 80_000_000


class RMT:
    PULSE_MAX = 32767

    def __init__(self, id, *, pin, clock_div=8, idle_level=False, tx_carrier=None):
        if not 0 <= id <= 7:
            raise ValueError("invalid channel")
        if not 1 <= clock_div <= 255:
            raise ValueError("clock_div must be between 1 and 255")
        if tx_carrier is not None:
            freq, duty, level = tx_carrier
            if freq <= 0:
                raise ValueError("tx_carrier frequency must be >0")
            if not 0 <= duty <= 100:
                raise ValueError("tx_carrier duty must be 0..100")
            total = APB_HZ // freq
            high = total * duty // 100
            if not (1 <= high <= 65535 and 1 <= total - high <= 65535):
                raise ValueError("rig: this carrier does not fit the RMT's 16-bit counters")  # the chip would misplay it
        self.rig = rigcore.RIG
        self.clock_div = clock_div
        self.carrier = tx_carrier
        self.loop_en = False
        self.entry = None  # this channel's transmission in the rig's log
        self.ended_us = 0  # when a non-looping train ends (rig time, us since boot)
        self.closed = False

    def _now_us(self):
        c = self.rig.clock
        self.rig.tick()
        return c.ms * 1000 + c.us

    def _train_us(self, durations):
        return (sum(durations) + (1 if self.loop_en else 0)) * self.clock_div * 1_000_000 // APB_HZ

    def loop(self, enable):
        now = self._now_us()
        self.loop_en = bool(enable)
        e = self.entry
        if not enable and e is not None and e["loop"] and e["stop_us"] < 0:
            e["stop_us"] = now  # the iteration in progress plays out
            e["stop"] = "loop_end"
            iteration = self._train_us(e["durations"])
            self.ended_us = now + iteration - (now - e["start_us"]) % iteration

    def write_pulses(self, duration, data=True):
        if self.closed:
            raise OSError("RMT deinitialised")
        if isinstance(data, (list, tuple)):
            levels = list(data)
            durations = list(duration) if isinstance(duration, (list, tuple)) else [duration] * len(levels)
            if len(durations) != len(levels):
                raise ValueError("duration and data must have same length")
        else:
            durations = list(duration)
            level = 1 if data else 0
            levels = []
            for _ in durations:
                levels.append(level)
                level ^= 1
        if not durations:
            raise ValueError("No pulses")
        if self.loop_en and len(durations) > 126:
            raise ValueError("Too many pulses for loop")
        for d in durations:
            if not 1 <= d <= self.PULSE_MAX:
                raise ValueError("rig: RMT duration %d outside 1..32767 (the chip would misplay it)" % d)
        now = self._now_us()
        e = self.entry
        if e is not None:  # wait (CPU blocked) for what plays to end
            if e["loop"] and e["stop_us"] < 0:
                self.loop(False)
            wait = self.ended_us - now
            if wait > 0:
                self.rig.cost_us(wait)
                now = self._now_us()
        self.entry = {"start_us": now, "durations": durations, "levels": levels, "loop": self.loop_en,
                      "clock_div": self.clock_div, "carrier": self.carrier, "stop_us": -1, "stop": ""}
        if not self.loop_en:
            self.ended_us = now + self._train_us(durations)
        self.rig.rmt_log.append(self.entry)

    def wait_done(self, *, timeout=0):
        now = self._now_us()
        e = self.entry
        if e is None:
            return True
        if e["loop"] and e["stop_us"] < 0:
            return False
        if now >= self.ended_us:
            return True
        if timeout:
            self.rig.cost_us(min(timeout * 1000, self.ended_us - now))
            return self._now_us() >= self.ended_us
        return False

    def deinit(self):
        now = self._now_us()
        e = self.entry
        if e is not None and (e["stop_us"] < 0 or now < self.ended_us):
            e["stop_us"] = now  # the output stops here
            e["stop"] = "deinit"
        self.entry = None
        self.closed = True

    @staticmethod
    def source_freq():
        return APB_HZ
