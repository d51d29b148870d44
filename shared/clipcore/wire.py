"""The StrideClip wire protocol: what the clip needs to speak it (docs/protocol.md).

Constants, the encoders, command parsing and checking, and stream framing. The host's
``clipcore.protocol`` adds the decoders, the named tuples and the names; it re-exports all of
this, so the clip loads only this module (RAM on an ESP32 without PSRAM is ~100 kB) while both
run the same code for everything the clip does.

``pack_hello`` takes the HELLO fields as a tuple in the order of ``protocol.Hello``.
"""
import struct

from clipcore.crc import crc16

try:
    import micropython
    from micropython import const
except ImportError:  # CPython (clipcore.viper)
    from clipcore.viper import micropython, ptr8, ptr16

    def const(x):
        return x


PROTOCOL_VERSION = const(1)

# Packet types (low nibble of byte 0). 0 is never valid, so zeroed memory is rejected.
T_SAMPLES = const(0x1)  # live IMU sample batch
T_BACKFILL = const(0x2)  # IMU sample batch resent on request, same layout as T_SAMPLES
T_HELLO = const(0x3)  # session record: who the clip is and how to read its counts
T_STEP = const(0x4)  # step detected on the clip
T_CUE = const(0x5)  # cue played by the clip
T_STATUS = const(0x6)  # status or error code
T_COMMAND = const(0x7)  # host -> clip control command
T_RESULT = const(0x8)  # clip -> host result of a command
T_LOG_DATA = const(0x9)  # clip -> host: a piece of a session log on the clip's flash


SAMPLES_HEADER_BYTES = const(8)
SAMPLE_BYTES = const(12)  # 6 x int16
HELLO_BYTES = const(23)
STEP_BYTES = const(11)
CUE_BYTES = const(12)
STATUS_BYTES = const(10)
COMMAND_HEADER_BYTES = const(3)
RESULT_BYTES = const(8)
LOG_DATA_HEADER_BYTES = const(6)  # header, log_no u8, offset u32
LOG_CHUNK_BYTES = const(224)  # log bytes per LOG_DATA packet (fits an MTU of 233 or more)

# BLE: an ATT notification carries at most MTU - 3 bytes.
ATT_OVERHEAD_BYTES = const(3)

# Sides of a step.
SIDE_LEFT = const(0)
SIDE_RIGHT = const(1)
SIDE_UNKNOWN = const(255)

# IMU models named in HELLO.
IMU_SIMULATED = const(0)
IMU_LSM6DSOX = const(1)
IMU_LSM6DS3TRC = const(2)
IMU_ICM42688P = const(3)
IMU_MPU6050 = const(4)
IMU_MPU6886 = const(5)

BATTERY_UNKNOWN = const(255)

# HELLO flags.
HELLO_FLAG_STANDALONE = const(0x01)  # the clip was logging to flash without a host
HELLO_FLAG_BACKFILL = const(0x02)  # the clip keeps a backfill store

# Cue kinds, reasons and sources.
CUE_BUZZ = const(1)
CUE_METRONOME_START = const(2)
CUE_METRONOME_STOP = const(3)
REASON_MANUAL = const(0)
REASON_CADENCE_DROP = const(1)
REASON_CADENCE_FLOOR = const(2)
REASON_ROTATION_SPIKE = const(3)
REASON_DROP_SPIKE = const(4)
REASON_IMPACT_RISE = const(5)
SOURCE_CLIP = const(0)
SOURCE_HOST = const(1)

