"""clipcore.protocol on CPython: round trips, limits, framing, resynchronisation, fuzzing."""
import binascii
import random

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clipcore import protocol as P
from clipcore.crc import crc16, crc16_table
from strideclip import errors
from strideclip.stream.packets import decode_packet, encode_packet, encode_samples, samples_array

int16 = st.integers(-32768, 32767)
sample = st.tuples(int16, int16, int16, int16, int16, int16)
u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)

hellos = st.builds(
    P.Hello,
    st.tuples(u8, u8, u8), st.sampled_from(sorted(P.IMU_NAMES)), st.sampled_from([104, 208, 416]),
    st.sampled_from([2, 4, 8, 16]), st.sampled_from([125, 250, 500, 1000, 2000]),
    st.integers(1, 0xFFFF), st.integers(1, 0xFFFF), u32, u16,
    st.one_of(st.integers(0, 100), st.just(P.BATTERY_UNKNOWN)), st.integers(1, 255), u8,
)


def test_crc_check_value_and_table_agree_with_c_implementation():
    assert crc16(b"123456789") == 0x29B1
    data = bytes(random.Random(1).randbytes(4096))
    assert crc16_table(data, 0, len(data), 0xFFFF) == binascii.crc_hqx(data, 0xFFFF)


@given(st.binary(max_size=600), st.integers(0, 0xFFFF))
def test_crc_table_matches_crc_hqx(data, init):
    assert crc16_table(data, 0, len(data), init) == binascii.crc_hqx(data, init)


@given(st.lists(sample, min_size=1, max_size=19), u16, u32, st.booleans())
def test_samples_round_trip(samples, seq, first_idx, backfill):
    pkt = encode_samples(seq, first_idx, np.array(samples, dtype=np.int16), backfill=backfill)
    msg = decode_packet(pkt)
    assert msg.ptype == (P.T_BACKFILL if backfill else P.T_SAMPLES)
    assert (msg.seq, msg.first_idx, msg.count) == (seq, first_idx, len(samples))
    assert samples_array(msg).tolist() == [list(s) for s in samples]


def test_samples_are_a_view_only_of_bytes_that_cannot_change():
    """A log's records are bytes: the counts are read in place (#26). A link may hand a bytearray
    it reuses for the next packet: those counts are a copy, kept as they came."""
    counts = np.arange(19 * 6, dtype=np.int16).reshape(19, 6)
    pkt = encode_samples(7, 1000, counts)
    view = samples_array(decode_packet(pkt))
    assert np.shares_memory(view, np.frombuffer(pkt, np.uint8)) and not view.flags.writeable
    assert view.dtype == np.int16 and np.array_equal(view, counts)
    reused = bytearray(pkt)
    kept = samples_array(decode_packet(reused))
    reused[P.SAMPLES_HEADER_BYTES:] = bytes(len(reused) - P.SAMPLES_HEADER_BYTES)  # the link's next packet
    assert np.array_equal(kept, counts) and kept.dtype == np.int16


def test_batches_fit_one_notification_at_mtu_247_and_23():
    assert P.max_samples_for_mtu(247) == 19
    assert P.SAMPLES_HEADER_BYTES + 19 * P.SAMPLE_BYTES <= 247 - 3
    assert P.max_samples_for_mtu(23) == 1
    assert P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES <= 23 - 3


@given(st.lists(sample, min_size=1, max_size=120), st.integers(1, 19), u32)
def test_batcher_packs_consecutive_indices_and_wrapping_sequence(samples, per_packet, first_idx):
    b = P.SampleBatcher(per_packet, first_idx=first_idx)
    b.seq = 0xFFFE  # wrap inside the run
    packets = []
    for s in samples:
        if b.add(*s):
            packets.append(bytes(b.packet()))
            b.next_packet()
    if b.count:
        packets.append(bytes(b.packet()))
    decoded = [decode_packet(p) for p in packets]
    assert [P.seq_delta(a.seq, c.seq) for a, c in zip(decoded, decoded[1:])] == [1] * (len(decoded) - 1)
    idx = first_idx
    for m in decoded:
        assert m.first_idx == idx
        idx = (idx + m.count) & 0xFFFFFFFF
    assert np.concatenate([samples_array(m) for m in decoded]).tolist() == [list(s) for s in samples]


