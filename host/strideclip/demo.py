"""``strideclip demo``: the product's main job on an embedded default.

Until the simulator exists (issue #3) this streams a short synthetic 6-axis signal through the
real clip-side encoder (clipcore.protocol.SampleBatcher), frames it as the clip's USB serial
would, then deframes and decodes it on the host and reports what arrived.
"""
from __future__ import annotations

import math

import click
import numpy as np

from clipcore import protocol as P
from strideclip.packets import decode_packet, samples_array

RATE_HZ = 208
SECONDS = 10
CADENCE_SPM = 170


def synthetic_counts(rate_hz: int, seconds: int, cadence_spm: int) -> np.ndarray:
    """A plain periodic signal in raw counts (±16 g, 2048 counts/g): not a model of running."""
    t_s = np.arange(rate_hz * seconds) / rate_hz
    step_hz = cadence_spm / 60
    vertical_g = 1 + 1.2 * np.maximum(0, np.sin(2 * math.pi * step_hz * t_s)) ** 3 - 0.4
    counts = np.zeros((len(t_s), 6), dtype=np.int16)
    counts[:, 2] = np.round(vertical_g * 2048).astype(np.int16)
    counts[:, 5] = np.round(20 * np.sin(math.pi * step_hz * t_s) * 16.4).astype(np.int16)
    return counts


def run_demo() -> None:
    counts = synthetic_counts(RATE_HZ, SECONDS, CADENCE_SPM)
    batcher = P.SampleBatcher(P.max_samples_for_mtu(247))
    stream = bytearray()
    for row in counts.tolist():
        if batcher.add(*row):
            stream += P.frame(batcher.packet())
            batcher.next_packet()
    if batcher.count:
        stream += P.frame(batcher.packet())

    deframer = P.Deframer()
    deframer.feed(bytes(stream))
    received = []
    while (pkt := deframer.next_packet()) is not None:
        msg = decode_packet(pkt)
        received.append(samples_array(msg))
    decoded = np.concatenate(received)
    click.echo("StrideClip demo (interim: the simulated runner arrives with issue #3)")
    click.echo(f"  encoded {len(counts)} samples at {RATE_HZ} Hz into {deframer.frames} frames, {len(stream)} bytes")
    click.echo(f"  decoded {len(decoded)} samples, identical to what was sent: {np.array_equal(decoded, counts)}")
    click.echo(f"  dropped bytes {deframer.dropped_bytes}, bad frames {deframer.bad_frames}")
