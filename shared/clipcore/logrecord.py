"""Session log records: the on-disk unit of every StrideClip log, on the clip's flash and the host.

A log file is ``LOG_MAGIC`` (8 bytes, holding the log format version) followed by frames
(clipcore.protocol framing: A5 5A | len u16 | payload | crc16) whose payload is a record::

    kind u8 | t_ms u32 | body

``t_ms`` is milliseconds since the log started, on the writer's clock (the host's monotonic clock
for host logs, ticks_ms for the clip's flash log). Kinds:

* REC_HEADER - UTF-8 JSON: athlete, start time, software version, source (first record)
* REC_CLIP   - one clip packet exactly as received (SAMPLES, HELLO, STEP, ...)
* REC_HOST   - UTF-8 JSON host event: cue sent, reconnect, gap, backfill, ...
* REC_TX     - one packet the host wrote to the clip (a COMMAND)

Byte tables: docs/log-format.md.
"""
from clipcore.crc import crc16
from clipcore.wire import FRAME_OVERHEAD_BYTES, SYNC0, SYNC1

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


LOG_VERSION = const(1)
LOG_MAGIC = b"SCLOG\x01\r\n"  # "SCLOG", version byte, CR LF (catches text-mode mangling)
LOG_MAGIC_BYTES = const(8)

REC_HEADER = const(1)
REC_CLIP = const(2)
REC_HOST = const(3)
REC_TX = const(4)
RECORD_KIND_NAMES = {REC_HEADER: "header", REC_CLIP: "clip", REC_HOST: "host", REC_TX: "tx"}

RECORD_PREFIX_BYTES = const(5)  # kind + t_ms
RECORD_OVERHEAD_BYTES = const(11)  # frame overhead + record prefix


def record_into(out, pos, kind, t_ms, body, n):
    """Write one framed record holding body[0:n] into out at pos; return the position after it.

    Allocates nothing, so the clip can log every packet as it sends it.
    """
    size = RECORD_PREFIX_BYTES + n
    out[pos] = SYNC0
    out[pos + 1] = SYNC1
    out[pos + 2] = size & 0xFF
    out[pos + 3] = size >> 8
    out[pos + 4] = kind
    if not 0 <= t_ms <= 0x3FFFFFFF:  # (only then: on a 32-bit port the mask makes a big int)
        t_ms &= 0xFFFFFFFF
    out[pos + 5] = t_ms & 0xFF
    out[pos + 6] = (t_ms >> 8) & 0xFF
    out[pos + 7] = (t_ms >> 16) & 0xFF
    out[pos + 8] = t_ms >> 24
    start = pos + 4 + RECORD_PREFIX_BYTES
    if n == len(body):
        out[start : start + n] = body
    else:
        for i in range(n):  # a short record from a larger buffer: a view would allocate
            out[start + i] = body[i]
    crc = crc16(out, pos + 2, start + n)
    out[start + n] = crc & 0xFF
    out[start + n + 1] = crc >> 8
    return pos + FRAME_OVERHEAD_BYTES + size


def record(kind, t_ms, body):
    """Host helper: the framed bytes of one record."""
    out = bytearray(RECORD_OVERHEAD_BYTES + len(body))
    record_into(out, 0, kind, t_ms, body, len(body))
    return bytes(out)
