"""The coach's side of the broker (strideclip.link.broker, issue #24) against a real mosquitto
(tests/broker.py): gateways are played by plain MQTT clients logged in as gateway users, so each
rule is tried on its own - repeats dropped (RESULTs kept), which gateway holds a clip, commands
to the holder and answers through the stream, malformed messages counted and skipped."""
import asyncio
import contextlib
import json
import socket
import struct
import subprocess
import time

import aiomqtt
import numpy as np
import pytest

from mpy import find_tool
from rig import run_async  # (a page test's Playwright loop may hold the main thread)
from clipcore import protocol as P
from strideclip.errors import BrokerUnavailable
from strideclip.link import broker_topics as T
from strideclip.link.broker import SWITCH_QUIET_S, BrokerLink
from strideclip.link.broker_topics import topic_name
from strideclip.link.mqtt import parse_url, read_password
from strideclip.stream.packets import encode_packet, encode_samples

RNG = np.random.default_rng(24)


def sample_packets(n: int, first_idx: int = 0, per: int = 19) -> list[bytes]:
    return [encode_samples(i, first_idx + i * per, RNG.integers(-2000, 2000, (per, 6)).astype(np.int16))
            for i in range(n)]


def gateway_client(broker, name: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", broker.port, username=name, password=broker.users[name], identifier=name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


class Followed:
    """A clip followed through the broker, recording what its transport hands on."""

    def __init__(self, link: BrokerLink, clip: str):
        self.packets, self.events, self.sent = [], [], []
        self.transport = link.transport(clip, on_packet=lambda p, t: self.packets.append(p),
                                        on_link=lambda e, **f: self.events.append((e, f)), on_sent=self.sent.append)
        self.stop = asyncio.Event()
        self.run = asyncio.ensure_future(self.transport.run(self.stop))

    async def end(self) -> None:
        self.stop.set()
        await self.run


async def answer(client, name: str, commands: dict) -> None:
    """A plain MQTT client as gateway ``name`` whose clip-1 answers every command at once (result 7),
    noting each opcode in ``commands[name]``."""
    await client.subscribe(T.gateway_subscription(name), qos=1)
    async for msg in client.messages:
        cmd_id, opcode, _ = P.parse_command(msg.payload)
        commands[name].append(opcode)
        result = encode_packet(P.Result(cmd_id, opcode, P.RESULT_OK, 7))
        await client.publish(T.packet_topic(name, "clip-1"), T.pack_packet(1, result), qos=1)


@contextlib.asynccontextmanager
async def coach_and_two_gateways(b):
    """The coach's link following clip-1 and plain MQTT clients as gw-a and gw-b whose clip answers
    every command (``answer``): yields (clip, gw-a, gw-b, commands), the opcodes each was sent."""
    link = BrokerLink(b.url, user="coach", password=b.users["coach"])
    await link.start()
    clip = Followed(link, "clip-1")
    commands = {"gw-a": [], "gw-b": []}
    try:
        async with gateway_client(b, "gw-a") as a, gateway_client(b, "gw-b") as gb:
            answering = [asyncio.ensure_future(answer(a, "gw-a", commands)),
                         asyncio.ensure_future(answer(gb, "gw-b", commands))]
            try:
                yield clip, a, gb, commands
            finally:
                for t in answering:
                    t.cancel()
                await asyncio.gather(*answering, return_exceptions=True)
    finally:
        await clip.end()
        await link.close()


def test_one_clip_from_two_gateways_is_merged_and_commands_go_to_its_holder(mosquitto_broker):
    b = mosquitto_broker
    pkts = sample_packets(30)

    async def main():
        async with coach_and_two_gateways(b) as (clip, a, gb, commands):
            for p in pkts[:20]:
                await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, p), qos=1)
            await until(lambda: commands["gw-a"] == [P.OP_HELLO])  # asked of the first holder, as BLE does
            await until(lambda: len(clip.packets) == 21)  # its 20 and the HELLO's RESULT
            assert clip.transport.gateway == "gw-a"
            await asyncio.sleep(SWITCH_QUIET_S + 0.2)
            for p in pkts[10:30]:  # gw-b has the clip now, and sends again what gw-a sent (10 packets)
                await gb.publish(T.packet_topic("gw-b", "clip-1"), T.pack_packet(1, p), qos=1)
            await until(lambda: clip.transport.packets == 41)
            assert clip.transport.gateway == "gw-b"
            assert await clip.transport.command(P.OP_BUZZ, (1, 1, 100, 100)) == 7  # through gw-b, answered there
            assert commands == {"gw-a": [P.OP_HELLO], "gw-b": [P.OP_BUZZ]}
            assert [pk for pk in clip.packets if pk[0] & 0x0F == P.T_SAMPLES] == pkts  # each once, in order
            assert clip.transport.duplicates == 10
            assert sum(pk[0] & 0x0F == P.T_RESULT for pk in clip.packets) == 2  # RESULTs pass
            # gw-a goes offline: gw-b still holds it; then gw-b says its link to the clip is down
            await a.publish(T.state_topic("gw-a"), json.dumps({"online": False}).encode(), qos=1, retain=True)
            await gb.publish(T.link_topic("gw-b", "clip-1"), json.dumps({"connected": False}).encode(), qos=1)
            await until(lambda: not clip.transport.connected)
        return clip.events

    events = run_async(main())
    assert [(e, f.get("gateway")) for e, f in events] == [("connected", "gw-a"), ("handover", "gw-b"), ("lost", "gw-b")]
    assert events[-1][1]["reason"] == "gateway gw-b lost the clip"


