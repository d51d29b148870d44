"""A recorded session log, or a simulated run, played back as if a clip were sending it now:
the packets at ``speed`` times their original pace, through the same recorder and pipeline as
a live clip. For developers and demos. A log takes no commands (there is no clip to answer);
``SimulatedClipTransport`` plays a simulated run as a clip that answers commands the way the
firmware does (clipfw.app): it acknowledges cues and settings, and serves backfill from the
run's samples, so the dashboard and live views can be tried whole with no clip."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from clipcore import cues as cue_policy
from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip.errors import TransportError
from strideclip.stream.packets import encode_packet, encode_samples
from strideclip.stream.sclog import iter_records


class ClipRun(Protocol):
    """What a playback needs of a simulated run (strideclip.sim.SimulatedRun; the simulator is a
    sibling stage, so it is described here rather than imported)."""

    counts: np.ndarray  # (n, 6) raw counts
    hello: P.Hello

    @property
    def rate_hz(self) -> int: ...

    def stream(self) -> list[tuple[int, bytes]]: ...


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
    def from_log(cls, path: str | Path, **kw: Any) -> PlaybackTransport:
        def clip_packets() -> Iterator[tuple[int, bytes]]:
            for rec in iter_records(path):
                if rec.kind == L.REC_CLIP:
                    yield rec.t_ms, bytes(rec.body)

        return cls(str(path), clip_packets(), **kw)

    @classmethod
    def from_sim(cls, name: str, run: ClipRun, **kw: Any) -> PlaybackTransport:
        return cls(name, run.stream(), **kw)

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

    async def send_packet(self, pkt: bytes) -> None:
        raise TransportError(f"{self.name} is a playback: commands do not reach a clip", port=self.name)


class SimulatedClipTransport(PlaybackTransport):
    """A simulated run played as a clip that answers commands. ``cues_played`` keeps what the host
    asked it to play: (opcode name, args, sample index when it arrived)."""

    takes_commands = True

    def __init__(self, name: str, run: ClipRun, *, on_sent: Callable[[bytes], None] | None = None, **kw: Any):
        super().__init__(name, run.stream(), **kw)
        self.sim = run  # (not .run: that is the coroutine)
        self.on_sent = on_sent or (lambda pkt: None)
        self.cue_cfg = cue_policy.make_config(run.rate_hz)
        self.cues_played: list = []
        self.rtt_ms = 0.0
        self._cmd_id = 0
        self._bf_seq = 0
        self._started = None

    async def run(self, stop: asyncio.Event) -> None:
        self._started = time.monotonic()
        await super().run(stop)

    def _sample_now(self) -> int:
        if self._started is None:
            return 0
        return min(len(self.sim.counts), int((time.monotonic() - self._started) * self.speed * self.sim.rate_hz))

    def behind_s(self, newest_idx: int | None) -> float | None:
        """How far the host's newest sample is behind the one this clip takes now, in seconds of
        wall time (the packet's batching, the simulated link's latency, the host's lag): the
        sample -> host delay, which the dashboard shows for a clip with no radio to time."""
        if self._started is None or newest_idx is None:
            return None
        return max(0, self._sample_now() - 1 - newest_idx) / self.sim.rate_hz / self.speed

    async def command(self, opcode: int, args: tuple, *, timeout_s: float | None = None) -> int:
        if not self.connected:
            raise TransportError(f"{self.name} is not connected", port=self.name)
        self._cmd_id = (self._cmd_id + 1) & 0xFF
        buf = bytearray(64)
        try:
            self.on_sent(bytes(buf[:P.pack_command(buf, self._cmd_id, opcode, args)]))
        except P.ProtocolError as e:  # what a real clip would refuse with a RESULT
            raise TransportError(f"{self.name}: {e}", port=self.name) from e
        await asyncio.sleep(0)  # an answer comes later than the question, as over the air
        code, detail, after = self._act(opcode, args)
        for pkt in after:
            self.on_packet(pkt, time.monotonic())
        if code == P.RESULT_UNKNOWN_OPCODE:
            raise TransportError(f"{self.name}: the simulated clip does not answer "
                                 f"{P.OPCODE_NAMES.get(opcode, opcode)}", port=self.name)
        if code != P.RESULT_OK:
            raise TransportError(f"{self.name}: setting {args[0]} = {args[1]} refused", port=self.name)
        return detail

    async def send_packet(self, pkt: bytes) -> None:
        """A command packet packed elsewhere (the coach's, through a gateway): answered as the
        firmware answers a control write (clipfw.app), its RESULT first as an ordinary packet."""
        if not self.connected:
            raise TransportError(f"{self.name} is not connected", port=self.name)
        pkt = bytes(pkt)
        self.on_sent(pkt)
        await asyncio.sleep(0)
        code, detail, after = P.command_result_code(pkt), 0, []
        if code == P.RESULT_OK:
            _, opcode, args = P.parse_command(pkt)
            code, detail, after = self._act(opcode, args)
        cmd_id, opcode = (pkt[1] if len(pkt) > 1 else 0), (pkt[2] if len(pkt) > 2 else 0)
        for out in [encode_packet(P.Result(cmd_id, opcode, code, detail)), *after]:
            self.on_packet(out, time.monotonic())

    def _act(self, opcode: int, args: tuple) -> tuple[int, int, list[bytes]]:
        """(result code, detail, the packets that follow the RESULT) for one valid command."""
        if opcode == P.OP_HELLO:
            return P.RESULT_OK, 0, [encode_packet(self.sim.hello)]
        if opcode in (P.OP_BUZZ, P.OP_METRONOME_START, P.OP_METRONOME_STOP):
            self.cues_played.append((P.OPCODE_NAMES.get(opcode, str(opcode)), tuple(args), self._sample_now()))
            return P.RESULT_OK, 0, []
        if opcode == P.OP_SET_CONFIG:
            code = cue_policy.set_config(self.cue_cfg, args[0], args[1])
            return code, args[1] if code == P.RESULT_OK else 0, []
        if opcode == P.OP_BACKFILL:
            first, count = args
            spp = self.sim.hello.samples_per_packet
            end = min(first + count, self._sample_now(), len(self.sim.counts))
            out = []
            for a in range(first, end, spp):
                self._bf_seq = (self._bf_seq + 1) & 0xFFFF
                out.append(encode_samples(self._bf_seq, a, self.sim.counts[a:min(a + spp, end)], backfill=True))
            return P.RESULT_OK, max(0, end - first), out
        return P.RESULT_UNKNOWN_OPCODE, 0, []
