"""The battery: its voltage through a 1:2 divider on an ADC pin, as a charge estimate.

A single-cell LiPo at rest: 4.20 V full, 3.30 V empty for our purposes (the regulator drops out
below), with the usual flat middle. The estimate is coarse (a runner needs "charge it tonight",
not a percent); it is smoothed so a step's current spike does not move it.
"""
import time

from clipcore import wire as P
from machine import ADC, Pin

# (millivolts, percent), from empty to full: a typical LiPo discharge curve at low current.
_CURVE_MV = (3300, 3500, 3600, 3700, 3750, 3800, 3900, 4000, 4100, 4200)
_CURVE_PCT = (0, 5, 10, 20, 35, 50, 65, 80, 92, 100)
LOW_PCT = 15
REPORT_S = 60  # how often the battery is read and reported


def percent_from_mv(mv):
    if mv <= _CURVE_MV[0]:
        return 0
    for i in range(1, len(_CURVE_MV)):
        if mv <= _CURVE_MV[i]:
            lo, hi = _CURVE_MV[i - 1], _CURVE_MV[i]
            return _CURVE_PCT[i - 1] + (_CURVE_PCT[i] - _CURVE_PCT[i - 1]) * (mv - lo) // (hi - lo)
    return 100


class Battery:
    def __init__(self, pin):
        self.adc = ADC(Pin(pin))
        self.adc.atten(ADC.ATTN_11DB)  # full range ~0-3.3 V at the pin
        self.mv = 0

    def read_pct(self):
        """Charge estimate in percent (smoothed: each reading moves it a quarter of the way)."""
        mv = 2 * self.adc.read_uv() // 1000  # the divider halves the cell voltage
        self.mv = mv if self.mv == 0 else self.mv + (mv - self.mv) // 4
        return percent_from_mv(self.mv)

    def report(self, app, now):
        """Every REPORT_S: the charge in the app's HELLO, sent again, and on the Battery service; a
        STATUS battery, or low_battery once when the charge falls under LOW_PCT."""
        pct = self.read_pct()
        was = app.battery_pct
        app.battery_pct = pct
        app.next_battery_ms = time.ticks_add(now, REPORT_S * 1000)
        app.hello[9] = pct  # the HELLO a host gets on (re)connecting
        # ... and into the stream and the flash log: a reader whose one HELLO was damaged
        # recovers the session from the next copy
        app.send_packet(app.small, app.publish_hello())
        if hasattr(app.link, "battery"):
            app.link.battery(pct)
        low = pct < LOW_PCT and (was == P.BATTERY_UNKNOWN or was >= LOW_PCT)
        app._status(P.STATUS_LOW_BATTERY if low else P.STATUS_BATTERY, pct)
