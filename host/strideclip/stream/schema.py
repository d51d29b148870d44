"""What the host accepts from a log file or a clip: the one boundary where records and packets
are checked (docs/log-format.md, "What a reader checks").

A clip is a radio device anyone can imitate and a log is a file anyone can write, so what they
hold is input. Log records are checked by ``sclog``'s readers (``record``), clip packets where
every one enters, ``decode.StreamDecoder.feed`` and ``sclog.load_log`` (``clip_packet``). A
record or packet that fails is counted and skipped like a frame with a bad CRC; past this
boundary the host relies on types and ranges, and nothing behind it raises on content.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import unicodedata

from clipcore import logrecord as L
from clipcore import protocol as P
from clipcore import steps
from strideclip.errors import FrameError, FrameValueError, RecordError, UnknownFrameTypeError
from strideclip.stream.packets import ClipMessage, decode_packet

MAX_JSON_DEPTH = 16  # headers and host events are flat objects holding a list or a dict or two
MAX_TEXT_CHARS = 200  # a header's names and labels (athlete, clip, source ...)
MAX_SESSION_S = 48 * 3600  # one clip session's samples span at most this (its battery lasts ~6 h)
SAMPLE_INDEX_END = 1 << 32  # sample indices are u32; the host does not follow a wrap
EARLIEST_START = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
LATEST_START = _dt.datetime(2100, 1, 1, tzinfo=_dt.timezone.utc)

# The header fields the host reads and what each must be; other fields are kept as they are.
HEADER_TEXT = ("format", "software", "athlete", "source", "clip_name", "address", "scenario", "truth", "fw_version")
HEADER_INT_RANGES = {"seed": (-(1 << 63), (1 << 63) - 1), "clip_id": (0, 0xFFFFFFFF), "session_id": (0, 0xFFFF)}


def record(kind: int, body: bytes, *, first: bool) -> tuple[dict | None, list[str]]:
    """Check one log record's body; ``first``: no record was read before it. Returns the parsed
    JSON (header and host records; None for packets) and the header fields that were dropped
    (why, one each). Raises RecordError when the whole record must be skipped."""
    if kind == L.REC_HEADER:
        if not first:
            raise RecordError("a header after the first record (a log has one header, first)")
        return header(body)
    if kind == L.REC_HOST:
        return host_event(body), []
    if kind == L.REC_TX:
        sent_packet(body)
        return None, []
    if kind == L.REC_CLIP:
        return None, []  # checked where every clip packet enters, live or logged: clip_packet
    raise RecordError(f"unknown record kind {kind}")


def header(body: bytes) -> tuple[dict, list[str]]:
    """The header as the host may use it: known fields of the wrong type or range are dropped
    (listed in the second value), names lose their control characters."""
    head = _json_object(body, "header")
    dropped = []
    for key in HEADER_TEXT:
        if key in head:
            if isinstance(head[key], str):
                head[key] = _plain_text(head[key])
            else:
                dropped.append(f"header field {key}: a JSON {_json_type(head.pop(key))}, not a string")
    for key, (lo, hi) in HEADER_INT_RANGES.items():
        if key in head and not (_is_int(head[key]) and lo <= head[key] <= hi):
            dropped.append(f"header field {key}: {_short(head.pop(key))} is not an integer in {lo}..{hi}")
    if "rate_hz" in head and not (_is_int(head["rate_hz"]) and head["rate_hz"] in steps.RATES_HZ):
        dropped.append(f"header field rate_hz: {_short(head.pop('rate_hz'))} is not one of {steps.RATES_HZ}")
    if "imported" in head:  # another sensor's provenance (docs/import.md): names, shown as text
        if isinstance(head["imported"], dict):
            head["imported"] = _plain_texts(head["imported"])
        else:
            dropped.append(f"header field imported: a JSON {_json_type(head.pop('imported'))}, not an object")
    if "started_at" in head:
        started = start_time(head["started_at"])
        if started is None:
            dropped.append(f"header field started_at: {_short(head.pop('started_at'))} is not a time in ISO 8601 "
                           f"between {EARLIEST_START.year} and {LATEST_START.year}: the start is unknown")
        else:
            head["started_at"] = started.isoformat(timespec="milliseconds")
    return head, dropped


def start_time(value: object) -> _dt.datetime | None:
    """An ISO 8601 start time as an aware UTC datetime (no zone: UTC); None if it is not one
    or lies outside the years a session can have."""
    if not isinstance(value, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(value)
        t = (t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    except (ValueError, OverflowError):
        return None
    return t if EARLIEST_START <= t < LATEST_START else None


def host_event(body: bytes) -> dict:
    event = _json_object(body, "host event")
    if not isinstance(event.get("event"), str) or not event["event"]:
        raise RecordError("host event without an event name")
    return event


def sent_packet(body: bytes) -> None:
    """A packet the host wrote to the clip: a well-formed COMMAND."""
    try:
        msg = decode_packet(body)
    except FrameError as e:
        raise RecordError(f"sent packet: {e}") from None
    if not isinstance(msg, P.Command):
        raise RecordError(f"sent packet is a {P.TYPE_NAMES[P.packet_type(body, len(body))]}, not a command")


def clip_packet(pkt: bytes | bytearray | memoryview) -> ClipMessage:
    """Decode a packet from a clip (live or logged) and check what the protocol's decoder leaves
    open: the direction, the sample index range, a rate and scale the step detector can run at.
    Raises a FrameError subclass (``strideclip.stream.packets``)."""
    msg = decode_packet(pkt)
    if isinstance(msg, P.Samples):  # (nearly every packet: first)
        if msg.first_idx + msg.count > SAMPLE_INDEX_END:
            raise FrameValueError(f"samples {msg.first_idx}+{msg.count} run past the largest sample index (u32)",
                                  offset=3)
        return msg
    if isinstance(msg, P.Command):
        raise UnknownFrameTypeError("a command packet: they go from the host to the clip, never back")
    if isinstance(msg, P.Hello):
        try:  # the step detector's own check: a rate it has a table for, a sensitivity it can scale
            steps.make_config(msg.rate_hz, msg.accel_ug_per_lsb)
        except ValueError as e:
            raise FrameValueError(f"hello: {e}", offset=5) from None
    return msg


def session_span_samples(rate_hz: int) -> int:
    """How far apart two samples of one clip session can be (any rate while it is unknown)."""
    return MAX_SESSION_S * (rate_hz or max(steps.RATES_HZ))


def _json_object(body: bytes, what: str) -> dict:
    try:
        value = json.loads(bytes(body).decode("utf-8"), parse_constant=_not_a_number, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: nested too deep to parse
        raise RecordError(f"{what} is not UTF-8 JSON ({type(e).__name__})") from None
    if not isinstance(value, dict):
        raise RecordError(f"{what} is a JSON {_json_type(value)}, not an object")
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise RecordError(f"{what} is nested more than {MAX_JSON_DEPTH} deep")
    return value


def _not_a_number(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e999: JSON that no other reader takes back
        raise ValueError(f"{text} is out of range")
    return v


def _deeper_than(value, limit: int) -> bool:
    todo = [(value, 1)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        if depth > limit:
            return True
        todo.extend((x, depth + 1) for x in v)
    return False


def _plain_text(s: str) -> str:
    """A name as every consumer can print and store it: no control characters (terminal escapes,
    NUL), line breaks or lone surrogates (no UTF-8 for them), at most MAX_TEXT_CHARS."""
    return "".join(c for c in s if unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp"))[:MAX_TEXT_CHARS]


def _plain_texts(v):
    """``v`` with every string in it made plain text (``_plain_text``), at any depth."""
    if isinstance(v, str):
        return _plain_text(v)
    if isinstance(v, dict):
        return {_plain_text(k): _plain_texts(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain_texts(x) for x in v]
    return v


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _json_type(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(v), "number")


def _short(v) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."