def test_a_gateway_sending_its_outbox_late_neither_holds_the_clip_nor_takes_its_commands(mosquitto_broker):
    """After the broker was away: gw-a lost the clip meanwhile and sends what it kept (late),
    gw-b has it now (live). gw-a's packets come last, but the commands go to gw-b."""
    b = mosquitto_broker
    pkts = sample_packets(40)

    async def main():
        async with coach_and_two_gateways(b) as (clip, a, gb, commands):
            await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, pkts[0], waited_ms=40_000), qos=1)
            await until(lambda: clip.transport.gateway == "gw-a")  # the only one yet
            for k in range(1, 20):  # gw-a's outbox and gw-b's live packets, gw-a's last each time
                await gb.publish(T.packet_topic("gw-b", "clip-1"), T.pack_packet(1, pkts[20 + k]), qos=1)
                await a.publish(T.packet_topic("gw-a", "clip-1"),
                                T.pack_packet(1, pkts[k], waited_ms=40_000 - 100 * k), qos=1)
                await asyncio.sleep(0.1)
            await until(lambda: clip.transport.packets >= 40)
            assert clip.transport.gateway == "gw-b"
            commands["gw-a"].clear()
            commands["gw-b"].clear()  # (the HELLO: asked as gw-a became the holder)
            assert await clip.transport.command(P.OP_BUZZ, (1, 1, 100, 100)) == 7
            assert commands == {"gw-a": [], "gw-b": [P.OP_BUZZ]}
        return clip

    clip = run_async(main())
    assert clip.transport.outbox_packets == 20 and clip.transport.stats()["outbox_packets"] == 20
    assert [(e, f.get("gateway")) for e, f in clip.events] == [("connected", "gw-a"), ("handover", "gw-b")]


def test_a_gateway_always_behind_does_not_take_the_clip_back_while_the_one_carrying_it_pauses(mosquitto_broker):
    """gw-a's packets all waited 2.5 s at it (a slow uplink, an outbox), gw-b carries the clip live
    and drops out for 1.5 s at the edge of its range: gw-b keeps the clip (gw-a still carried it
    later than gw-b for less than SWITCH_QUIET_S), and its commands."""
    b = mosquitto_broker
    pkts = sample_packets(80)

    async def main():
        async with coach_and_two_gateways(b) as (clip, a, gb, commands):
            behind = iter(pkts[30:])

            async def tick(live: bool) -> None:
                await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, next(behind), waited_ms=2500), qos=1)
                if live:
                    await gb.publish(T.packet_topic("gw-b", "clip-1"), T.pack_packet(1, next(ahead)), qos=1)
                await asyncio.sleep(0.1)

            ahead = iter(pkts[:30])
            await tick(live=False)
            await until(lambda: clip.transport.gateway == "gw-a")  # the only one yet
            for live in [True] * 20 + [False] * 15 + [True] * 5:  # (gw-b takes over 1 s after gw-a's HELLO answer)
                await tick(live)
            await until(lambda: clip.transport.packets >= 40 + 25)
            commands["gw-a"].clear()
            commands["gw-b"].clear()
            assert await clip.transport.command(P.OP_BUZZ, (1, 1, 100, 100)) == 7
            assert commands == {"gw-a": [], "gw-b": [P.OP_BUZZ]}
        return clip

    clip = run_async(main())
    assert [(e, f.get("gateway")) for e, f in clip.events] == [("connected", "gw-a"), ("handover", "gw-b")]