@given(hellos)
def test_hello_round_trip(h):
    buf = bytearray(64)
    n = P.pack_hello(buf, h)
    assert n == P.HELLO_BYTES
    assert decode_packet(bytes(buf[:n])) == h


@given(u32, st.sampled_from([P.SIDE_LEFT, P.SIDE_RIGHT, P.SIDE_UNKNOWN]), u16, u16, u8)
def test_step_round_trip(idx, side, impact, step_samples, flags):
    buf = bytearray(32)
    n = P.pack_step(buf, idx, side, impact, step_samples, flags)
    assert decode_packet(bytes(buf[:n])) == P.Step(idx, side, impact, step_samples, flags)


@given(u32, st.sampled_from(sorted(P.CUE_KIND_NAMES)), u8, st.sampled_from([P.SOURCE_CLIP, P.SOURCE_HOST]), u16, u16)
def test_cue_round_trip(idx, kind, reason, source, tempo, duration):
    buf = bytearray(32)
    n = P.pack_cue(buf, idx, kind, reason, source, tempo, duration)
    assert decode_packet(bytes(buf[:n])) == P.Cue(idx, kind, reason, source, tempo, duration)


@given(u32, u8, st.integers(-(2**31), 2**31 - 1))
def test_status_round_trip(idx, code, value):
    buf = bytearray(32)
    n = P.pack_status(buf, idx, code, value)
    assert decode_packet(bytes(buf[:n])) == P.Status(idx, code, value)


@given(u8, st.sampled_from(sorted(P.OPCODE_NAMES)), st.sampled_from(sorted(P.RESULT_NAMES)), st.integers(-(2**31), 2**31 - 1))
def test_result_round_trip(cmd_id, opcode, code, detail):
    buf = bytearray(32)
    n = P.pack_result(buf, cmd_id, opcode, code, detail)
    assert decode_packet(bytes(buf[:n])) == P.Result(cmd_id, opcode, code, detail)


valid_commands = st.one_of(
    st.tuples(st.just(P.OP_START_STREAM), st.just(())),
    st.tuples(st.just(P.OP_STOP_STREAM), st.just(())),
    st.tuples(st.just(P.OP_SET_CONFIG), st.tuples(u8, st.integers(-(2**31), 2**31 - 1))),
    st.tuples(st.just(P.OP_BUZZ), st.tuples(st.integers(0, P.BUZZ_PATTERN_MAX), st.integers(1, P.BUZZ_COUNT_MAX),
                                            st.integers(P.BUZZ_ON_MS_MIN, P.BUZZ_ON_MS_MAX), st.integers(1, 100))),
    st.tuples(st.just(P.OP_METRONOME_START), st.tuples(st.integers(P.TEMPO_SPM_MIN, P.TEMPO_SPM_MAX),
                                                       st.integers(0, P.METRONOME_S_MAX))),
    st.tuples(st.just(P.OP_METRONOME_STOP), st.just(())),
    st.tuples(st.just(P.OP_BACKFILL), st.tuples(u32, st.integers(1, 0xFFFFFFFF))),
    st.tuples(st.just(P.OP_HELLO), st.just(())),
)


@given(u8, valid_commands)
def test_command_round_trip_and_clip_accepts_it(cmd_id, op_args):
    opcode, args = op_args
    buf = bytearray(32)
    n = P.pack_command(buf, cmd_id, opcode, args)
    pkt = bytes(buf[:n])
    assert decode_packet(pkt) == P.Command(cmd_id, opcode, args)
    assert P.command_result_code(pkt) == P.RESULT_OK


