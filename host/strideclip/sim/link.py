"""The radio link as the host sees it: batches into SAMPLES packets, loses some, delays the rest.

Losses come in bursts (a Gilbert-style model: a burst starts with ``drop_prob`` per packet and
lasts a geometric number of packets). Receive times follow the clip's crystal, which runs
``clock_ppm`` fast or slow against the host, plus a positive latency with jitter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strideclip.sim.scenario import Link
from strideclip.stream.packets import encode_samples


@dataclass
class LinkOutput:
    packets: list  # (t_rx_ms, packet bytes) as the host receives them, in order
    dropped: list  # [start, end) sample ranges lost on the link
    sent_packets: int


def transmit(counts: np.ndarray, rate_hz: int, link: Link, rng: np.random.Generator,
             *, t0_ms: float = 0.0) -> LinkOutput:
    spp = link.samples_per_packet
    n_packets = (len(counts) + spp - 1) // spp
    lost = np.zeros(n_packets, dtype=bool)
    k = 0
    while k < n_packets:
        if rng.random() < link.drop_prob:
            burst = int(rng.geometric(1.0 / max(link.drop_burst_mean, 1.0)))
            lost[k : k + burst] = True
            k += burst
        k += 1
    out, dropped = [], []
    scale = 1 + link.clock_ppm * 1e-6
    for p in range(n_packets):
        first = p * spp
        block = counts[first : first + spp]
        if lost[p]:
            if dropped and dropped[-1][1] == first:
                dropped[-1][1] = first + len(block)
            else:
                dropped.append([first, first + len(block)])
            continue
        ready_s = (first + len(block)) / rate_hz * scale
        latency_ms = max(2.0, link.latency_ms + link.latency_jitter_ms * rng.standard_normal())
        out.append((int(t0_ms + ready_s * 1000 + latency_ms), encode_samples(p, first, block)))
    # Radio delivery is in order; keep receive times monotonic as a real stack does.
    t_prev = 0
    for i, (t, pkt) in enumerate(out):
        t_prev = max(t_prev, t)
        out[i] = (t_prev, pkt)
    return LinkOutput(out, dropped, n_packets)