def test_of_two_gateways_carrying_a_clip_the_one_whose_copies_come_first_takes_its_commands(mosquitto_broker):
    """Both carry the clip; gw-b's uplink is slower, so each packet comes from it later, as a repeat:
    commands go to gw-a, which brought each packet first."""
    b = mosquitto_broker
    pkts = sample_packets(20)

    async def main():
        async with coach_and_two_gateways(b) as (clip, a, gb, commands):
            for k, p in enumerate(pkts):
                await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, p), qos=1)
                if k:
                    await gb.publish(T.packet_topic("gw-b", "clip-1"), T.pack_packet(1, pkts[k - 1]), qos=1)
                await asyncio.sleep(0.1)
            await until(lambda: clip.transport.duplicates == len(pkts) - 1)
            commands["gw-a"].clear()
            assert await clip.transport.command(P.OP_BUZZ, (1, 1, 100, 100)) == 7
            assert commands == {"gw-a": [P.OP_BUZZ], "gw-b": []}
        return clip

    clip = run_async(main())
    assert [(e, f.get("gateway")) for e, f in clip.events] == [("connected", "gw-a")]


def test_a_packet_of_another_format_is_skipped_and_the_coachs_command_says_why(mosquitto_broker, tmp_path):
    """A gateway of another StrideClip version (its packets have no format byte, or another one):
    counted and skipped, and ``strideclip live --broker`` says so in one line at its end."""
    b = mosquitto_broker
    pkt = sample_packets(1)[0]
    coach = subprocess.Popen([find_tool("strideclip"), "live", "--broker", b.url, "--clip", "clip-1",
                              "--broker-credentials", str(b.user_credentials_path("coach")), "--seconds", "4",
                              "--out", str(tmp_path), "--no-history"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert coach.stdout.readline().startswith("following clip-1 through the broker"), coach.stderr.read()

        async def main():
            async with gateway_client(b, "gw-a") as a:
                await a.publish(T.packet_topic("gw-a", "clip-1"), struct.pack("<Q", 1) + pkt, qos=1)  # format 1
                await a.publish(T.packet_topic("gw-a", "clip-1"), b"\x03" + T.pack_packet(1, pkt)[1:], qos=1)

        run_async(main())
        _out, err = coach.communicate(timeout=60)
    finally:
        if coach.poll() is None:
            coach.kill()
    said = [line for line in err.splitlines() if "broker message(s)" in line]
    assert said == ["strideclip: 2 broker message(s) were not ours and were skipped; first: a packet message of format "
                    "1, not 2: run the same StrideClip version on the gateways and the coach"], err


def test_malformed_messages_are_counted_and_skipped(mosquitto_broker):
    b = mosquitto_broker
    good = sample_packets(2)

    async def main():
        link = BrokerLink(b.url, user="coach", password=b.users["coach"])
        await link.start()
        clip = Followed(link, "clip-1")
        async with gateway_client(b, "gw-a") as a:
            await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, good[0]), qos=1)
            await a.publish(T.packet_topic("gw-a", "clip-1"), b"\x01\x02\x03", qos=1)  # too short
            await a.publish("strideclip/gw/gw-a/clip/not a name!/pkt", T.pack_packet(1, good[0]), qos=1)
            await a.publish(T.state_topic("gw-a"), b"not json", qos=1)
            await a.publish(T.state_topic("gw-a"), b'{"online": "yes"}', qos=1)
            await a.publish(T.link_topic("gw-a", "clip-1"), b"[1, 2]", qos=1)
            # link figures the tiles and the terminal would choke on (a retained one would come back on every start)
            for figures in (b'{"connected": true, "rssi_dbm": -61.5}', b'{"connected": true, "rssi_dbm": "-61"}',
                            b'{"connected": true, "rssi_dbm": true}', b'{"rssi_dbm": -61}',
                            b'{"connected": true, "rtt_ms": NaN}'):
                await a.publish(T.link_topic("gw-a", "clip-1"), figures, qos=1)
            await a.publish(T.link_topic("gw-a", "clip-1"), b'{"connected": true, "rssi_dbm": -61, "rtt_ms": 12.5, '
                                                            b'"packets": 3, "t_ms": 1}', qos=1)
            garbage = bytes(RNG.integers(0, 256, 40, dtype=np.uint8))
            await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, garbage), qos=1)  # the decoder's to count
            await a.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, good[1]), qos=1)
            await until(lambda: len(clip.packets) == 3)
        await clip.end()
        await link.close()
        return link, clip

    link, clip = run_async(main())
    assert link.bad_messages == 10
    assert "too short" in link.first_bad
    assert clip.packets[0] == good[0] and clip.packets[2] == good[1]
    assert clip.transport.figures["gw-a"] == {"connected": True, "rssi_dbm": -61, "rtt_ms": 12.5}
    assert clip.transport.rssi_dbm == -61


