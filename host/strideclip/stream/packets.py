"""Host-side access to clipcore.protocol: the same decoder, with errors mapped to StrideClipError.

The host never reimplements the protocol; it calls ``clipcore.protocol`` and converts its
``ProtocolError`` subclasses into the host's error tree so callers catch one root.
"""
from __future__ import annotations

import numpy as np

from clipcore import protocol as P
from strideclip.errors import (
    CorruptFrameError,
    FrameError,
    FrameLengthError,
    FrameValueError,
    TruncatedFrameError,
    UnknownFrameTypeError,
    UnsupportedVersionError,
)

_ERROR_MAP = {
    P.TruncatedPacket: TruncatedFrameError,
    P.BadCrc: CorruptFrameError,
    P.UnknownVersion: UnsupportedVersionError,
    P.UnknownType: UnknownFrameTypeError,
    P.UnknownOpcode: UnknownFrameTypeError,
    P.LengthMismatch: FrameLengthError,
    P.BadValue: FrameValueError,
}


# What clipcore.protocol decodes a packet into: one named tuple per packet type
Message = P.Samples | P.Hello | P.Step | P.Cue | P.Status | P.Command | P.Result | P.LogData
ClipMessage = P.Samples | P.Hello | P.Step | P.Cue | P.Status | P.Result | P.LogData  # all but a command


def host_error(e: P.ProtocolError) -> FrameError:
    """The StrideClipError subclass for a clipcore ProtocolError."""
    return _ERROR_MAP.get(type(e), FrameError)(str(e), offset=e.offset)


def decode_packet(pkt: bytes | bytearray | memoryview) -> Message:
    """Decode one packet with clipcore; raise a FrameError subclass if it is malformed."""
    try:
        return P.decode(pkt)
    except P.ProtocolError as e:
        raise host_error(e) from e


_COUNTS_DTYPE = np.dtype("<i2")  # the raw counts as a packet holds them


def samples_array(msg: P.Samples) -> np.ndarray:
    """The raw int16 counts of a SAMPLES/BACKFILL packet as an (n, 6) array: a read-only view of
    the packet when its bytes cannot change (``bytes``: a log's records, a simulated link), else a
    copy (a bytearray a link may reuse for its next packet)."""
    counts = np.ndarray((msg.count, 6), _COUNTS_DTYPE, msg.data)  # (np.frombuffer and a reshape: twice the time)
    owner = msg.data.obj if isinstance(msg.data, memoryview) else msg.data
    if type(owner) is bytes and _COUNTS_DTYPE.isnative:
        return counts
    return counts.astype(np.int16)


def encode_samples(seq: int, first_idx: int, counts: np.ndarray, *, backfill: bool = False) -> bytes:
    """One SAMPLES (or BACKFILL) packet from an (n, 6) int16 array; the host/simulator side."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != 6 or not 1 <= len(counts) <= 255:
        raise ValueError(f"expected 1..255 samples of 6 axes, got shape {counts.shape}")
    if counts.min(initial=0) < -32768 or counts.max(initial=0) > 32767:
        raise ValueError("raw counts must fit int16")
    header = bytearray(P.SAMPLES_HEADER_BYTES)
    P.pack_samples_header(header, P.T_BACKFILL if backfill else P.T_SAMPLES, seq, first_idx, len(counts))
    return bytes(header) + counts.astype("<i2").tobytes()


def encode_packet(msg: Message) -> bytes:
    """The packet bytes for a decoded message (the inverse of ``decode_packet``)."""
    buf = bytearray(P.MAX_PACKET_BYTES)
    if isinstance(msg, P.Samples):
        counts = np.frombuffer(bytes(msg.data), dtype="<i2").reshape(msg.count, 6)
        return encode_samples(msg.seq, msg.first_idx, counts, backfill=msg.ptype == P.T_BACKFILL)
    if isinstance(msg, P.Hello):
        n = P.pack_hello(buf, msg)
    elif isinstance(msg, P.Step):
        n = P.pack_step(buf, *msg)
    elif isinstance(msg, P.Cue):
        n = P.pack_cue(buf, *msg)
    elif isinstance(msg, P.Status):
        n = P.pack_status(buf, *msg)
    elif isinstance(msg, P.Command):
        try:
            n = P.pack_command(buf, msg.cmd_id, msg.opcode, tuple(msg.args))
        except P.ProtocolError as e:
            raise host_error(e) from e
    elif isinstance(msg, P.Result):
        n = P.pack_result(buf, *msg)
    elif isinstance(msg, P.LogData):
        n = P.pack_log_data_header(buf, msg.log_no, msg.offset)
        buf[n:n + len(msg.data)] = msg.data
        n += len(msg.data)
    else:
        raise TypeError(f"not a clipcore.protocol message: {msg!r}")
    return bytes(buf[:n])
