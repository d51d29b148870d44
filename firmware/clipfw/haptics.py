"""The vibration motor: single buzzes, patterns and the metronome cue.

The motor is driven by PWM (an ERM through a transistor; intensity = duty). Beats are timed by
a hardware timer (machine.Timer) whose callback only switches the PWM duty and arms the
one-shot timer that ends the pulse: the beat keeps time whatever the main loop, BLE or the
flash are doing. The callbacks are bound once at start-up and allocate nothing.
"""
from machine import PWM, Pin, Timer
from micropython import const

BEAT_ON_MS = const(45)  # a metronome beat: a short, firm pulse
_DUTY_MAX = const(65535)
PATTERN_GAPS_MS = (0, 120, 120, 0)  # single, double, triple, long: gap between pulses
PATTERN_PULSES = (1, 2, 3, 1)
LONG_MS = const(600)


class Haptics:
    def __init__(self, pin, pwm_hz=200, intensity_pct=80, beat_timer_id=0, pulse_timer_id=1):
        self.pwm = PWM(Pin(pin), freq=pwm_hz, duty_u16=0)
        self.duty = _DUTY_MAX * intensity_pct // 100
        self.beat_timer = Timer(beat_timer_id)
        self.pulse_timer = Timer(pulse_timer_id)
        self._on_beat_cb = self._on_beat  # bound once: a timer callback must not allocate
        self._off_cb = self._off
        self._next_pulse_cb = self._next_pulse
        self.tempo_spm = 0
        self.beats_left = 0  # metronome beats still to play (-1: until stopped)
        self.pulses_left = 0
        self.pulse_ms = BEAT_ON_MS
        self.gap_ms = 0
        self.beats = 0  # beats played since boot (tests, status)

    def metronome(self, tempo_spm, duration_s, now_ms=0):
        """A beat every 60000 / tempo ms for duration_s (0: until stopped), starting now."""
        self.stop()
        self.tempo_spm = tempo_spm
        self.beats_left = -1 if duration_s == 0 else duration_s * tempo_spm // 60
        period_ms = 60000 // tempo_spm
        self._on_beat(None)
        self.beat_timer.init(mode=Timer.PERIODIC, period=period_ms, callback=self._on_beat_cb)

    def buzz(self, pattern, count, on_ms, intensity_pct, now_ms=0):
        """pattern: 0 single, 1 double, 2 triple, 3 long; repeated count times."""
        self.stop()
        self.duty = _DUTY_MAX * intensity_pct // 100
        self.pulse_ms = LONG_MS if pattern == 3 else on_ms
        self.gap_ms = PATTERN_GAPS_MS[pattern] or on_ms
        self.pulses_left = PATTERN_PULSES[pattern] * count
        self._next_pulse(None)

    def stop(self):
        self.beat_timer.deinit()
        self.pulse_timer.deinit()
        self.pwm.duty_u16(0)
        self.beats_left = 0
        self.pulses_left = 0
        self.tempo_spm = 0

    def tick(self, now_ms):
        """Nothing to do: the timers keep time (kept so the main loop can call every part alike)."""

    # -- timer callbacks: no allocation ------------------------------------------------------
    def _on_beat(self, _t):
        if self.beats_left == 0:
            self.beat_timer.deinit()
            return
        if self.beats_left > 0:
            self.beats_left -= 1
        self.beats += 1
        self.pwm.duty_u16(self.duty)
        self.pulse_timer.init(mode=Timer.ONE_SHOT, period=BEAT_ON_MS, callback=self._off_cb)

    def _off(self, _t):
        self.pwm.duty_u16(0)

    def _next_pulse(self, _t):
        if self.pulses_left <= 0:
            self.pwm.duty_u16(0)
            return
        if self.pwm.duty_u16() == 0:
            self.pwm.duty_u16(self.duty)
            self.pulses_left -= 1
            self.pulse_timer.init(mode=Timer.ONE_SHOT, period=self.pulse_ms, callback=self._next_pulse_cb)
        else:
            self.pwm.duty_u16(0)
            self.pulse_timer.init(mode=Timer.ONE_SHOT, period=self.gap_ms, callback=self._next_pulse_cb)