def test_a_publish_cancelled_as_its_acknowledgement_comes_ends_cancelled(mosquitto_broker):
    """aiomqtt waits for the broker with asyncio.wait_for, which in Python 3.11 drops a cancel that
    comes as the acknowledgement does (the publish then returns as if acknowledged). A gateway's
    sender, cancelled so at its end, went on for ever. Here aiomqtt's publish takes the cancel
    for itself every time: the task that waited on it must still end cancelled."""
    b = mosquitto_broker

    async def main():
        link = BrokerLink(b.url, user="coach", password=b.users["coach"])
        await link.start()
        acknowledged = asyncio.Event()

        async def swallows_the_cancel(*_a, **_k):
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                acknowledged.set()  # (returns: the acknowledgement came at that moment)

        link.conn._client.publish = swallows_the_cancel
        sending = asyncio.ensure_future(link.conn.publish(T.command_topic("gw-a", "clip-1"), b"\x00"))
        await asyncio.sleep(0.1)
        sending.cancel()
        await asyncio.wait({sending}, timeout=5)
        assert acknowledged.is_set() and sending.cancelled()
        await link.close()

    run_async(main())


def test_a_broker_that_refuses_or_is_not_there_is_one_error(mosquitto_broker):
    b = mosquitto_broker

    async def connect(**kw):
        link = BrokerLink(kw.pop("url", b.url), **kw)
        try:
            await link.start()
        finally:
            await link.close()

    for kw, said in [({}, "refused a connection without credentials"),
                     ({"user": "coach", "password": "wrong"}, "refused user coach"),
                     ({"user": "gw-a", "password": b.users["gw-b"]}, "refused user gw-a"),
                     ({"url": f"mqtt://127.0.0.1:{free_port()}"}, "cannot reach the broker")]:
        with pytest.raises(BrokerUnavailable, match=said):
            run_async(connect(**kw))


def test_broker_addresses_and_credentials(tmp_path):
    assert str(parse_url("mqtt://10.0.0.5:1884")) == "mqtt://10.0.0.5:1884"
    assert parse_url("mqtts://broker.local").port == 8883 and parse_url("mqtts://broker.local").tls
    assert parse_url("mqtt://host").port == 1883
    for bad in ["http://host:1883", "mqtt://", "mqtt://user:pw@host:1883", "mqtt://host:99999", "host:1883",
                "mqtt://host:1883/topic"]:
        with pytest.raises(ValueError, match="broker address|port"):
            parse_url(bad)
    creds = tmp_path / "c.json"
    creds.write_text(json.dumps({"users": {"coach": "pw1", "gw-a": "pw2"}}))
    assert read_password(creds, "gw-a") == "pw2"
    with pytest.raises(ValueError, match="no password for user 'gw-b'"):
        read_password(creds, "gw-b")
    creds.write_text("{not json")
    with pytest.raises(ValueError, match="not a credentials file"):
        read_password(creds, "coach")
    assert topic_name("Anna's clip #2") == "Anna_s_clip__2"
    assert T.NAME_RE.fullmatch(topic_name("x" * 100 + "/+#"))


def test_the_broker_transport_offers_the_whole_transport_protocol():
    import inspect

    from strideclip.link.broker import BrokerTransport
    from strideclip.link.transport import Transport

    members = {n for n in vars(Transport) if not n.startswith("_")} | set(Transport.__annotations__)
    assert members <= set(dir(BrokerTransport)), members - set(dir(BrokerTransport))
    for m in ("run", "command", "send_packet"):
        assert inspect.iscoroutinefunction(getattr(BrokerTransport, m))


def test_two_clips_on_one_topic_are_refused_by_the_coachs_link():
    """'Anna B' and 'Anna_B' share a topic: one athlete would get both clips' packets."""
    from strideclip.errors import TransportError

    link = BrokerLink("mqtt://127.0.0.1:1", user="coach", password="x")
    link.transport("Anna B", on_packet=lambda p, t: None)
    with pytest.raises(TransportError, match="'Anna_B' is 'Anna_B' in the broker's topics, a name already followed"):
        link.transport("Anna_B", on_packet=lambda p, t: None)
    assert list(link.clips) == ["Anna_B"]
