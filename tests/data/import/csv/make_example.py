"""Writes phone_waist_100hz.csv, the generic CSV example (tests/test_import.py; docs/import.md):
a simulated run (strideclip.sim, seed 25: 5 s standing, 10 s walking, 25 s running at 3.3 m/s,
5 s standing) as a phone in a waist belt at the back would log it with a generic sensor-logger
app: 100 Hz, time in ms on the phone's own clock, acceleration in m/s^2 (gravity included),
angular rate in rad/s, the phone upright with its screen facing backwards (its x to the runner's
right, y up, z out of the back: ``--axes x=right,y=up,z=back``). Made by us, from the simulator:
no licence beyond the repository's. Run from the repository root to regenerate it:

    .venv/bin/python tests/data/import/csv/make_example.py
"""
from pathlib import Path

import numpy as np

from strideclip.imports.counts import resample
from strideclip.sim import Scenario, Segment, Sensor, simulate

OUT = Path(__file__).with_name("phone_waist_100hz.csv")
G_MPS2 = 9.80665
PHONE_RATE_HZ = 100
PHONE_CLOCK_START_MS = 4_183_920  # the phone's uptime when the logger started


def example() -> str:
    run = simulate(Scenario((Segment("stand", 5), Segment("walk", 10, speed_mps=1.4), Segment("run", 25, speed_mps=3.3),
                             Segment("stand", 5)), sensor=Sensor(rate_hz=208), seed=25))
    accel_g = run.counts[:, :3].astype(float) * run.hello.accel_ug_per_lsb / 1e6
    gyro_dps = run.counts[:, 3:].astype(float) * run.hello.gyro_mdps_per_lsb_q8 / 256 / 1000
    accel_g, gyro_dps = resample(accel_g, run.rate_hz, PHONE_RATE_HZ), resample(gyro_dps, run.rate_hz, PHONE_RATE_HZ)
    # the clip's axes (x up, y left, z back) as the phone's (x right, y up, z back)
    to_phone = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    accel_mps2, gyro_rads = accel_g @ to_phone.T * G_MPS2, np.radians(gyro_dps @ to_phone.T)
    t_ms = PHONE_CLOCK_START_MS + np.arange(len(accel_g)) * 1000 // PHONE_RATE_HZ
    lines = ["time_ms,accX,accY,accZ,gyrX,gyrY,gyrZ"]
    lines += [f"{t},{a[0]:.4f},{a[1]:.4f},{a[2]:.4f},{g[0]:.5f},{g[1]:.5f},{g[2]:.5f}"
              for t, a, g in zip(t_ms.tolist(), accel_mps2, gyro_rads)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.write_text(example())
    print(f"wrote {OUT}")