# Status codes (STATUS.value meaning in brackets).
STATUS_BOOT = const(1)  # [reset cause]
STATUS_STREAM_STARTED = const(2)  # [0]
STATUS_STREAM_STOPPED = const(3)  # [0]
STATUS_BATTERY = const(4)  # [percent]
STATUS_LOW_BATTERY = const(5)  # [percent]
STATUS_IMU_ERROR = const(6)  # [driver error code]
STATUS_FIFO_OVERFLOW = const(7)  # [samples lost]
STATUS_FLASH_FULL = const(8)  # [bytes written]
STATUS_CONFIG_CHANGED = const(9)  # [config key]
STATUS_BACKFILL_DONE = const(10)  # [samples sent]
STATUS_DETECTOR_RESYNC = const(11)  # [samples missing]
STATUS_CONFIG_ERROR = const(12)  # [0]: the config file was refused; the clip runs on its defaults
STATUS_ERROR = const(13)  # [where, ERROR_*]: the clip caught an error there and carried on
STATUS_SMALL_MTU = const(14)  # [MTU]: too small for a SAMPLES packet; samples go to flash and the store
# Where a caught error was (STATUS_ERROR's value).
ERROR_LOOP = const(1)  # a pass of the main loop
ERROR_BLE_EVENT = const(2)  # the BLE event handler (the stack would otherwise drop it for good)
ERROR_FLASH = const(3)  # a write to flash other than the log (bonds, backfill store, session counter)
ERROR_RESTARTING = const(4)  # the main loop failed pass after pass: the clip restarts itself

# Command opcodes and the byte length of their arguments.
OP_START_STREAM = const(1)  # no args
OP_STOP_STREAM = const(2)  # no args
OP_SET_CONFIG = const(3)  # key u8, value i32
OP_BUZZ = const(4)  # pattern u8, count u8, on_ms u16, intensity_pct u8
OP_METRONOME_START = const(5)  # tempo_spm u16, duration_s u16
OP_METRONOME_STOP = const(6)  # no args
OP_BACKFILL = const(7)  # first_idx u32, count u32
OP_HELLO = const(8)  # no args: ask the clip to send its HELLO
OP_LOG_LIST = const(9)  # no args: how many session logs the clip holds
OP_LOG_READ = const(10)  # log_no u8, offset u32, count u32: send that part as LOG_DATA (0: size only)
OP_LOG_DELETE = const(11)  # log_no u8, size u32: remove the log if it still has that size
# Argument layout of each opcode: struct format and number of arguments.
COMMAND_LAYOUTS = {
    OP_START_STREAM: ("", 0),
    OP_STOP_STREAM: ("", 0),
    OP_SET_CONFIG: ("<Bi", 2),
    OP_BUZZ: ("<BBHB", 4),
    OP_METRONOME_START: ("<HH", 2),
    OP_METRONOME_STOP: ("", 0),
    OP_BACKFILL: ("<II", 2),
    OP_HELLO: ("", 0),
    OP_LOG_LIST: ("", 0),
    OP_LOG_READ: ("<BII", 3),
    OP_LOG_DELETE: ("<BI", 2),
}
COMMAND_ARG_BYTES = {op: (struct.calcsize(fmt) if fmt else 0) for op, (fmt, _) in COMMAND_LAYOUTS.items()}

# Limits on command arguments, checked by the clip before it acts and by the host before it sends.
TEMPO_SPM_MIN = const(60)
TEMPO_SPM_MAX = const(240)
METRONOME_S_MAX = const(3600)  # 0 means "until stopped"
BUZZ_PATTERN_MAX = const(3)  # 0 single, 1 double, 2 triple, 3 long
BUZZ_COUNT_MAX = const(10)
BUZZ_ON_MS_MIN = const(10)
BUZZ_ON_MS_MAX = const(2000)

# Result codes.
RESULT_OK = const(0)
RESULT_UNKNOWN_OPCODE = const(1)
RESULT_BAD_LENGTH = const(2)
RESULT_OUT_OF_RANGE = const(3)
RESULT_NOT_AUTHENTICATED = const(4)
RESULT_UNAVAILABLE = const(5)  # e.g. a backfill range the clip no longer holds
RESULT_BUSY = const(6)
RESULT_BAD_PACKET = const(7)  # wrong version or not a command
RESULT_UNKNOWN_KEY = const(8)

