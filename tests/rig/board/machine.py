"""Stand-in for the ESP32 port's `machine` on the rig (tests/rig/README.md): only what the ESP32 has,
behaving as it does where the firmware can tell.

- I2C: transfers cost what the ESP32's hardware I2C costs (rigimu.Bus) and fail where a test
  injects a fault; the emulated chips sit on the bus at their addresses.
- Timer: four hardware timers whose callbacks are soft (scheduled): ``hard=True`` is refused as
  the ESP32 port refuses it.
- WDT: the task watchdog; starve it and the board resets (the host boots it again).
- reset(): a reset; reset_cause() says what the last one was.
"""
import rigcore

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def _rig():
    return rigcore.RIG


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        if not 0 <= pin_id <= 48:
            raise ValueError("invalid pin")
        self.id = pin_id
        self._value = value or 0

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0


class I2C:
    def __init__(self, bus_id, scl=None, sda=None, freq=400000, timeout=50000):
        rig = _rig()
        if bus_id not in (0, 1):
            raise ValueError("I2C(%d) doesn't exist" % bus_id)
        import rigimu

        self.bus = rigimu.Bus(rig, freq, rig.opts.get("i2c_overhead_us", 160))
        rig.buses.append(self.bus)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self.bus.transfer(addr, 3 + len(buf)).read_into(memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self.bus.transfer(addr, 2 + len(buf)).write(memaddr, buf)

    def scan(self):
        return sorted(_rig().devices)


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, timer_id, mode=PERIODIC, period=-1, freq=-1, callback=None, hard=False):
        if not 0 <= timer_id <= 3:
            raise ValueError("invalid Timer number")
        self._t = _rig().timers[timer_id]
        if callback is not None:
            self.init(mode=mode, period=period, freq=freq, callback=callback, hard=hard)

    def init(self, mode=PERIODIC, period=-1, freq=-1, callback=None, hard=False):
        if hard:
            raise ValueError("hard Timers are not implemented")  # the ESP32 port's answer
        rig = _rig()
        rig.tick()
        t = self._t
        if freq > 0:
            period = 1000 // freq
        t.period_ms = max(period, 1)
        t.periodic = mode == Timer.PERIODIC
        t.callback = callback
        t.owner = self
        t.due_ms = rig.clock.ms + t.period_ms
        t.active = True

    def deinit(self):
        self._t.active = False


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        self.pin = pin

    def atten(self, value):
        self.attenuation = value

    def read_uv(self):
        """Microvolts at the pin: the test's battery curve at this time."""
        rig = _rig()
        uv = 1_900_000
        for t_ms, value in rig.opts.get("battery_uv", ()):
            if t_ms <= rig.clock.ms:
                uv = value
        return uv


class WDT:
    def __init__(self, id=0, timeout=5000):
        rig = _rig()
        rig.wdt_timeout_ms = timeout
        rig.wdt_fed_ms = rig.clock.ms

    def feed(self):
        rig = _rig()
        rig.tick()
        rig.wdt_fed_ms = rig.clock.ms


def unique_id():
    """The chip's base MAC (eFuse); its Bluetooth address is this + 2 (ESP-IDF)."""
    return bytes(_rig().opts.get("base_mac", [0x24, 0x0A, 0xC4, 0x51, 0xA0, 0x00]))


def reset():
    _rig().reset(HARD_RESET, "machine.reset()")


def soft_reset():
    _rig().reset(SOFT_RESET, "machine.soft_reset()")


def reset_cause():
    return _rig().opts.get("reset_cause", PWRON_RESET)


def freq(hz=None):
    return 240_000_000


def idle():
    _rig().tick()


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
