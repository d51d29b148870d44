"""A gateway (issue #24, docs/team.md): a small computer by the track that follows the clips it
can reach and carries their packets to the coach through an MQTT broker.

Per clip it reaches (any ``ClipSource``: BLE, USB serial, a simulated clip that answers) it
writes its own session log first - the safety copy, every packet as it arrives, the commands it
wrote and the link's events - and publishes each packet with its receive time (UTC ms) and how
long it waited here to the clip's packet topic at QoS 1, and the clip's link figures (retained)
every ``LINK_EVERY_S`` and on a change. Its state topic says online (retained); its will says offline. It reads only its own
command topics and writes each command to its clip as the coach packed it; the clip's RESULT comes
back as an ordinary packet. It analyses nothing and asks no backfill: the coach does.

While the broker is away the packets wait in an outbox (``OUTBOX_S`` per clip, the oldest dropped
and counted beyond that) and go out in order once it is back; a batch not acknowledged is sent
again (the coach drops the repeats). Its log holds everything regardless. When it stops, it
carries no more live samples but answers the coach's last commands first, so a gap seen just
before the end is filled.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from clipcore import protocol as P
from strideclip.errors import TransportError
from strideclip.link import broker_topics as T
from strideclip.link.mqtt import BrokerUrl, MqttConnection, utc_ms
from strideclip.link.sources import ClipSource
from strideclip.session.live import _unique, log_name
from strideclip.session.recorder import log_packet
from strideclip.stream.logwriter import SessionLogWriter

log = logging.getLogger(__name__)

OUTBOX_S = 600.0  # per clip: what waits for the broker, at most this much (10 min), the oldest dropped after
OUTBOX_MAX_PACKETS = 30_000  # ... and at most this many (10 min of a 416 Hz clip is ~13 000)
BATCH = 64  # messages in flight at once: the broker's acknowledgements pipelined, in order per clip
LINK_EVERY_S = 2.0  # link figures and the gateway's state this often (and the figures at every change)
FLUSH_S = 10.0  # at the end: this long for the outbox to empty while the broker is there
STOP_WAIT_S = 5.0  # at the end: this long for the sender to stop once told
LAST_ASKS_S = (1.0, 5.0)  # at the end: the coach's last commands answered until none came for 1 s (5 s at most)


class ClipOutbox:
    """One clip's packets not yet acknowledged by the broker, oldest first, each numbered."""

    def __init__(self) -> None:
        self.queue: deque = deque()  # (enqueued time.monotonic(), topic, received UTC ms, packet)
        self.first = 0  # the number of queue[0]
        self.dropped = 0

    def put(self, topic: str, received_ms: int, pkt: bytes) -> None:
        now = time.monotonic()
        while self.queue and (len(self.queue) >= OUTBOX_MAX_PACKETS or now - self.queue[0][0] > OUTBOX_S):
            self.queue.popleft()  # the log keeps it: the broker has been away too long
            self.first += 1
            self.dropped += 1
        self.queue.append((now, topic, received_ms, pkt))

    def message(self, k: int, now: float) -> tuple[str, bytes]:
        """queue[k] as published now: its topic and payload, with how long it waited here."""
        enqueued, topic, received_ms, pkt = self.queue[k]
        return topic, T.pack_packet(received_ms, pkt, waited_ms=round((now - enqueued) * 1000))

    def done(self, upto: int) -> None:
        """Everything numbered below ``upto`` was acknowledged."""
        while self.queue and self.first < upto:
            self.queue.popleft()
            self.first += 1


class GatewayClip:
    """One clip this gateway follows: its transport, its log, what it published."""

    def __init__(self, gateway: Gateway, source: ClipSource, log_path: Path):
        self.gateway, self.source = gateway, source
        self.name = T.topic_name(source.name)
        self.outbox = ClipOutbox()
        self.connected = False
        self.packets = 0
        self.commands = 0
        self.error: str | None = None
        self.ended = False  # its run is over and its log closed
        self.transport = source.open(on_packet=self._on_packet, on_link=self._on_link, on_sent=self._on_sent)
        self.log = SessionLogWriter(log_path, header={"athlete": source.name, "source": source.kind,
                                                      "clip_name": source.name, "address": source.address,
                                                      "gateway": gateway.name})
        self.log_path = Path(log_path)

    def _on_packet(self, pkt: bytes, t_s: float) -> None:
        log_packet(self.log, pkt)  # the safety copy first
        if self.gateway.ending and pkt[0] & 0x0F == P.T_SAMPLES:
            return  # the stream carried has ended: only what the coach asks for still goes
        self.packets += 1
        self.outbox.put(T.packet_topic(self.gateway.name, self.name), utc_ms(), pkt)
        self.gateway.wake.set()

    def _on_link(self, event: str, **fields) -> None:
        self.log.host_event("link", state=event, **fields)
        if event in ("connected", "lost", "ended"):
            self.connected = event == "connected"
            self.gateway.link_changed(self)

    def _on_sent(self, pkt: bytes) -> None:
        self.commands += 1
        self.log.sent_packet(pkt)

    def figures(self) -> dict:
        """The link figures the coach shows beside the clip (its link topic)."""
        rtt = self.transport.rtt_ms
        return {"connected": self.connected, "rssi_dbm": self.source.rssi_dbm,
                "rtt_ms": None if rtt is None else round(rtt, 1), "packets": self.packets, "t_ms": utc_ms()}

    async def write(self, pkt: bytes) -> None:
        """A command from the coach to the clip, as it came (logged as sent by the transport)."""
        try:
            await self.transport.send_packet(pkt)
        except TransportError as e:
            if not self.ended:  # (a command that came after the clip's run: nothing to write it in)
                self.log.host_event("command_failed", error=str(e))

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.transport.run(stop)
        except TransportError as e:  # the link is gone for good (a serial port pulled out)
            self.error = str(e)
            self.log.host_event("error", error=str(e))
        finally:
            self.connected = False
            self.gateway.link_changed(self)
            self.log.host_event("link_stats", **self.transport.stats(), outbox_dropped=self.outbox.dropped)
            self.log.close()
            self.ended = True