# BLE: the clip's GATT service (docs/protocol.md, "BLE"). 128-bit UUIDs as strings: the clip
# makes bluetooth.UUID objects of them, the host hands them to bleak.
BLE_SERVICE_UUID = "5c1a0001-7a3e-4b9e-9d2c-51a0c11b0001"
BLE_SAMPLES_UUID = "5c1a0002-7a3e-4b9e-9d2c-51a0c11b0001"  # notify: SAMPLES and BACKFILL packets
BLE_EVENTS_UUID = "5c1a0003-7a3e-4b9e-9d2c-51a0c11b0001"  # notify: HELLO, STEP, CUE, STATUS
BLE_CONTROL_UUID = "5c1a0004-7a3e-4b9e-9d2c-51a0c11b0001"  # write: COMMAND; notify: RESULT
BLE_MTU = const(247)  # requested by the clip; 19 samples per notification

# Stream framing.
SYNC0 = const(0xA5)
SYNC1 = const(0x5A)
SYNC = b"\xa5\x5a"
FRAME_HEADER_BYTES = const(4)  # sync + len
FRAME_OVERHEAD_BYTES = const(6)  # sync + len + crc
MAX_PACKET_BYTES = const(8192)  # host records in logs can be larger than any clip packet

# find_frame() outcomes.
FRAME_OK = const(0)
FRAME_NEED_MORE = const(1)  # a frame may start here but is not complete yet
FRAME_BAD_CRC = const(2)  # sync + length looked right, CRC did not: skip one byte and search again
FRAME_BAD_LENGTH = const(3)  # sync followed by an impossible length
FRAME_NO_SYNC = const(4)  # no sync marker in the buffer


class ProtocolError(ValueError):
    """Root of every decoding error; ``offset`` is where in the packet/stream it was found."""

    def __init__(self, message, offset=0):
        super().__init__(message)
        self.offset = offset


class TruncatedPacket(ProtocolError):
    pass


class BadCrc(ProtocolError):
    pass


class UnknownVersion(ProtocolError):
    pass


class UnknownType(ProtocolError):
    pass


class UnknownOpcode(ProtocolError):
    pass


class LengthMismatch(ProtocolError):
    pass


class BadValue(ProtocolError):
    pass


# ---- field access by offset: no allocation -------------------------------------------------


def u16(b, i):
    return b[i] | (b[i + 1] << 8)


def i16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def u32(b, i):
    return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)


def header_byte(ptype):
    return (PROTOCOL_VERSION << 4) | ptype


# ---- encoding: into a caller's buffer, return the packet length --------------------------


class SampleBatcher:
    """Packs IMU samples into SAMPLES packets in one buffer made once.

    ``add`` returns True when the packet is full; the caller then sends ``packet()`` and calls
    ``next_packet()``. ``add`` allocates nothing (checked under heap_lock in the tests).
    """

    def __init__(self, samples_per_packet, first_idx=0, ptype=T_SAMPLES):
        if not 1 <= samples_per_packet <= 255:
            raise BadValue("samples_per_packet must be 1..255")
        self.capacity = samples_per_packet
        self.buf = bytearray(SAMPLES_HEADER_BYTES + SAMPLE_BYTES * samples_per_packet)
        self.buf[0] = header_byte(ptype)
        self.seq = 0
        self.first_idx = first_idx
        self.count = 0

    def add(self, ax, ay, az, gx, gy, gz):
        struct.pack_into("<hhhhhh", self.buf, SAMPLES_HEADER_BYTES + SAMPLE_BYTES * self.count, ax, ay, az, gx, gy, gz)
        self.count += 1
        return self.count == self.capacity

    def fill(self, samples, start, n):
        """Copy up to n samples from a flat int16 array (6 per sample, from sample start) into
        the packet; return how many were taken (fewer when it filled up). Allocates nothing."""
        k = self.capacity - self.count
        if n < k:
            k = n
        _copy_le16(self.buf, SAMPLES_HEADER_BYTES + SAMPLE_BYTES * self.count, samples, 6 * start, 6 * (start + k))
        self.count += k
        return k

    def packet_len(self):
        """Write the header for the samples added so far; return the packet length."""
        return pack_samples_header(self.buf, self.buf[0] & 0x0F, self.seq, self.first_idx, self.count)

    def packet(self):
        return memoryview(self.buf)[: self.packet_len()]

    def next_packet(self):
        nxt = self.first_idx + self.count
        if nxt > 0xFFFFFFFF:  # wraps as a u32 (a comparison, not a mask: no big int per packet on a 32-bit port)
            nxt -= 0x100000000
        self.first_idx = nxt
        self.seq = (self.seq + 1) & 0xFFFF
        self.count = 0


