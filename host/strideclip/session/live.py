"""Live sessions: each clip its own session log, pipeline, clock and link figures, several at once.

``LiveClip`` wires one BLE transport to the recorder: every notification goes to the session
log first (crash-safe, from the first frame) and then through the pipeline. A sample gap - a
lost packet, or everything missed while the link was down - is asked back from the clip with
BACKFILL for exactly its range as soon as the next live packet shows it; what comes back is
merged by the decoder and the log says which gaps were filled (host events ``gap``,
``backfill_requested``, ``gap_filled``, ``backfill_failed``, and ``link`` for connects and losses).

Any transport works (strideclip.link: BLE, USB serial, a log or the simulator played
back); a ``ClipSource`` says which and how to open it. ``run_live`` runs several clips in one
event loop; a clip that fails (speaks garbage, vanishes) is reported and closed, and the others
keep going.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clipcore import protocol as P
from strideclip.coaching import cueconfig
from strideclip.coaching.cue import Cue
from strideclip.errors import CommandError, CommandTimeout, TransportError
from strideclip.link.ble import ClipAdvert
from strideclip.link.clock import SampleClock
from strideclip.link.sources import ClipSource, ble_source
from strideclip.link.transport import Transport
from strideclip.session.pipeline import HOLD_S, Session
from strideclip.session.recorder import backfill_ranges, finish_recording, record_packet
from strideclip.stream.decode import SampleBlock
from strideclip.stream.logwriter import SessionLogWriter

if TYPE_CHECKING:  # (bleak is imported when a clip is connected)
    from bleak.backends.client import BaseBleakClient

CLIP_RING_S = 60  # a clip's backfill store holds about its last minute (firmware/clipfw/backfill.py)
CLOCK_LOG_S = 60  # how often the sample clock's mapping goes into the log
PING_S = 10.0  # a HELLO request now and then: the command round trip is the link's latency
GARBAGE_MIN_PACKETS = 40  # after this many packets, a clip whose packets are nearly all bad ...
GARBAGE_BAD_FRACTION = 0.9  # ... is not a StrideClip: it is dropped with an error
COACH_BUZZ_PATTERN, COACH_BUZZ_MS, COACH_BUZZ_PCT = 1, 120, 100  # a coach's buzz: a firm double pulse


@dataclass
class LinkFigures:
    connected: bool = False
    connects: int = 0
    losses: int = 0
    rssi_dbm: int | None = None
    rtt_ms: float | None = None
    delays_ms: deque = field(default_factory=lambda: deque(maxlen=200))  # receive - clock time, live packets
    backfill_requests: int = 0
    backfill_failures: int = 0
    error: str | None = None

    def delay_ms_p95(self) -> float | None:
        return float(np.percentile(self.delays_ms, 95)) if self.delays_ms else None


class LiveClip:
    def __init__(self, source: ClipSource, log_path: Path, *, athlete: str | None = None,
                 cue_settings: dict | None = None, fatigue_prior: dict | None = None):
        self.source = source
        self.name = source.name
        self.cue_settings = dict(cue_settings or {})
        self.link = LinkFigures(rssi_dbm=source.rssi_dbm)
        self.clock: SampleClock | None = None
        # the link first: a port that is not there leaves no empty log behind
        self.transport: Transport = source.open(on_packet=self._on_packet, on_link=self._on_link, on_sent=self._on_sent)
        self.session = Session(cue_settings=self.cue_settings, fatigue_prior=fatigue_prior,
                               gap_wait_s=HOLD_S if self.transport.takes_commands else 0)  # no backfill: no wait
        self.log = SessionLogWriter(log_path, header={"athlete": athlete or source.name, "source": source.kind,
                                                       "clip_name": source.name, "address": source.address})
        self.log_path = Path(log_path)
        self.takes_commands = self.transport.takes_commands
        self.failed = asyncio.Event()
        self.ended = False  # run() has returned: the log is closed, no command reaches the clip
        self.last_packet_s = time.monotonic()
        self.last_packet_wall_s: float | None = None  # time.time() of the newest packet (the dashboard's latency)
        self._tasks: set = set()
        self._link_epoch = 0  # links lost or handed over so far
        self._asked: dict[int, int] = {}  # gap start -> the link epoch it was last asked on
        self._next_clock_log_idx = 0
        # (packet seq, received s, processed s, steps) for the recent packets that completed steps:
        # the notify -> step latency the bench reports
        self.step_times: deque = deque(maxlen=20000)

    # -- packets ------------------------------------------------------------------------------
    def _on_sent(self, pkt: bytes) -> None:
        self.log.sent_packet(pkt)

    def _on_packet(self, pkt: bytes, t_s: float) -> None:
        self.last_packet_s = t_s
        self.last_packet_wall_s = time.time()
        n_steps, n_cues = self.session.step_count, len(self.session.cues)
        outputs = record_packet(self.log, self.session, pkt, self.log.now_ms())
        for cue in self.session.cues[n_cues:]:
            if cue.source == "host" and not cue.sent and self.takes_commands:  # the host decided: the clip plays it
                self._spawn(self._deliver_cue(cue))
        for out in outputs:
            if isinstance(out, SampleBlock):
                if out.backfill:
                    self.log.host_event("gap_filled", start_idx=out.first_idx,
                                        end_idx=out.first_idx + len(out.counts))
                elif self.session.rate_hz:
                    self._clock_sample(out.first_idx + len(out.counts) - 1, t_s)
        for first, count in backfill_ranges(outputs) if self.takes_commands else ():
            self._spawn(self._backfill(first, count))
        if self.session.step_count > n_steps:  # when the steps this packet completed were known
            seq = next((o.seq for o in outputs if isinstance(o, SampleBlock) and not o.backfill), -1)
            self.step_times.append((seq, t_s, time.monotonic(), self.session.step_count - n_steps))
        self._check_garbage()

    def _clock_sample(self, idx: int, t_s: float) -> None:
        if self.clock is None or self.clock.rate_hz != self.session.rate_hz:
            self.clock = SampleClock(self.session.rate_hz)
        self.clock.add(idx, t_s)
        self.link.delays_ms.append((t_s - self.clock.host_time_s(idx)) * 1000)
        if idx >= self._next_clock_log_idx:  # the mapping, once a minute: sample index -> log time
            self._next_clock_log_idx = idx + CLOCK_LOG_S * self.session.rate_hz
            at_ms = (self.clock.host_time_s(idx) - self.log.t0_monotonic_s) * 1000
            self.log.host_event("clock", sample_idx=idx, log_ms=round(at_ms, 1),
                                drift_ppm=round(self.clock.drift_ppm, 1))

    def _check_garbage(self) -> None:
        stats = self.session.decoder.stats
        seen = stats.packets + stats.bad_packets
        if stats.samples:  # it has streamed: a StrideClip, whatever comes next is recorded, counted and skipped
            return
        if seen >= GARBAGE_MIN_PACKETS and stats.bad_packets >= GARBAGE_BAD_FRACTION * seen and not self.failed.is_set():
            first = self.session.bad_packet_errors[0] if self.session.bad_packet_errors else ""
            self._fail(f"{self.name} ({self.source.address}) {stats.bad_packets} of {seen} packets did not "
                       f"decode ({first}): not a StrideClip")

    async def _backfill(self, first: int, count: int, busy_retries: int = 5) -> None:
        """Ask the clip for exactly the missing range; if it no longer holds all of it, for what
        it has; if it is busy with other gaps (it holds a few requests at once), again later."""
        self._asked[first] = self._link_epoch
        self.link.backfill_requests += 1
        self.log.host_event("backfill_requested", start_idx=first, end_idx=first + count)
        try:
            await self.transport.command(P.OP_BACKFILL, (first, count), timeout_s=10.0)
        except TransportError as e:
            code = e.code if isinstance(e, CommandError) else None
            oldest = e.detail if isinstance(e, CommandError) else 0
            retry = code == P.RESULT_BUSY or code is None and (not isinstance(e, CommandTimeout) or self.transport.connected)
            if retry and busy_retries:
                # busy with other gaps, the link not up yet (a gap seen as it reconnects), or no answer
                # from a link that is up (a broker's clip answering through another gateway now): again later
                await asyncio.sleep(2.0)
                await self._backfill(first, count, busy_retries - 1)
                return
            if code == P.RESULT_UNAVAILABLE and first < oldest < first + count:
                self.log.host_event("backfill_failed", start_idx=first, end_idx=oldest, error="no longer on the clip")
                await self._backfill(oldest, first + count - oldest)
                return
            self.link.backfill_failures += 1
            self.log.host_event("backfill_failed", start_idx=first, end_idx=first + count, error=str(e))

    async def _send_cue_settings(self) -> None:
        for key, value in self.cue_settings.items():
            try:
                await self.transport.command(P.OP_SET_CONFIG, (key, value))
            except TransportError as e:
                self.log.host_event("config_failed", key=key, value=value, error=str(e))

    async def _deliver_cue(self, cue: Cue) -> None:
        """The metronome on the clip, at the cue's tempo for its duration; logged either way."""
        try:
            await self.transport.command(P.OP_METRONOME_START, (cue.tempo_spm, cue.duration_s))
        except TransportError as e:
            cue.error = str(e)
            self.log.host_event("cue_failed", **cue.as_dict())
            return
        cue.sent = True
        self.log.host_event("cue_sent", **cue.as_dict())

    async def coach_cue(self, kind: str, *, tempo_spm: int | None = None, duration_s: int = 30) -> Cue:
        """A cue the coach sends (the dashboard): "metronome" (at ``tempo_spm``, else the cue
        settings' target, else the runner's cadence now), "buzz" or "stop". It is in the session's
        cue log once asked for; ``sent`` once the clip acknowledged it (logged ``cue_sent``), else
        ``error`` says why not (logged ``cue_failed`` when the clip refused or was unreachable)."""
        s = self.session
        tempo = None
        if kind == "metronome":
            now_spm = s.cadence_spm()
            tempo = int(tempo_spm or cueconfig.target_spm(self.cue_settings) or (now_spm and round(now_spm)) or 170)
            op, args, played = P.OP_METRONOME_START, (tempo, duration_s), "metronome_start"
        elif kind == "buzz":
            op, args, played = P.OP_BUZZ, (COACH_BUZZ_PATTERN, 1, COACH_BUZZ_MS, COACH_BUZZ_PCT), "buzz"
        elif kind == "stop":
            op, args, played = P.OP_METRONOME_STOP, (), "metronome_stop"
        else:
            raise ValueError(f"unknown cue {kind!r}: metronome, buzz or stop")
        cue = Cue(t_s=s.now_s, reason="manual", played=played, source="coach", tempo_spm=tempo,  # as the clip's cues
                  duration_s=duration_s if kind == "metronome" else None)
        if not self.takes_commands:
            cue.error = f"{self.name} is a playback: cues do not reach a clip"
            return cue
        if self.ended:
            cue.error = f"{self.name}'s run has ended"
            return cue
        s.cues.coach(cue)  # before the command: the clip's echo of it may come before its answer
        try:
            await self.transport.command(op, args)
        except TransportError as e:
            cue.error = str(e)
            self.log.host_event("cue_failed", **cue.as_dict())
            return cue
        cue.sent = True
        self.log.host_event("cue_sent", **cue.as_dict())
        return cue

    # -- link ---------------------------------------------------------------------------------
    def _on_link(self, event: str, **fields) -> None:
        if event in ("lost", "handover"):
            self._link_epoch += 1  # what was asked before may not all come
        if event in ("connected", "handover") and self.takes_commands:
            self._ask_open_gaps()
        if event == "connected":
            self.link.connected = True
            self.link.connects += 1
            if self.cue_settings and self.takes_commands:  # the clip coaches alone with the same settings
                self._spawn(self._send_cue_settings())
        elif event == "lost":
            self.link.connected = False
            self.link.losses += 1
        self.log.host_event("link", state=event, **fields)

    def _ask_open_gaps(self) -> None:
        """A link (back) up: the gaps still open that the clip may still hold, asked again (a
        backfill cut short when the link dropped, or one asked of a gateway that had lost the clip)."""
        d, rate = self.session.decoder, self.session.rate_hz
        if d.next_idx is None or not rate:
            return
        oldest_held = d.next_idx - CLIP_RING_S * rate
        for start, end in list(d.open_gaps):
            if end > oldest_held and self._asked.get(start) != self._link_epoch:  # (not asked on this link yet)
                self._spawn(self._backfill(max(start, oldest_held), end - max(start, oldest_held)))

    def _fail(self, error: str) -> None:
        self.link.error = error
        self.log.host_event("error", error=error)
        self.failed.set()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ping(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), PING_S)
            except asyncio.TimeoutError:
                pass
            if self.transport.connected and self.takes_commands and not stop.is_set():
                try:
                    await self.transport.command(P.OP_HELLO, ())
                    self.link.rtt_ms = self.transport.rtt_ms
                except TransportError as e:
                    self.log.host_event("link", state="warning", error=str(e))

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the clip connected and recorded until ``stop`` is set or the clip fails."""
        mine = asyncio.Event()
        relay = asyncio.ensure_future(_first_of(stop, self.failed, then=mine))
        ping = asyncio.ensure_future(self._ping(mine))
        try:
            await self.transport.run(mine)
        except TransportError as e:  # the link is gone for good (a serial port pulled out)
            self._fail(str(e))
        finally:
            mine.set()
            relay.cancel()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            try:  # a second Ctrl-C cancels these waits too (and the tasks): the log is closed all the same
                await asyncio.gather(ping, *tasks, return_exceptions=True)
            finally:
                finish_recording(self.log, self.session, self.log.now_ms())  # what waited for backfill is analysed
                self.log.host_event("link_stats", **self.transport.stats())
                self.log.close()
                self.ended = True

    def values(self) -> dict:
        """The live view of this clip: metrics, cues and link quality."""
        v = self.session.live_values()
        v.update(name=self.name, connected=self.link.connected, reconnects=max(0, self.link.connects - 1),
                 rssi_dbm=getattr(self.transport, "rssi_dbm", None) or self.link.rssi_dbm,  # a gateway's, else the scan's
                 rtt_ms=self.transport.rtt_ms, delay_ms_p95=self.link.delay_ms_p95(),
                 drift_ppm=self.clock.drift_ppm if self.clock else None, error=self.link.error,
                 battery_pct=self._battery(),
                 gateway=getattr(self.transport, "gateway", None))  # the gateway holding a clip over a broker
        return v

    def _battery(self) -> int | None:
        hello = self.session.decoder.hello
        if hello is not None and hello.battery_pct <= 100:
            return hello.battery_pct
        return self.source.battery_pct


async def _first_of(*events: asyncio.Event, then: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    then.set()


def _unique(paths: list[Path]) -> list[Path]:
    """The paths, each made unique (``-2``, ``-3`` …) among them and among the files there:
    two clips of one name started in the same second each get their own log."""
    out: list[Path] = []
    for p in paths:
        q, k = p, 1
        while q in out or q.exists():
            k += 1
            q = p.with_name(f"{p.stem}-{k}{p.suffix}")
        out.append(q)
    return out


def log_name(name: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "clip"
    return f"{safe}-{stamp}.sclog"


def open_clips(sources: list[ClipSource | ClipAdvert], out_dir: Path, *, backend: type[BaseBleakClient] | None = None,
               log_paths: list[Path] | None = None, athlete: str | None = None, cue_settings: dict | None = None,
               prior_for: Callable[[str], dict | None] | None = None) -> list[LiveClip]:
    """A LiveClip per source (a ClipSource, or a ClipAdvert from a BLE scan), each with its own
    log (``log_paths``, or one named after the clip in ``out_dir``). Links open here: a missing
    serial port raises TransportError before any log is made. ``prior_for(athlete)`` gives an
    athlete's usual form for the fatigue state (strideclip.analysis.fatigue), e.g. from the history."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [ble_source(s, backend) if isinstance(s, ClipAdvert) else s for s in sources]
    paths = log_paths or _unique([out_dir / log_name(s.name) for s in sources])
    return [LiveClip(s, p, athlete=athlete, cue_settings=cue_settings,
                     fatigue_prior=prior_for(athlete or s.name) if prior_for else None) for s, p in zip(sources, paths)]