class Gateway:
    """A gateway named ``name`` on the broker at ``url``: ``start`` (BrokerUnavailable if the broker
    cannot be reached or refuses it), ``follow`` clips, ``run`` until stopped, ``close``."""

    def __init__(self, name: str, url: BrokerUrl, out_dir: Path, *, password: str | None = None,
                 user: str | None = None, tls_context: ssl.SSLContext | None = None):
        self.name = T.check_name(name, "gateway name")
        self.out_dir = Path(out_dir)
        self.clips: dict[str, GatewayClip] = {}
        self._writes: set[asyncio.Task] = set()  # commands being written to clips
        self.runs: dict[str, asyncio.Future] = {}
        self.bad_commands = 0
        self.first_bad: str | None = None
        self.ending = False  # live samples are no longer carried; the coach's last commands still are
        self.last_command_s = 0.0  # time.monotonic() of the newest command from the coach
        self.wake = asyncio.Event()  # a packet waits in an outbox
        self._stop = asyncio.Event()
        self._link_due: set[str] = set()
        self._state_due = False
        self._running = False
        self.conn = MqttConnection(url, client_id=self.name, user=user, password=password,
                                   subscriptions=[T.gateway_subscription(self.name)], on_message=self._route,
                                   on_connect=self._announce, will=(T.state_topic(self.name), _state(False)),
                                   tls_context=tls_context)

    async def start(self) -> None:
        await self.conn.start()

    def follow(self, sources: list[ClipSource]) -> list[GatewayClip]:
        """A GatewayClip per source, each with its own new log in ``out_dir``, running at once if
        the gateway runs. A second clip of a name already followed is refused (TransportError)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        names = [T.topic_name(s.name) for s in sources]
        for n in names:
            if n in self.clips or names.count(n) > 1:
                raise TransportError(f"two clips named {n!r}: a gateway follows each name once", port=n)
        paths = _unique([self.out_dir / log_name(s.name) for s in sources])
        added = [GatewayClip(self, s, p) for s, p in zip(sources, paths)]
        for c in added:
            self.clips[c.name] = c
            if self._running and not self._stop.is_set():  # a clip found while the gateway runs
                self.runs[c.name] = asyncio.ensure_future(c.run(self._stop))
        return added

    def link_changed(self, clip: GatewayClip) -> None:
        self._link_due.add(clip.name)
        self.wake.set()

    async def run(self, *, seconds: float | None = None, stop: asyncio.Event | None = None,
                  keep_open: Callable[[], bool] = lambda: False) -> None:
        """Carry every clip until ``seconds`` pass, ``stop`` is set, or every clip's link ended (and
        ``keep_open()`` is false: more may come, e.g. from a BLE scan); then carry no more live
        samples but answer the coach's last commands (the backfill of a gap seen just before the
        end) until none came for a second, empty the outbox (up to ``FLUSH_S``), say each clip
        disconnected and the gateway offline, and close the logs."""
        started = time.monotonic()
        self._running = True
        for name, c in self.clips.items():
            self.runs.setdefault(name, asyncio.ensure_future(c.run(self._stop)))
        sender = asyncio.ensure_future(self._send())
        figures = asyncio.ensure_future(self._figures_now_and_then())
        try:
            while not (stop and stop.is_set()):
                if seconds is not None and time.monotonic() - started >= seconds:
                    break
                if self.runs and all(r.done() for r in self.runs.values()) and not keep_open():
                    break
                await asyncio.sleep(0.2)
        finally:
            try:
                await self._last_asks()
            finally:
                self._stop.set()
            await asyncio.gather(*self.runs.values(), return_exceptions=True)
            deadline = time.monotonic() + FLUSH_S
            while any(c.outbox.queue for c in self.clips.values()) and self.conn.connected \
                    and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            figures.cancel()
            sender.cancel()
            try:  # (bounded: a cancel lost all the same must not keep the gateway from exiting)
                await asyncio.wait_for(asyncio.gather(figures, sender, return_exceptions=True), STOP_WAIT_S)
            except asyncio.TimeoutError:
                log.warning("gateway %s: its sender did not stop within %.0f s", self.name, STOP_WAIT_S)
            await self._publish_figures(list(self.clips))

    async def _last_asks(self) -> None:
        self.ending = True
        if all(r.done() for r in self.runs.values()):
            return
        now = time.monotonic()
        self.last_command_s, deadline = max(self.last_command_s, now), now + LAST_ASKS_S[1]
        while time.monotonic() < min(deadline, self.last_command_s + LAST_ASKS_S[0]):
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.conn.close(farewell=(T.state_topic(self.name), _state(False)))

    def stats(self) -> dict:
        return {"broker_connects": self.conn.connects, "broker_losses": self.conn.losses,
                "bad_commands": self.bad_commands + self.conn.failed_messages,
                "outbox_waiting": sum(len(c.outbox.queue) for c in self.clips.values()),
                "outbox_dropped": sum(c.outbox.dropped for c in self.clips.values())}

    # -- the broker ------------------------------------------------------------------------------
    async def _announce(self) -> None:
        """At every connect: online (retained), then every clip's link figures."""
        await self.conn.publish(T.state_topic(self.name), _state(True), retain=True)
        self._link_due.update(self.clips)
        self.wake.set()

    def _route(self, topic: str, payload: bytes) -> None:
        try:
            gateway, kind, clip = T.parse_topic(topic)
            if gateway != self.name or kind != "cmd":
                raise T.BadMessage(f"{topic}: not a command for gateway {self.name}")
            target = self.clips.get(clip)
            if target is None:
                raise T.BadMessage(f"{topic}: this gateway follows no clip {clip!r}")
            try:
                P.parse_command(payload)
            except P.ProtocolError as e:
                raise T.BadMessage(f"{topic}: not a command packet ({e})") from None
        except T.BadMessage as e:
            self.bad_commands += 1
            self.first_bad = self.first_bad or str(e)
            return
        self.last_command_s = time.monotonic()
        writing = asyncio.ensure_future(target.write(payload))
        self._writes.add(writing)  # (held: the loop keeps only a weak reference to a task)
        writing.add_done_callback(self._writes.discard)

    async def _send(self) -> None:
        """The outboxes to the broker, in order per clip, ``BATCH`` messages in flight; a batch
        whose acknowledgement fails is sent again from its first unacknowledged message."""
        while True:
            if not self.conn.connected:
                await asyncio.sleep(0.1)
                continue
            if self._state_due:  # now and then: a will the broker sent late (after its restart) is undone
                self._state_due = False
                try:
                    await self.conn.publish(T.state_topic(self.name), _state(True), retain=True)
                except TransportError:
                    self._state_due = True
            if self._link_due:
                await self._publish_figures(sorted(self._link_due))
            batch = self._batch()
            if not batch:
                self.wake.clear()
                waiter = asyncio.ensure_future(self.wake.wait())
                try:  # (not wait_for: Python 3.11's loses a cancel that comes as the event is set)
                    await asyncio.wait({waiter}, timeout=1.0)
                finally:
                    waiter.cancel()
                continue
            results = await asyncio.gather(*(self.conn.publish(topic, payload) for _c, _n, topic, payload in batch),
                                           return_exceptions=True)
            failed: dict[str, int] = {}
            for (clip, n, _t, _p), res in zip(batch, results):
                if isinstance(res, Exception):
                    failed[clip.name] = min(failed.get(clip.name, n), n)
            for clip, n, _t, _p in batch:
                clip.outbox.done(min(n + 1, failed.get(clip.name, n + 1)))
            if failed:
                await asyncio.sleep(0.2)  # the connection is being renewed

    def _batch(self) -> list[tuple[GatewayClip, int, str, bytes]]:
        """Up to BATCH messages, a clip's oldest first, the clips in turn."""
        out, depth, now = [], 0, time.monotonic()
        clips = [c for c in self.clips.values() if c.outbox.queue]
        while clips and len(out) < BATCH:
            for c in clips:
                if depth < len(c.outbox.queue) and len(out) < BATCH:
                    topic, payload = c.outbox.message(depth, now)
                    out.append((c, c.outbox.first + depth, topic, payload))
            depth += 1
            clips = [c for c in clips if depth < len(c.outbox.queue)]
        return out

    async def _publish_figures(self, names: list[str]) -> None:
        for name in names:
            clip = self.clips[name]
            if not clip.connected and clip.outbox.queue:
                continue  # the clip's packets first: they came before it was lost
            self._link_due.discard(name)
            try:
                await self.conn.publish(T.link_topic(self.name, name), json.dumps(clip.figures()).encode(),
                                        retain=True)
            except TransportError:
                self._link_due.add(name)  # again once connected
                return

    async def _figures_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(LINK_EVERY_S)
            self._link_due.update(self.clips)
            self._state_due = True
            self.wake.set()


def _state(online: bool) -> bytes:
    return json.dumps({"online": online, "t_ms": utc_ms()}).encode()
