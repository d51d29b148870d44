# Runs under the MicroPython unix port: micropython mp_detector_cost.py N SHARED_DIR. Feeds N samples of a running-like
# signal through clipcore.steps in FIFO-sized batches. bench_clip_cost.py runs it under
# callgrind at two values of N; the difference per sample is the detector's cost per sample.
import array
import sys

sys.path.insert(0, sys.argv[2])  # shared/, holding clipcore
from clipcore import steps as S  # noqa: E402

N = int(sys.argv[1])
BATCH = 16  # samples per call, as the firmware reads the IMU FIFO
det = S.StepDetector(208, 488, 8)
period = 74  # ~170 steps/min at 208 Hz
buf = array.array("h", [0] * (6 * 2 * period))
for i in range(2 * period):  # two steps, repeated: flight ~0 g, landing 3 g, stance ~2 g
    t = i % period
    buf[6 * i + 2] = 6000 if t < 6 else (4000 if t < 45 else 200)
    buf[6 * i] = 300
    buf[6 * i + 3] = (i * 37) % 400 - 200
    buf[6 * i + 5] = 150 if i < period else -150
n_buf = 2 * period


def run(n):
    done = 0
    steps = 0
    pos = 0
    while done < n:
        take = BATCH
        if pos + take > n_buf:
            take = n_buf - pos
        steps += det.feed(buf, pos, take)
        used = det.consumed
        done += used
        pos += used
        if pos >= n_buf:
            pos = 0
    return steps


print(run(N))