@pytest.mark.parametrize(
    "opcode,args",
    [
        (P.OP_METRONOME_START, (P.TEMPO_SPM_MAX + 1, 60)),
        (P.OP_METRONOME_START, (P.TEMPO_SPM_MIN - 1, 60)),
        (P.OP_METRONOME_START, (170, P.METRONOME_S_MAX + 1)),
        (P.OP_BUZZ, (P.BUZZ_PATTERN_MAX + 1, 1, 100, 50)),
        (P.OP_BUZZ, (0, 0, 100, 50)),
        (P.OP_BUZZ, (0, 1, P.BUZZ_ON_MS_MAX + 1, 50)),
        (P.OP_BUZZ, (0, 1, 100, 0)),
        (P.OP_BACKFILL, (10, 0)),
    ],
)
def test_out_of_range_commands_are_refused_by_host_encoder_and_by_the_clip(opcode, args):
    assert P.check_command_args(opcode, args) == P.RESULT_OUT_OF_RANGE
    with pytest.raises(P.BadValue):
        P.pack_command(bytearray(32), 1, opcode, args)
    # Build the bytes by hand, as a buggy or hostile host would, and ask the clip.
    fmt = P.COMMAND_LAYOUTS[opcode][0]
    import struct

    raw = bytes([P.header_byte(P.T_COMMAND), 1, opcode]) + struct.pack(fmt, *args)
    assert P.command_result_code(raw) == P.RESULT_OUT_OF_RANGE


def test_malformed_writes_get_specific_result_codes():
    hdr = P.header_byte(P.T_COMMAND)
    assert P.command_result_code(bytes([hdr, 1, 99])) == P.RESULT_UNKNOWN_OPCODE
    assert P.command_result_code(bytes([hdr, 1, P.OP_METRONOME_START, 170])) == P.RESULT_BAD_LENGTH
    assert P.command_result_code(bytes([hdr, 1, P.OP_STOP_STREAM, 0])) == P.RESULT_BAD_LENGTH
    assert P.command_result_code(bytes([hdr, 1])) == P.RESULT_BAD_LENGTH
    assert P.command_result_code(bytes([0x21, 1, P.OP_STOP_STREAM])) == P.RESULT_BAD_PACKET  # version 2
    assert P.command_result_code(bytes([P.header_byte(P.T_STEP)] + [0] * 10)) == P.RESULT_BAD_PACKET
    assert P.command_result_code(b"") == P.RESULT_BAD_LENGTH


def _samples_pkt(count=2):
    return encode_samples(7, 1000, np.arange(6 * count, dtype=np.int16).reshape(count, 6))


@pytest.mark.parametrize(
    "pkt,error",
    [
        (b"", errors.TruncatedFrameError),
        (bytes([0x21]) + bytes(20), errors.UnsupportedVersionError),
        (bytes([0x1F]) + bytes(20), errors.UnknownFrameTypeError),
        (bytes([0x10]) + bytes(20), errors.UnknownFrameTypeError),
        (_samples_pkt()[:5], errors.TruncatedFrameError),
        (_samples_pkt()[:-1], errors.FrameLengthError),
        (_samples_pkt() + b"\x00", errors.FrameLengthError),
        (_samples_pkt()[:7] + b"\x00", errors.FrameValueError),
        (bytes([P.header_byte(P.T_HELLO)]) + bytes(10), errors.TruncatedFrameError),
        (bytes([P.header_byte(P.T_HELLO)]) + bytes(22), errors.FrameValueError),
        (bytes([P.header_byte(P.T_STEP)]) + bytes(4) + b"\x07" + bytes(5), errors.FrameValueError),
        (bytes([P.header_byte(P.T_STATUS)]) + bytes(10), errors.FrameLengthError),
        (bytes([P.header_byte(P.T_COMMAND), 1, 77]), errors.UnknownFrameTypeError),
    ],
)
def test_bad_packets_raise_specific_errors_under_one_root(pkt, error):
    with pytest.raises(error) as info:
        decode_packet(pkt)
    assert isinstance(info.value, errors.StrideClipError)
    assert isinstance(info.value.__cause__, P.ProtocolError)


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_fuzz_decoder_raises_only_documented_errors(data):
    try:
        msg = P.decode(data)
    except P.ProtocolError:
        return
    # Whatever decodes must re-encode to the same bytes: the decoder never invents fields.
    assert type(msg).__name__ in {"Samples", "Hello", "Step", "Cue", "Status", "Command", "Result", "LogData"}
    if isinstance(msg, P.Samples):
        assert len(data) == 8 + 12 * msg.count
    if isinstance(msg, P.LogData):
        assert encode_packet(msg) == data


