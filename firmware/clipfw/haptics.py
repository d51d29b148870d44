"""The vibration motor: single buzzes, patterns and the metronome cue, timed by hardware.

The motor (an ERM through a MOSFET) is driven by the ESP32's RMT peripheral: a cue is written
once as a train of on/off pulses and the RMT plays it by itself, so the main loop, BLE, I2C and
flash erases (which stall the CPU) cannot move a beat. Intensity is the duty of the RMT's carrier
(haptic_pwm_hz) during the on-pulses. A metronome is one beat in the RMT's loop mode (a 45 ms
pulse, then off for the rest of the period, 3.2 us ticks: the tempo is exact to a few
microseconds a beat); its end is set by stopping the loop between the last beat and the next
(`tick`), so it plays exactly its number of beats. Soft timers (machine.Timer on the ESP32 only
schedules its callbacks) are not used.

MicroPython v1.26 esp32.RMT API (firmware/README.md, "Putting it on a clip"): loop(), write_pulses()
returning at once from an idle channel, deinit() stopping at once. Each cue makes a fresh channel,
so no write ever waits for a playing one.
"""
from micropython import const

BEAT_ON_MS = const(45)  # a metronome beat: a short, firm pulse
_CLOCK_DIV = const(255)  # 80 MHz / 255: 3.1875 us ticks (80 ticks per 255 us), pulses up to 104 ms
_PULSE_MAX = const(32767)
PATTERN_GAPS_MS = (0, 120, 120, 0)  # single, double, triple, long: gap between pulses
PATTERN_PULSES = (1, 2, 3, 1)
LONG_MS = const(600)


def ticks(us):
    return (us * 80 + 127) // 255


def _pulses(durations, levels, spans_us):
    """RMT durations (ticks) and levels for alternating on/off spans in microseconds (on first),
    long ones split into equal parts under the RMT's limit (an item cannot be 0 or over 32767)."""
    del durations[:]
    del levels[:]
    level = 1
    for us in spans_us:
        t = max(ticks(us), 1)
        parts = (t + _PULSE_MAX - 1) // _PULSE_MAX
        for k in range(parts):
            durations.append(t // parts + (1 if k < t % parts else 0))
            levels.append(level)
        level ^= 1


class Haptics:
    def __init__(self, pin, carrier_hz=20_000, intensity_pct=80, channel=0):
        from machine import Pin

        self.pin = Pin(pin, Pin.OUT, value=0)
        self.carrier_hz = carrier_hz
        self.intensity = intensity_pct
        self.channel = channel
        self.rmt = None
        self.durations = []  # the pulse train of the cue being written: ticks ...
        self.levels = []  # ... and on (1) / off (0)
        self.tempo_spm = 0
        self.beats_left = 0  # metronome beats still to start (-1: until stopped)
        self.started_ms = 0
        self.stop_at_ms = 0  # the metronome's loop is stopped after this (its last beat has started)

    def _channel(self, intensity_pct, loop):
        """A fresh RMT channel (stopping whatever played), with this intensity as carrier duty."""
        from esp32 import RMT

        self.stop()
        carrier = None if intensity_pct >= 100 else (self.carrier_hz, intensity_pct, 1)
        self.rmt = RMT(self.channel, pin=self.pin, clock_div=_CLOCK_DIV, idle_level=False, tx_carrier=carrier)
        self.rmt.loop(loop)
        return self.rmt

    def metronome(self, tempo_spm, duration_s):
        """A beat every 60 / tempo s for duration_s (0: until stopped), starting now."""
        import time

        period_us = 60_000_000 // tempo_spm
        rmt = self._channel(self.intensity, True)
        _pulses(self.durations, self.levels, (1000 * BEAT_ON_MS, period_us - 1000 * BEAT_ON_MS))
        self.durations[-1] -= 1  # the RMT idles one tick between loop iterations
        self.tempo_spm = tempo_spm
        n = duration_s * tempo_spm // 60
        self.beats_left = -1 if duration_s == 0 else n
        self.started_ms = time.ticks_ms()
        # The loop is stopped once the last beat has started, before the next one would: in ms,
        # (n - 1) x period without a product that leaves the small ints.
        last_ms = (n - 1) * (period_us // 1000) + (n - 1) * (period_us % 1000) // 1000
        self.stop_at_ms = time.ticks_add(self.started_ms, last_ms + BEAT_ON_MS + 20)
        rmt.write_pulses(self.durations, self.levels)

    def buzz(self, pattern, count, on_ms, intensity_pct):
        """pattern: 0 single, 1 double, 2 triple, 3 long; repeated count times."""
        rmt = self._channel(intensity_pct, False)
        on = 1000 * (LONG_MS if pattern == 3 else on_ms)
        gap = 1000 * (PATTERN_GAPS_MS[pattern] or on_ms)
        spans = []
        for _ in range(PATTERN_PULSES[pattern] * count):
            spans.append(on)
            spans.append(gap)
        spans.pop()  # nothing after the last pulse
        _pulses(self.durations, self.levels, spans)
        rmt.write_pulses(self.durations, self.levels)

    def stop(self):
        if self.rmt is not None:
            self.rmt.deinit()  # stops the output at once
            self.rmt = None
        self.beats_left = 0
        self.tempo_spm = 0

    def tick(self, now_ms):
        """The main loop's pass: end a timed metronome once its last beat has started."""
        import time

        if self.beats_left > 0 and time.ticks_diff(now_ms, self.stop_at_ms) >= 0:
            self.rmt.loop(False)  # the iteration in progress (its beat already played) ends, then silence
            self.beats_left = 0
            self.tempo_spm = 0
