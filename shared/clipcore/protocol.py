"""The StrideClip wire protocol, spoken by the clip (MicroPython) and the host (CPython).

Two layers (byte tables and worked examples: docs/protocol.md):

* A **packet** is one message, the payload of one BLE notification or write.
  Byte 0 is ``(PROTOCOL_VERSION << 4) | type``. Integers are little-endian.
* A **frame** wraps one packet for byte streams (USB serial, the flash log, host logs)::

      A5 5A | len u16 | packet (len bytes) | crc16 u16 over len and packet

  The sync marker and the CRC let a reader resynchronise after corruption.

Formats and ranges, stated once:

* raw IMU counts are int16, in the sensor frame, order accel x, y, z then gyro x, y, z;
  ``accel_ug_per_lsb`` (µg per count) and ``gyro_mdps_per_lsb_q8`` (mdps per count × 2^8)
  from the HELLO packet convert them to physical units;
* ``sample_idx`` is the clip's sample counter, u32 (2^32 samples = 119 days at 416 Hz);
  it is the time base everywhere;
* ``seq`` is a per-stream u16 packet counter that wraps (use ``seq_delta``).

The clip's hot path (``SampleBatcher.add``) allocates nothing. Decoders raise a subclass of
``ProtocolError`` and never return garbage. Functions that read fields of a packet by offset
(``u16``, ``u32``, ...) allocate nothing and suit the clip; ``decode`` returns named tuples and
suits the host. What the clip itself runs is in ``clipcore.wire`` and re-exported here.
"""
import struct  # noqa: F401  (re-exported for callers that packed with P.struct)
from collections import namedtuple

from clipcore.wire import *  # noqa: F401,F403  (the clip's part of the protocol)
from clipcore.wire import (BATTERY_UNKNOWN, COMMAND_ARG_BYTES, COMMAND_HEADER_BYTES, COMMAND_LAYOUTS, CUE_BYTES,
                           FRAME_OVERHEAD_BYTES, HELLO_BYTES, RESULT_BYTES, SAMPLE_BYTES, SAMPLES_HEADER_BYTES,
                           SIDE_LEFT, SIDE_RIGHT, SIDE_UNKNOWN, SOURCE_CLIP, SOURCE_HOST, STATUS_BYTES, STEP_BYTES,
                           T_BACKFILL, T_COMMAND, T_CUE, T_HELLO, T_LOG_DATA, T_RESULT, T_SAMPLES, T_STATUS, T_STEP,
                           BadValue, LOG_DATA_HEADER_BYTES,
                           LengthMismatch, TruncatedPacket, check_command_args, frame_into, header_byte, i16,
                           packet_type, parse_command, pack_samples_header, u16, u32)

TYPE_NAMES = {
    T_SAMPLES: "samples",
    T_BACKFILL: "backfill",
    T_HELLO: "hello",
    T_STEP: "step",
    T_CUE: "cue",
    T_STATUS: "status",
    T_COMMAND: "command",
    T_RESULT: "result",
    T_LOG_DATA: "log_data",
}

IMU_NAMES = {
    IMU_SIMULATED: "simulated",
    IMU_LSM6DSOX: "LSM6DSOX",
    IMU_LSM6DS3TRC: "LSM6DS3TR-C",
    IMU_ICM42688P: "ICM-42688-P",
    IMU_MPU6050: "MPU-6050",
    IMU_MPU6886: "MPU-6886",
}

CUE_KIND_NAMES = {CUE_BUZZ: "buzz", CUE_METRONOME_START: "metronome_start", CUE_METRONOME_STOP: "metronome_stop"}
REASON_NAMES = {
    REASON_MANUAL: "manual",
    REASON_CADENCE_DROP: "cadence_drop",
    REASON_CADENCE_FLOOR: "cadence_floor",
    REASON_ROTATION_SPIKE: "rotation_spike",
    REASON_DROP_SPIKE: "drop_spike",
    REASON_IMPACT_RISE: "impact_rise",
}

STATUS_NAMES = {
    STATUS_BOOT: "boot",
    STATUS_STREAM_STARTED: "stream_started",
    STATUS_STREAM_STOPPED: "stream_stopped",
    STATUS_BATTERY: "battery",
    STATUS_LOW_BATTERY: "low_battery",
    STATUS_IMU_ERROR: "imu_error",
    STATUS_FIFO_OVERFLOW: "fifo_overflow",
    STATUS_FLASH_FULL: "flash_full",
    STATUS_CONFIG_CHANGED: "config_changed",
    STATUS_BACKFILL_DONE: "backfill_done",
    STATUS_DETECTOR_RESYNC: "detector_resync",
    STATUS_CONFIG_ERROR: "config_error",
    STATUS_ERROR: "error",
    STATUS_SMALL_MTU: "small_mtu",
}
ERROR_NAMES = {ERROR_LOOP: "main loop", ERROR_BLE_EVENT: "BLE event handler", ERROR_FLASH: "flash write",
               ERROR_RESTARTING: "restarting"}