@micropython.viper
def _copy_le16(buf, o: int, values, i: int, end: int):
    """values[i:end] (int16) into buf from byte o, little-endian. Viper on the clip: every
    sample goes through here."""
    b = ptr8(buf)
    v16 = ptr16(values)
    while i < end:
        v = v16[i]
        b[o] = v & 0xFF
        b[o + 1] = (v >> 8) & 0xFF
        o += 2
        i += 1


def pack_samples_header(buf, ptype, seq, first_idx, count):
    """Write the 8-byte header of a SAMPLES/BACKFILL packet; return the whole packet's length."""
    struct.pack_into("<BHIB", buf, 0, header_byte(ptype), seq & 0xFFFF, first_idx, count)
    return SAMPLES_HEADER_BYTES + SAMPLE_BYTES * count


def pack_hello(buf, h):
    struct.pack_into(
        "<BBBBBHBHHHIHBBB",
        buf,
        0,
        header_byte(T_HELLO),
        h[0][0],
        h[0][1],
        h[0][2],
        h[1],
        h[2],
        h[3],
        h[4],
        h[5],
        h[6],
        h[7],
        h[8],
        h[9],
        h[10],
        h[11],
    )
    return HELLO_BYTES


def pack_step(buf, sample_idx, side, impact_mg, step_samples, flags):
    struct.pack_into("<BIBHHB", buf, 0, header_byte(T_STEP), sample_idx, side, impact_mg, step_samples, flags)
    return STEP_BYTES


def pack_cue(buf, sample_idx, kind, reason, source, tempo_spm, duration_s):
    struct.pack_into("<BIBBBHH", buf, 0, header_byte(T_CUE), sample_idx, kind, reason, source, tempo_spm, duration_s)
    return CUE_BYTES


def pack_status(buf, sample_idx, code, value):
    struct.pack_into("<BIBi", buf, 0, header_byte(T_STATUS), sample_idx, code, value)
    return STATUS_BYTES


def pack_result(buf, cmd_id, opcode, code, detail):
    struct.pack_into("<BBBBi", buf, 0, header_byte(T_RESULT), cmd_id, opcode, code, detail)
    return RESULT_BYTES


def pack_log_data_header(buf, log_no, offset):
    """The header of a LOG_DATA packet; the caller puts the log's bytes after it."""
    struct.pack_into("<BBI", buf, 0, header_byte(T_LOG_DATA), log_no, offset)
    return LOG_DATA_HEADER_BYTES


def check_command_args(opcode, args):
    """Result code for a command's arguments: RESULT_OK or why the clip must refuse it."""
    if opcode not in COMMAND_LAYOUTS:
        return RESULT_UNKNOWN_OPCODE
    if len(args) != COMMAND_LAYOUTS[opcode][1]:
        return RESULT_BAD_LENGTH
    if opcode == OP_SET_CONFIG:
        if not (0 <= args[0] <= 255 and -0x80000000 <= args[1] <= 0x7FFFFFFF):
            return RESULT_OUT_OF_RANGE
    elif opcode == OP_BUZZ:
        pattern, count, on_ms, intensity_pct = args
        if not (0 <= pattern <= BUZZ_PATTERN_MAX and 1 <= count <= BUZZ_COUNT_MAX):
            return RESULT_OUT_OF_RANGE
        if not (BUZZ_ON_MS_MIN <= on_ms <= BUZZ_ON_MS_MAX and 1 <= intensity_pct <= 100):
            return RESULT_OUT_OF_RANGE
    elif opcode == OP_METRONOME_START:
        tempo_spm, duration_s = args
        if not (TEMPO_SPM_MIN <= tempo_spm <= TEMPO_SPM_MAX and 0 <= duration_s <= METRONOME_S_MAX):
            return RESULT_OUT_OF_RANGE
    elif opcode == OP_BACKFILL:
        first_idx, count = args
        if not (0 <= first_idx <= 0xFFFFFFFF and 1 <= count <= 0xFFFFFFFF):
            return RESULT_OUT_OF_RANGE
    elif opcode == OP_LOG_READ or opcode == OP_LOG_DELETE:
        for i in range(len(args)):  # log_no u8, then u32s: offset and count, or size
            if not 0 <= args[i] <= (255 if i == 0 else 0xFFFFFFFF):
                return RESULT_OUT_OF_RANGE
    return RESULT_OK