async def run_clips(clips: list[LiveClip], *, seconds: float | None = None, idle_s: float | None = None,
                    on_update: Callable[[list[LiveClip]], None] | None = None, update_s: float = 0.5,
                    stop: asyncio.Event | None = None) -> list[LiveClip]:
    """Record the clips at once until ``seconds`` pass, nothing arrived from any of them for
    ``idle_s``, every link ended, or ``stop`` is set. ``on_update(clips)`` every ``update_s``.
    However it ends - cancelled too (a second Ctrl-C) - every clip's run ends and closes its log."""
    stop = stop or asyncio.Event()
    runs = [asyncio.ensure_future(c.run(stop)) for c in clips]
    started = time.monotonic()
    try:
        while not stop.is_set() and not all(r.done() for r in runs):
            now = time.monotonic()
            if seconds is not None and now - started >= seconds:
                break
            if idle_s is not None and all(now - c.last_packet_s >= idle_s for c in clips):
                break
            if on_update:
                on_update(clips)
            await asyncio.wait(runs, timeout=update_s)
    finally:
        stop.set()
        ended = await asyncio.gather(*runs, return_exceptions=True)
        for clip, result in zip(clips, ended):  # a clip that crashed is reported; the others went on
            if isinstance(result, Exception) and not clip.link.error:
                clip.link.error = f"{clip.name}: stopped by an internal error ({result!r})"
    if on_update:
        on_update(clips)
    return clips


async def run_live(sources: list[ClipSource | ClipAdvert], out_dir: Path, *,
                   backend: type[BaseBleakClient] | None = None, log_paths: list[Path] | None = None,
                   athlete: str | None = None, cue_settings: dict | None = None, **run_kw: Any) -> list[LiveClip]:
    """open_clips, then run_clips."""
    clips = open_clips(sources, out_dir, backend=backend, log_paths=log_paths, athlete=athlete,
                       cue_settings=cue_settings)
    return await run_clips(clips, **run_kw)