@given(st.lists(st.binary(min_size=1, max_size=244), min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_deframer_recovers_every_packet_from_any_chunking(packets, rnd):
    stream = b"".join(P.frame(p) for p in packets)
    d = P.Deframer()
    out = []
    pos = 0
    while pos < len(stream):
        step = rnd.randint(1, 64)
        d.feed(stream[pos : pos + step])
        pos += step
        while (p := d.next_packet()) is not None:
            out.append(p)
    assert out == packets
    assert (d.dropped_bytes, d.bad_frames, d.pending_bytes()) == (0, 0, 0)


@given(
    st.lists(st.binary(min_size=1, max_size=120), min_size=3, max_size=12),
    st.data(),
)
def test_deframer_resyncs_after_corruption_and_loses_only_damaged_frames(packets, data):
    frames = [P.frame(p) for p in packets]
    bad = data.draw(st.integers(0, len(frames) - 1))
    damaged = bytearray(frames[bad])
    kind = data.draw(st.sampled_from(["flip", "truncate", "garbage"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(damaged) - 1))
        damaged[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        damaged = damaged[: data.draw(st.integers(1, len(damaged) - 1))]
    else:
        damaged = damaged + data.draw(st.binary(min_size=1, max_size=40))
    stream = b"".join(frames[:bad]) + bytes(damaged) + b"".join(frames[bad + 1 :])
    start = sum(len(f) for f in frames[:bad])
    # A CRC16 passes damage by chance (1 in 65 536): a frame starting in the damage whose CRC holds
    # and which reaches into the next frame takes its first bytes. That is the framing's limit, not
    # the deframer's (hypothesis found one: a truncated frame whose missing CRC byte was the next sync's).
    for pos in range(start, start + len(damaged)):
        outcome, at, n = P.find_frame(stream, pos, len(stream), P.MAX_PACKET_BYTES)
        assume(not (outcome == P.FRAME_OK and at < start + len(damaged) < at + P.FRAME_OVERHEAD_BYTES + n))
    d = P.Deframer()
    d.feed(stream)
    out = []
    while (p := d.next_packet(eof=True)) is not None:
        out.append(p)
    # Every undamaged frame comes through, in order; the damaged one may or may not.
    others = packets[:bad] + packets[bad + 1 :]
    it = iter(out)
    assert all(any(o == want for o in it) for want in others)
    assert len(out) <= len(packets)
    assert d.pending_bytes() == 0
    if out != packets:
        assert d.dropped_bytes > 0


def test_find_frame_reports_bad_length_and_no_sync():
    assert P.find_frame(b"\x00\x01\x02", 0, 3, 100)[0] == P.FRAME_NO_SYNC
    assert P.find_frame(b"\xa5\x5a\x00\x00", 0, 4, 100)[0] == P.FRAME_BAD_LENGTH
    assert P.find_frame(b"\xa5\x5a\xff\x7f", 0, 4, 100)[0] == P.FRAME_BAD_LENGTH
    assert P.find_frame(b"\x00\xa5\x5a\x05\x00abc", 0, 8, 100)[:2] == (P.FRAME_NEED_MORE, 1)