# ---- decoding -------------------------------------------------------------------------------


def packet_type(pkt, n):
    """Type of the n-byte packet in pkt, after checking its version byte."""
    if n < 1:
        raise TruncatedPacket("empty packet")
    version = pkt[0] >> 4
    if version != PROTOCOL_VERSION:
        raise UnknownVersion("protocol version %d, this code speaks %d" % (version, PROTOCOL_VERSION))
    ptype = pkt[0] & 0x0F
    if not T_SAMPLES <= ptype <= T_LOG_DATA:
        raise UnknownType("unknown packet type 0x%x" % ptype)
    return ptype


def parse_command(pkt):
    """(cmd_id, opcode, args) of a COMMAND packet; raise ProtocolError if malformed."""
    n = len(pkt)
    if packet_type(pkt, n) != T_COMMAND:
        raise UnknownType("not a command packet")
    if n < COMMAND_HEADER_BYTES:
        raise TruncatedPacket("command needs 3 bytes, got %d" % n, n)
    opcode = pkt[2]
    if opcode not in COMMAND_LAYOUTS:
        raise UnknownOpcode("unknown opcode %d" % opcode, 2)
    size = COMMAND_HEADER_BYTES + COMMAND_ARG_BYTES[opcode]
    if n < size:
        raise TruncatedPacket("command %d needs %d bytes, got %d" % (opcode, size, n), n)
    if n > size:
        raise LengthMismatch("command %d is %d bytes, got %d" % (opcode, size, n), size)
    fmt = COMMAND_LAYOUTS[opcode][0]
    return pkt[1], opcode, tuple(struct.unpack_from(fmt, pkt, COMMAND_HEADER_BYTES)) if fmt else ()


def command_result_code(pkt):
    """The result code a clip answers to a received write: RESULT_OK if it may act on it."""
    try:
        if packet_type(pkt, len(pkt)) != T_COMMAND:
            return RESULT_BAD_PACKET
        _, opcode, args = parse_command(pkt)
    except UnknownOpcode:
        return RESULT_UNKNOWN_OPCODE
    except (TruncatedPacket, LengthMismatch):
        return RESULT_BAD_LENGTH
    except ProtocolError:
        return RESULT_BAD_PACKET
    return check_command_args(opcode, args)


# ---- framing for byte streams ---------------------------------------------------------------


def frame_into(out, pos, pkt, n):
    """Write one frame holding pkt[0:n] into out at pos; return the position after it.

    Allocates nothing (checked under heap_lock in the tests).
    """
    out[pos] = SYNC0
    out[pos + 1] = SYNC1
    out[pos + 2] = n & 0xFF
    out[pos + 3] = n >> 8
    if n == len(pkt):
        out[pos + 4 : pos + 4 + n] = pkt  # no allocation: full batches and the host take this path
    else:
        for i in range(n):  # short packets from a larger buffer (events): a view would allocate
            out[pos + 4 + i] = pkt[i]
    crc = crc16(out, pos + 2, pos + 4 + n)
    out[pos + 4 + n] = crc & 0xFF
    out[pos + 5 + n] = crc >> 8
    return pos + FRAME_OVERHEAD_BYTES + n


