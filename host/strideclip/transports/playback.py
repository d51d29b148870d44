"""A recorded session log, or a simulated run, played back as if a clip were sending it now:
the packets at ``speed`` times their original pace, through the same recorder and pipeline as
a live clip. For developers and demos; it takes no commands (there is no clip to answer)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from clipcore import logrecord as L
from strideclip.packets import encode_packet
from strideclip.sclog import iter_records
from strideclip.transports import TransportError


class PlaybackTransport:
    takes_commands = False

    def __init__(self, name: str, packets: Iterable[tuple[int, bytes]], *, speed: float,
                 on_packet: Callable[[bytes, float], None], on_link: Callable[..., None] | None = None,
                 on_sent: Callable[[bytes], None] | None = None):
        self.name = name
        self.packets = packets
        self.speed = speed
        self.on_packet = on_packet
        self.on_link = on_link or (lambda event, **fields: None)
        self.connected = False
        self.rtt_ms = None
        self.played = 0

    @classmethod
    def from_log(cls, path, **kw) -> PlaybackTransport:
        def clip_packets():
            for rec in iter_records(path):
                if rec.kind == L.REC_CLIP:
                    yield rec.t_ms, bytes(rec.body)

        return cls(str(path), clip_packets(), **kw)

    @classmethod
    def from_sim(cls, name: str, run, **kw) -> PlaybackTransport:
        return cls(name, [(0, encode_packet(run.hello)), *run.link.packets], **kw)

    def stats(self) -> dict:
        return {"played_packets": self.played}

    async def run(self, stop: asyncio.Event) -> None:
        self.connected = True
        self.on_link("connected", playback=self.name, speed=self.speed)
        started = time.monotonic()
        for t_ms, pkt in self.packets:
            wait_s = started + t_ms / 1000 / self.speed - time.monotonic()
            if wait_s > 0:
                try:
                    await asyncio.wait_for(stop.wait(), wait_s)
                except asyncio.TimeoutError:
                    pass
            if stop.is_set():
                break
            self.played += 1
            self.on_packet(pkt, time.monotonic())
        self.connected = False
        self.on_link("ended", packets=self.played)

    async def command(self, opcode: int, args: tuple, *, timeout_s: float | None = None) -> int:
        raise TransportError(f"{self.name} is a playback: commands do not reach a clip", port=self.name)
