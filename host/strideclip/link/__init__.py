"""The links a clip's packets arrive on: one ``Transport`` protocol (transport.py) for BLE (ble.py),
USB serial (serial.py) and a log or a simulated run played back (playback.py), and the sample
clock that maps the clip's sample index onto the host's time (clock.py)."""
