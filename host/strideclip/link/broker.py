"""Clips carried by gateways through an MQTT broker (issue #24, docs/team.md): the coach's side.

``BrokerLink`` is the coach's one connection (strideclip.link.mqtt): it routes each clip's
messages to a ``BrokerTransport`` per clip, a ``Transport`` like BLE's, so
``session.live.LiveClip`` records, analyses, backfills and cues a clip through the broker
unchanged. Packets of one clip carried by several gateways at once (a hand-over, a gateway's
outbox sent late) are merged: an exact repeat of a recent packet is dropped (RESULTs always pass:
a command's answer can repeat its bytes), and overlapping samples are the decoder's to merge.
Which gateway holds the clip is judged by when each packet reached its gateway: its arrival here
less the time the message says it waited in the gateway's outbox (measured there alone, so no
clock skew enters). Another gateway takes the clip over once it carried the clip ``SWITCH_QUIET_S``
more recently than the holder (so two gateways carrying it at once do not flap), and commands
(cues, backfill, pings) go to the gateway that carried it most recently. A gateway emptying an
outbox kept while the broker was away (it may have lost the clip meanwhile) therefore neither
takes the clip from one that carries it now nor takes its commands. A malformed message (not our
topic, a short payload, bad JSON, another version's packet format) is counted and skipped.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from clipcore import protocol as P
from strideclip.errors import TransportError
from strideclip.link import broker_topics as T
from strideclip.link.mqtt import BrokerUrl, MqttConnection, parse_url, utc_ms
from strideclip.link.transport import Commands

RECENT_PACKETS = 2048  # per clip, the packets remembered to drop repeats (about 3 min of a 208 Hz clip)
SWITCH_QUIET_S = 1.0  # another gateway takes the clip over once it carried it this much more recently
HOLDER_QUIET_S = 10.0  # a holder that has sent nothing for this long no longer holds the clip
OUTBOX_LATE_MS = 2000  # a packet that waited this long at its gateway came from its outbox (counted)
LOST_BROKER = "the connection to the broker was lost"


class BrokerLink:
    """The coach's connection to the broker: every gateway's clips, a BrokerTransport per clip
    followed (``transport``). ``bad_messages`` counts what was not one of ours (skipped)."""

    def __init__(self, url: BrokerUrl | str, *, user: str | None = None, password: str | None = None,
                 tls_context: ssl.SSLContext | None = None):
        self.url = parse_url(url) if isinstance(url, str) else url
        self.clips: dict[str, BrokerTransport] = {}
        self.offline: set[str] = set()  # gateways whose state says offline (their will, or a clean stop)
        self.bad_messages = 0
        self.first_bad: str | None = None
        self.conn = MqttConnection(self.url, client_id=f"strideclip-coach-{user or 'anonymous'}", user=user,
                                   password=password, subscriptions=T.COACH_SUBSCRIPTIONS, on_message=self._route,
                                   on_lost=self._lost, tls_context=tls_context)
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        await self.conn.start()
        self._watch = asyncio.ensure_future(self._watch_quiet())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.conn.close()

    def transport(self, clip: str, **callbacks: Any) -> BrokerTransport:
        """Follow ``clip`` (by its ``topic_name``): its transport, made with LiveClip's callbacks
        (on_packet, on_link, on_sent)."""
        name = T.topic_name(clip)
        if name in self.clips:  # (its packets would all go to one of the two)
            raise TransportError(f"{clip!r} is {name!r} in the broker's topics, a name already followed: "
                                 f"follow each name once", port=name)
        t = BrokerTransport(self, name, **callbacks)
        self.clips[t.clip] = t
        return t

    def stats(self) -> dict:
        return {"broker_connects": self.conn.connects, "broker_losses": self.conn.losses,
                "bad_messages": self.bad_messages + self.conn.failed_messages}

    def _bad(self, why: str) -> None:
        self.bad_messages += 1
        self.first_bad = self.first_bad or why

    def _route(self, topic: str, payload: bytes) -> None:
        try:
            gateway, kind, clip = T.parse_topic(topic)
            if kind == "state":
                online = _json_object(payload, topic).get("online")
                if not isinstance(online, bool):
                    raise T.BadMessage(f"{topic}: a state without online true or false")
                (self.offline.discard if online else self.offline.add)(gateway)
                for t in self.clips.values():
                    t._reelect()
                return
            t = self.clips.get(clip)
            if kind == "cmd":
                raise T.BadMessage(f"{topic}: a command, which the coach does not read")
            if t is None:
                return  # a clip someone else follows
            if kind == "pkt":
                t._packet(gateway, *T.unpack_packet(payload))
            else:
                t._figures_from(gateway, T.link_figures(_json_object(payload, topic), topic))
        except T.BadMessage as e:
            self._bad(str(e))

    def _lost(self) -> None:
        for t in self.clips.values():
            t._set_holder(None, reason=LOST_BROKER)

    async def _watch_quiet(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for t in self.clips.values():
                t._reelect()


class BrokerTransport:
    """One clip through the broker: the Transport protocol (strideclip.link.transport).
    ``connected``: a live gateway holds the clip; ``gateway``: which."""

    takes_commands = True

    def __init__(self, link: BrokerLink, clip: str, *, on_packet: Callable[[bytes, float], None],
                 on_link: Callable[..., None] | None = None, on_sent: Callable[[bytes], None] | None = None):
        self.link, self.clip = link, clip
        self.on_packet = on_packet
        self.on_link = on_link or (lambda event, **fields: None)
        self.on_sent = on_sent or (lambda pkt: None)
        self.commands = Commands(f"{clip} (via {link.url})")
        self.gateway: str | None = None  # the holder: commands go to it
        self.last_packet_s: dict[str, float] = {}  # gateway -> time.monotonic() of its newest packet of this clip
        # gateway -> when the newest packet it carried first reached it (our clock; a repeat of a packet
        # another gateway brought first does not count: two carrying the clip, the quicker one is the fresher)
        self.reached_s: dict[str, float] = {}
        self.figures: dict[str, dict] = {}  # gateway -> its link figures for this clip
        self.packets = 0
        self.duplicates = 0
        self.handovers = 0
        self.outbox_packets = 0  # packets that waited OUTBOX_LATE_MS or more at their gateway
        self.broker_delays_ms: deque = deque(maxlen=200)  # coach's receive - gateway's receive (UTC clocks)
        self._recent: dict[bytes, None] = {}  # insertion-ordered: the oldest goes first
        self._tasks: set = set()
        self._ended = False

    @property
    def connected(self) -> bool:
        return self.gateway is not None

    @property
    def rtt_ms(self) -> float | None:
        return self.commands.rtt_ms

    @property
    def rssi_dbm(self) -> int | None:
        return (self.figures.get(self.gateway) or {}).get("rssi_dbm") if self.gateway else None

    def stats(self) -> dict:
        d = sorted(self.broker_delays_ms)
        return {"broker_packets": self.packets, "duplicates_dropped": self.duplicates, "handovers": self.handovers,
                "outbox_packets": self.outbox_packets,
                "gateways": ",".join(sorted(self.last_packet_s)),
                "broker_delay_ms_p95": round(d[int(0.95 * (len(d) - 1))], 1) if d else None, **self.link.stats()}

    async def run(self, stop: asyncio.Event) -> None:
        """Packets come from the link as they arrive; this waits for ``stop``."""
        try:
            await stop.wait()
        finally:
            self._ended = True  # nothing more reaches the caller: its log closes
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.commands.fail_pending("the run ended")

    async def command(self, opcode: int, args: tuple, *, timeout_s: float | None = None) -> int:
        if not self.connected:
            raise TransportError(f"{self.clip} is held by no gateway now", port=self.clip)
        return await self.commands.send(opcode, args, self.send_packet, timeout_s=timeout_s)

    async def send_packet(self, pkt: bytes) -> None:
        """To the gateway that carried the clip most recently (during a hand-over the new one,
        before it becomes the holder: the old one may have lost the clip), which writes it to the
        clip as it is."""
        gateway = self._freshest(time.monotonic()) or self.gateway
        if gateway is None:
            raise TransportError(f"{self.clip} is held by no gateway now", port=self.clip)
        self.on_sent(pkt)
        await self.link.conn.publish(T.command_topic(gateway, self.clip), bytes(pkt))

    # -- from the link ---------------------------------------------------------------------------
    def _packet(self, gateway: str, received_ms: int, waited_ms: int, pkt: bytes) -> None:
        if self._ended:
            return
        now = time.monotonic()
        self.packets += 1
        self.broker_delays_ms.append(utc_ms() - received_ms)
        self.last_packet_s[gateway] = now
        self.outbox_packets += waited_ms >= OUTBOX_LATE_MS
        self.link.offline.discard(gateway)  # it publishes: it is online (whatever a late will said)
        is_result = len(pkt) == P.RESULT_BYTES and pkt[0] & 0x0F == P.T_RESULT
        if not is_result and pkt in self._recent:  # (a repeat: its gateway carried it later than another did)
            self.duplicates += 1
            return
        reached_s = max(now - waited_ms / 1000, self.reached_s.get(gateway, -1e9))
        self.reached_s[gateway] = reached_s
        holder = self.gateway
        if self._eligible(gateway, now) and gateway != holder and (
                holder is None or not self._eligible(holder, now)
                or reached_s - self.reached_s.get(holder, -1e9) >= SWITCH_QUIET_S):
            self._set_holder(gateway)
        if not is_result:
            self._recent[pkt] = None
            if len(self._recent) > RECENT_PACKETS:
                del self._recent[next(iter(self._recent))]
        self.commands.on_packet(pkt, now)
        self.on_packet(pkt, now)

    def _figures_from(self, gateway: str, figures: dict) -> None:
        self.figures[gateway] = figures
        self._reelect()

    def _eligible(self, gateway: str, now: float) -> bool:
        """We are connected, the gateway is online, has not said it lost the clip, and sent a
        packet of it in the last HOLDER_QUIET_S."""
        return (self.link.conn.connected and gateway not in self.link.offline
                and (self.figures.get(gateway) or {}).get("connected") is not False
                and now - self.last_packet_s.get(gateway, -1e9) < HOLDER_QUIET_S)

    def _reelect(self) -> None:
        """If the holder no longer holds the clip (or none does): the gateway whose packet came
        last, if any may hold it now."""
        now = time.monotonic()
        if self._ended or (self.gateway is not None and self._eligible(self.gateway, now)):
            return
        new = self._freshest(now)
        if new != self.gateway:
            self._set_holder(new, reason=self._why_not(self.gateway, now) if self.gateway else "")

    def _freshest(self, now: float) -> str | None:
        """Of the gateways that may hold the clip now, the one that carried it most recently; None
        if none may."""
        held = [(t, g) for g, t in self.reached_s.items() if self._eligible(g, now)]
        return max(held)[1] if held else None

    def _why_not(self, gateway: str, now: float) -> str:
        if not self.link.conn.connected:
            return LOST_BROKER
        if gateway in self.link.offline:
            return f"gateway {gateway} went offline"
        if (self.figures.get(gateway) or {}).get("connected") is False:
            return f"gateway {gateway} lost the clip"
        return f"nothing from gateway {gateway} for {now - self.last_packet_s.get(gateway, now):.0f} s"

    def _set_holder(self, gateway: str | None, reason: str = "") -> None:
        old, self.gateway = self.gateway, gateway
        if old == gateway or self._ended:
            return
        if gateway is None:
            self.commands.fail_pending(reason)
            self.on_link("lost", gateway=old, reason=reason)
        elif old is None:
            self.on_link("connected", gateway=gateway)
            self._spawn(self._hello())
        else:
            self.handovers += 1
            self.on_link("handover", gateway=gateway, previous=old, **({"reason": reason} if reason else {}))

    async def _hello(self) -> None:
        """As a BLE link asks on connecting: the clip's HELLO says how to read its samples (a
        coach that started after the clip's stream began has none)."""
        try:
            await self.command(P.OP_HELLO, ())
        except TransportError as e:
            self.on_link("warning", error=str(e))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _json_object(payload: bytes, topic: str) -> dict:
    try:
        obj = json.loads(payload)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise T.BadMessage(f"{topic}: not a JSON object ({payload[:40]!r})")
    return obj


