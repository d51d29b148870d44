"""The broker's topics and messages (issue #24): gateways around a track carry the clips' packets
to one coach's dashboard through an MQTT broker (Eclipse Mosquitto, docs/team.md).

    strideclip/gw/<gateway>/state              gateway -> coach  JSON {"online": bool, "t_ms": UTC ms}, retained;
                                                                 the gateway's will says offline
    strideclip/gw/<gateway>/clip/<clip>/pkt    gateway -> coach  one clip packet: receive time, wait + the packet's bytes
    strideclip/gw/<gateway>/clip/<clip>/link   gateway -> coach  JSON link figures (connected, rssi_dbm, rtt_ms), retained
    strideclip/gw/<gateway>/cmd/<clip>         coach -> gateway  one command packet for that clip, as the clip takes it

Everything a gateway writes is under its own name, and it reads only its own commands: the
broker's ACL (``strideclip broker-config``) holds every gateway to that with one pattern (``%u``,
the MQTT user, is the gateway's name). The coach's user reads every gateway's clips and writes
their commands. Names are plain so that a topic can never be widened by one (no ``+``, ``#``, ``/``).
"""
from __future__ import annotations

import re
import struct

from strideclip.errors import StrideClipError

ROOT = "strideclip/gw"
NAME_CHARS = "A-Za-z0-9._-"  # what a topic level may hold (names are plain: no + # / in a level)
NAME_MAX = 64
NAME_RE = re.compile(f"[{NAME_CHARS}]{{1,{NAME_MAX}}}")
# A packet message starts with its format, its receive time (UTC ms, the gateway's clock) and how
# long it then waited at the gateway before this publish (ms, the gateway's own clock: no skew
# between machines). The format byte makes a gateway and a coach of different versions say so.
PACKET_FORMAT = 2  # 1: receive time only, no format byte (before the wait was carried)
_HEADER = struct.Struct("<BQI")
WAITED_MAX_MS = 0xFFFFFFFF


class BadMessage(StrideClipError):
    """A broker message that is not one of ours: said, counted and skipped, never fatal."""


def check_name(name: str, what: str = "name") -> str:
    """A gateway's or clip's name as a topic level: 1-64 of A-Z a-z 0-9 . _ - (else ValueError naming it)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"{what} {name!r} cannot be a topic level: use 1-64 of A-Z a-z 0-9 . _ -")
    return name


def topic_name(name: str) -> str:
    """A clip's name as its topics carry it, the same at every gateway and at the coach: what
    cannot be a topic level becomes ``_``, at most NAME_MAX characters."""
    return re.sub(f"[^{NAME_CHARS}]", "_", name)[:NAME_MAX] or "_"


def state_topic(gateway: str) -> str:
    return f"{ROOT}/{check_name(gateway, 'gateway')}/state"


def packet_topic(gateway: str, clip: str) -> str:
    return f"{ROOT}/{check_name(gateway, 'gateway')}/clip/{check_name(clip, 'clip')}/pkt"


def link_topic(gateway: str, clip: str) -> str:
    return f"{ROOT}/{check_name(gateway, 'gateway')}/clip/{check_name(clip, 'clip')}/link"


def command_topic(gateway: str, clip: str) -> str:
    return f"{ROOT}/{check_name(gateway, 'gateway')}/cmd/{check_name(clip, 'clip')}"


# What each side subscribes to.
COACH_SUBSCRIPTIONS = (f"{ROOT}/+/state", f"{ROOT}/+/clip/+/pkt", f"{ROOT}/+/clip/+/link")


def gateway_subscription(gateway: str) -> str:
    return f"{ROOT}/{check_name(gateway, 'gateway')}/cmd/+"


def parse_topic(topic: str) -> tuple[str, str, str | None]:
    """(gateway, kind, clip) of one of our topics: kind "state", "pkt", "link" or "cmd" (clip None
    for "state"). BadMessage for anything else."""
    parts = topic.split("/")
    if parts[:2] == ROOT.split("/") and len(parts) >= 4 and NAME_RE.fullmatch(parts[2]):
        gateway, rest = parts[2], parts[3:]
        if rest == ["state"]:
            return gateway, "state", None
        if len(rest) == 3 and rest[0] == "clip" and rest[2] in ("pkt", "link") and NAME_RE.fullmatch(rest[1]):
            return gateway, rest[2], rest[1]
        if len(rest) == 2 and rest[0] == "cmd" and NAME_RE.fullmatch(rest[1]):
            return gateway, "cmd", rest[1]
    raise BadMessage(f"not a StrideClip topic: {topic[:120]!r}")


def pack_packet(received_utc_ms: int, pkt: bytes, waited_ms: int = 0) -> bytes:
    """A clip packet as a gateway publishes it: the format, its receive time (UTC ms), how long it
    waited at the gateway (ms: long after the broker was away), then the packet."""
    return _HEADER.pack(PACKET_FORMAT, received_utc_ms, min(max(int(waited_ms), 0), WAITED_MAX_MS)) + bytes(pkt)


def unpack_packet(payload: bytes) -> tuple[int, int, bytes]:
    """(receive time UTC ms, waited at the gateway ms, packet) of a packet message; BadMessage if
    it cannot be one (too short, or another format: a gateway of another StrideClip version)."""
    if len(payload) <= _HEADER.size:
        raise BadMessage(f"a packet message of {len(payload)} bytes: too short for its header and a packet")
    form, received_ms, waited_ms = _HEADER.unpack_from(payload)
    if form != PACKET_FORMAT:
        raise BadMessage(f"a packet message of format {form}, not {PACKET_FORMAT}: run the same StrideClip "
                         "version on the gateways and the coach")
    return received_ms, waited_ms, bytes(payload[_HEADER.size:])


RSSI_DBM = (-127, 20)  # what a Bluetooth controller can report (HCI: -127..20 dBm)


def link_figures(obj: dict, topic: str) -> dict:
    """A gateway's link figures for a clip (its link message, a JSON object), checked: what the
    coach shows and acts on (``connected``, ``rssi_dbm``, ``rtt_ms``) has the right type and a
    possible value, or the message is bad (BadMessage naming the field); others are dropped."""
    out = {}
    connected = obj.get("connected")
    if not isinstance(connected, bool):
        raise BadMessage(f"{topic}: link figures without connected true or false")
    out["connected"] = connected
    rssi = obj.get("rssi_dbm")
    if rssi is not None and (type(rssi) is not int or not RSSI_DBM[0] <= rssi <= RSSI_DBM[1]):
        raise BadMessage(f"{topic}: rssi_dbm {rssi!r} is not a whole number of dBm in {RSSI_DBM[0]}..{RSSI_DBM[1]}")
    out["rssi_dbm"] = rssi
    rtt = obj.get("rtt_ms")
    if rtt is not None and (type(rtt) not in (int, float) or not 0 <= rtt < 1e6):
        raise BadMessage(f"{topic}: rtt_ms {rtt!r} is not a round trip in ms")
    out["rtt_ms"] = rtt
    return out