def find_frame(buf, pos, end, max_packet):
    """Look for the next frame in buf[pos:end] (buf: bytes or bytearray).

    Returns (outcome, at, n):
      FRAME_OK         - a frame starts at ``at``: its packet is buf[at+4:at+4+n] and the next
                         frame may start at at + n + 6
      FRAME_NEED_MORE  - a frame may start at ``at``; keep buf[at:] and read more
      FRAME_BAD_CRC,
      FRAME_BAD_LENGTH - the candidate at ``at`` is not a frame; search again from at + 1
      FRAME_NO_SYNC    - nothing here; keep only the last byte (it may be half a sync)
    Bytes between pos and ``at`` are garbage the caller counts as dropped.
    """
    at = buf.find(SYNC, pos, end)
    if at < 0:
        return FRAME_NO_SYNC, max(pos, end - 1), 0
    if end - at < FRAME_HEADER_BYTES:
        return FRAME_NEED_MORE, at, 0
    n = buf[at + 2] | (buf[at + 3] << 8)
    if n == 0 or n > max_packet:
        return FRAME_BAD_LENGTH, at, n
    if end - at < FRAME_OVERHEAD_BYTES + n:
        return FRAME_NEED_MORE, at, n
    crc = crc16(buf, at + 2, at + 4 + n)
    if crc != (buf[at + 4 + n] | (buf[at + 5 + n] << 8)):
        return FRAME_BAD_CRC, at, n
    return FRAME_OK, at, n


class Deframer:
    """Turns a byte stream (serial, a file read in chunks) into packets, resynchronising on damage.

    Feed bytes with ``feed``; call ``next_packet`` until it returns None. Counters say what was
    dropped: ``dropped_bytes`` (garbage and damaged frames) and ``bad_frames``.
    """

    def __init__(self, max_packet=MAX_PACKET_BYTES, capacity=0):
        self.max_packet = max_packet
        self.buf = bytearray(capacity or 2 * (max_packet + FRAME_OVERHEAD_BYTES))
        self.pos = 0  # first byte not yet consumed
        self.end = 0  # one past the last byte fed
        self.dropped_bytes = 0
        self.bad_frames = 0
        self.frames = 0

    def feed(self, data):
        """Append bytes. The buffer is made once; it grows only if one feed exceeds it."""
        n = len(data)
        if self.end + n > len(self.buf):
            keep = self.end - self.pos
            if keep + n > len(self.buf):
                grown = bytearray(keep + n + len(self.buf))
                grown[0:keep] = self.buf[self.pos : self.end]
                self.buf = grown
            else:
                self.buf[0:keep] = self.buf[self.pos : self.end]
            self.pos = 0
            self.end = keep
        self.buf[self.end : self.end + n] = data
        self.end += n

    def next_packet(self, eof=False):
        """The next complete packet as bytes, or None if more input is needed.

        With eof=True the stream has ended: a frame that can no longer be completed is dropped
        and the search goes on after its sync marker, so no later frame is held back.
        """
        buf = self.buf
        end = self.end
        while True:
            outcome, at, n = find_frame(buf, self.pos, end, self.max_packet)
            self.dropped_bytes += at - self.pos
            self.pos = at
            if outcome == FRAME_OK:
                self.pos = at + FRAME_OVERHEAD_BYTES + n
                self.frames += 1
                return bytes(buf[at + FRAME_HEADER_BYTES : at + FRAME_HEADER_BYTES + n])
            if outcome == FRAME_NO_SYNC:
                if eof:
                    self.dropped_bytes += end - self.pos
                    self.pos = end
                return None
            if outcome == FRAME_NEED_MORE and not eof:
                return None
            self.bad_frames += 1
            self.dropped_bytes += 1
            self.pos = at + 1

    def pending_bytes(self):
        """Bytes held back waiting for the rest of a frame (lost if the stream ends now)."""
        return self.end - self.pos