OPCODE_NAMES = {
    OP_START_STREAM: "start_stream",
    OP_STOP_STREAM: "stop_stream",
    OP_SET_CONFIG: "set_config",
    OP_BUZZ: "buzz",
    OP_METRONOME_START: "metronome_start",
    OP_METRONOME_STOP: "metronome_stop",
    OP_BACKFILL: "backfill",
    OP_HELLO: "hello",
    OP_LOG_LIST: "log_list",
    OP_LOG_READ: "log_read",
    OP_LOG_DELETE: "log_delete",
}

RESULT_NAMES = {
    RESULT_OK: "ok",
    RESULT_UNKNOWN_OPCODE: "unknown_opcode",
    RESULT_BAD_LENGTH: "bad_length",
    RESULT_OUT_OF_RANGE: "out_of_range",
    RESULT_NOT_AUTHENTICATED: "not_authenticated",
    RESULT_UNAVAILABLE: "unavailable",
    RESULT_BUSY: "busy",
    RESULT_BAD_PACKET: "bad_packet",
    RESULT_UNKNOWN_KEY: "unknown_key",
}

Samples = namedtuple("Samples", ("ptype", "seq", "first_idx", "count", "data"))
Hello = namedtuple(
    "Hello",
    (
        "fw_version",
        "imu_model",
        "rate_hz",
        "accel_fs_g",
        "gyro_fs_dps",
        "accel_ug_per_lsb",
        "gyro_mdps_per_lsb_q8",
        "clip_id",
        "session_id",
        "battery_pct",
        "samples_per_packet",
        "flags",
    ),
)
Step = namedtuple("Step", ("sample_idx", "side", "impact_mg", "step_samples", "flags"))
Cue = namedtuple("Cue", ("sample_idx", "kind", "reason", "source", "tempo_spm", "duration_s"))
Status = namedtuple("Status", ("sample_idx", "code", "value"))
Command = namedtuple("Command", ("cmd_id", "opcode", "args"))
Result = namedtuple("Result", ("cmd_id", "opcode", "code", "detail"))
LogData = namedtuple("LogData", ("log_no", "offset", "data"))



def pack_command(buf, cmd_id, opcode, args):
    """One COMMAND packet; args is a tuple laid out as COMMAND_LAYOUTS says. Checked first."""
    code = check_command_args(opcode, args)
    if code != RESULT_OK:
        raise BadValue("%s%s: %s" % (OPCODE_NAMES.get(opcode, opcode), args, RESULT_NAMES[code]))
    struct.pack_into("<BBB", buf, 0, header_byte(T_COMMAND), cmd_id & 0xFF, opcode)
    fmt = COMMAND_LAYOUTS[opcode][0]
    if fmt:
        struct.pack_into(fmt, buf, COMMAND_HEADER_BYTES, *args)
    return COMMAND_HEADER_BYTES + COMMAND_ARG_BYTES[opcode]


def _need(pkt_len, size, name):
    if pkt_len < size:
        raise TruncatedPacket("%s packet needs %d bytes, got %d" % (name, size, pkt_len), pkt_len)
    if pkt_len > size:
        raise LengthMismatch("%s packet is %d bytes, got %d" % (name, size, pkt_len), size)


