"""Test-only stand-in for MicroPython's `machine` on the unix port (tests/test_firmware.py).

I2C talks to emulated chips registered in DEVICES by address; PWM records every duty change
with the simulated time; Timer fires its callbacks when the simulated CLOCK advances. Nothing
here allocates on the paths the firmware takes per sample or per beat, so heap_lock tests
check the firmware and not this file.
"""
import array

DEVICES = {}  # I2C address -> emulated chip with read_into(reg, buf) and write(reg, buf)


class Clock:
    def __init__(self):
        self.now_ms = 0

    def ticks_ms(self):
        return self.now_ms

    def advance(self, ms):
        """Move time on by ms, firing due timers in time order (their callbacks run 'on time')."""
        end = self.now_ms + ms
        while True:
            t = _next_timer(end)
            if t is None:
                break
            self.now_ms = t.due_ms
            t.fire()
        self.now_ms = end


CLOCK = Clock()


class I2C:
    def __init__(self, bus, sda=None, scl=None, freq=400000):
        self.bus = bus
        self.freq = freq

    def _dev(self, addr):
        dev = DEVICES.get(addr)
        if dev is None:
            raise OSError(19)  # ENODEV: nothing acknowledges this address
        return dev

    def readfrom_mem_into(self, addr, reg, buf):
        self._dev(addr).read_into(reg, buf)

    def readfrom_mem(self, addr, reg, n):
        buf = bytearray(n)
        self._dev(addr).read_into(reg, buf)
        return bytes(buf)

    def writeto_mem(self, addr, reg, buf):
        self._dev(addr).write(reg, buf)


class Pin:
    IN = 0
    OUT = 1

    def __init__(self, pin_id, mode=-1, pull=-1):
        self.id = pin_id


class PWM:
    LOG_MAX = 96

    def __init__(self, pin, freq=1000, duty_u16=0):
        self.pin = pin
        self.freq = freq
        self._duty = duty_u16
        self.log_ms = array.array("i", [0] * self.LOG_MAX)  # when each duty change happened
        self.log_duty = array.array("i", [0] * self.LOG_MAX)
        self.n_log = 0

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        if value != self._duty and self.n_log < self.LOG_MAX:
            self.log_ms[self.n_log] = CLOCK.now_ms
            self.log_duty[self.n_log] = value
            self.n_log += 1
        self._duty = value


_TIMERS = []


def _next_timer(end_ms):
    best = None
    for t in _TIMERS:
        if t.active and t.due_ms <= end_ms and (best is None or t.due_ms < best.due_ms):
            best = t
    return best


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, timer_id=-1):
        self.id = timer_id
        self.active = False
        self.due_ms = 0
        self.period = 0
        self.mode = 0
        self.callback = None
        _TIMERS.append(self)

    def init(self, mode=PERIODIC, period=0, callback=None, freq=None):
        self.mode = mode
        self.period = period
        self.callback = callback
        self.due_ms = CLOCK.now_ms + period
        self.active = True

    def deinit(self):
        self.active = False

    def fire(self):
        if self.mode == Timer.PERIODIC:
            self.due_ms += self.period
        else:
            self.active = False
        self.callback(self)


class ADC:
    ATTN_11DB = 3
    UV = 1_900_000  # what every ADC reads, set by the test (microvolts at the pin)

    def __init__(self, pin):
        self.pin = pin

    def atten(self, value):
        self.attenuation = value

    def read_uv(self):
        return ADC.UV


def reset_cause():
    return 1