def decode(pkt):
    """Decode one packet (bytes-like) into a named tuple; raise ProtocolError if malformed."""
    n = len(pkt)
    ptype = packet_type(pkt, n)
    if ptype == T_SAMPLES or ptype == T_BACKFILL:
        if n < SAMPLES_HEADER_BYTES:
            raise TruncatedPacket("samples header needs 8 bytes, got %d" % n, n)
        count = pkt[7]
        if count == 0:
            raise BadValue("samples packet with count 0", 7)
        if n != SAMPLES_HEADER_BYTES + SAMPLE_BYTES * count:
            raise LengthMismatch(
                "count %d needs %d bytes, got %d" % (count, SAMPLES_HEADER_BYTES + SAMPLE_BYTES * count, n), 7
            )
        return Samples(ptype, u16(pkt, 1), u32(pkt, 3), count, memoryview(pkt)[SAMPLES_HEADER_BYTES:n])
    if ptype == T_HELLO:
        _need(n, HELLO_BYTES, "hello")
        h = Hello(
            (pkt[1], pkt[2], pkt[3]), pkt[4], u16(pkt, 5), pkt[7], u16(pkt, 8), u16(pkt, 10), u16(pkt, 12),
            u32(pkt, 14), u16(pkt, 18), pkt[20], pkt[21], pkt[22],
        )
        if h.rate_hz == 0 or h.accel_fs_g == 0 or h.gyro_fs_dps == 0:
            raise BadValue("hello with zero rate or full-scale", 5)
        if h.accel_ug_per_lsb == 0 or h.gyro_mdps_per_lsb_q8 == 0 or h.samples_per_packet == 0:
            raise BadValue("hello with zero sensitivity or batch size", 10)
        if h.battery_pct > 100 and h.battery_pct != BATTERY_UNKNOWN:
            raise BadValue("battery %d %%" % h.battery_pct, 20)
        return h
    if ptype == T_STEP:
        _need(n, STEP_BYTES, "step")
        side = pkt[5]
        if side != SIDE_LEFT and side != SIDE_RIGHT and side != SIDE_UNKNOWN:
            raise BadValue("step side %d" % side, 5)
        return Step(u32(pkt, 1), side, u16(pkt, 6), u16(pkt, 8), pkt[10])
    if ptype == T_CUE:
        _need(n, CUE_BYTES, "cue")
        if pkt[5] not in CUE_KIND_NAMES:
            raise BadValue("cue kind %d" % pkt[5], 5)
        if pkt[7] != SOURCE_CLIP and pkt[7] != SOURCE_HOST:
            raise BadValue("cue source %d" % pkt[7], 7)
        return Cue(u32(pkt, 1), pkt[5], pkt[6], pkt[7], u16(pkt, 8), u16(pkt, 10))
    if ptype == T_STATUS:
        _need(n, STATUS_BYTES, "status")
        return Status(u32(pkt, 1), pkt[5], i32(pkt, 6))
    if ptype == T_RESULT:
        _need(n, RESULT_BYTES, "result")
        if pkt[3] not in RESULT_NAMES:
            raise BadValue("result code %d" % pkt[3], 3)
        return Result(pkt[1], pkt[2], pkt[3], i32(pkt, 4))
    if ptype == T_LOG_DATA:
        if n <= LOG_DATA_HEADER_BYTES:
            raise TruncatedPacket("log data needs more than 6 bytes, got %d" % n, n)
        return LogData(pkt[1], u32(pkt, 2), bytes(pkt[LOG_DATA_HEADER_BYTES:n]))
    # T_COMMAND
    return Command(*parse_command(pkt))


def frame(pkt):
    """Host helper: the frame bytes for one packet."""
    out = bytearray(len(pkt) + FRAME_OVERHEAD_BYTES)
    frame_into(out, 0, pkt, len(pkt))
    return bytes(out)


# ---- host helpers (the clip does not load them) -----------------------------------------------


def seq_delta(prev_seq, seq):
    """Packets from prev_seq to seq, modulo 2^16 (1 = the next packet)."""
    return (seq - prev_seq) & 0xFFFF


def max_samples_for_mtu(mtu):
    """Samples that fit one notification at this ATT MTU (19 at 247, 1 at 23)."""
    return (mtu - ATT_OVERHEAD_BYTES - SAMPLES_HEADER_BYTES) // SAMPLE_BYTES


def pack_samples(buf, ptype, seq, first_idx, samples):
    """One SAMPLES or BACKFILL packet from a sequence of 6-int tuples; return its length."""
    count = len(samples)
    if not 1 <= count <= 255:
        raise BadValue("a batch holds 1..255 samples")
    off = SAMPLES_HEADER_BYTES
    for s in samples:
        struct.pack_into("<hhhhhh", buf, off, s[0], s[1], s[2], s[3], s[4], s[5])
        off += SAMPLE_BYTES
    return pack_samples_header(buf, ptype, seq, first_idx, count)


def sample_at(data, i, out):
    """Copy sample i of a samples payload into out[0:6] (an int array). Allocates nothing."""
    off = SAMPLE_BYTES * i
    out[0] = i16(data, off)
    out[1] = i16(data, off + 2)
    out[2] = i16(data, off + 4)
    out[3] = i16(data, off + 6)
    out[4] = i16(data, off + 8)
    out[5] = i16(data, off + 10)


def i32(b, i):
    v = u32(b, i)
    return v - 0x100000000 if v & 0x80000000 else v
