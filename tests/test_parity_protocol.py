"""clipcore.protocol gives byte-identical results under CPython and the MicroPython unix port."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipcore import protocol as P
from mpy import cpython_call, hexarg

int16 = st.integers(-32768, 32767)
sample = st.lists(int16, min_size=6, max_size=6)
u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
parity = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def same(mpy, f, *args, buf=0):
    """Call f in both runtimes; assert identical replies; return the reply."""
    here = cpython_call(f, *args, buf=buf)
    there = mpy.call(f, *args, buf=buf)
    assert there == here, f"{f}{args}: MicroPython {there} != CPython {here}"
    return here


def test_runtime_is_really_micropython(mpy):
    assert mpy.call("drivers.runtime") == {"r": "micropython"}
    assert cpython_call("drivers.runtime") == {"r": "cpython"}


@parity
@given(data=st.binary(max_size=400), init=u16)
def test_crc(mpy, data, init):
    same(mpy, "clipcore.crc.crc16", hexarg(data), 0, -1, init)
    same(mpy, "clipcore.crc.crc16_table", hexarg(data), 0, len(data), init)


@parity
@given(data=st.binary(max_size=260))
def test_decode_random_bytes(mpy, data):
    same(mpy, "clipcore.protocol.decode", hexarg(data))
    same(mpy, "clipcore.protocol.command_result_code", hexarg(data))


@parity
@given(data=st.binary(min_size=1, max_size=40), ptype=st.sampled_from(sorted(P.TYPE_NAMES)))
def test_decode_near_valid_packets(mpy, data, ptype):
    # A valid header byte makes the decoder go past the type check into each layout.
    same(mpy, "clipcore.protocol.decode", hexarg(bytes([P.header_byte(ptype)]) + data))


@parity
@given(samples=st.lists(sample, min_size=1, max_size=60), per_packet=st.integers(1, 19), first=u32, seq0=u16)
def test_sample_batches_and_frames(mpy, samples, per_packet, first, seq0):
    packets = same(mpy, "drivers.batch_stream", samples, per_packet, first, seq0)["r"]
    # The clip's block path gives the very same packets as one sample at a time.
    assert same(mpy, "drivers.fill_stream", samples, per_packet, first, seq0, 7)["r"] == packets
    stream = same(mpy, "drivers.frame_all", packets)["r"]
    same(mpy, "drivers.decode_all", packets)
    same(mpy, "drivers.deframe", stream, 7)


@parity
@given(stream=st.binary(max_size=300), chunk=st.integers(1, 50))
def test_deframer_on_garbage(mpy, stream, chunk):
    same(mpy, "drivers.deframe", hexarg(b"\xa5\x5a" + stream), chunk)


@parity
@given(
    hello=st.tuples(st.tuples(u8, u8, u8), u8, u16, u8, u16, u16, u16, u32, u16, u8, u8, u8),
    step=st.tuples(u32, u8, u16, u16, u8),
    cue=st.tuples(u32, u8, u8, u8, u16, u16),
    status=st.tuples(u32, u8, i32),
    result=st.tuples(u8, u8, u8, i32),
)
def test_event_encoders(mpy, hello, step, cue, status, result):
    same(mpy, "clipcore.protocol.pack_hello", {"nt": "Hello", "v": list(hello)}, buf=64)
    same(mpy, "clipcore.protocol.pack_step", *step, buf=32)
    same(mpy, "clipcore.protocol.pack_cue", *cue, buf=32)
    same(mpy, "clipcore.protocol.pack_status", *status, buf=32)
    same(mpy, "clipcore.protocol.pack_result", *result, buf=32)


@parity
@given(cmd_id=u8, opcode=st.integers(0, 10), args=st.lists(st.integers(0, 70000), max_size=4))
def test_command_encoder_and_checks(mpy, cmd_id, opcode, args):
    same(mpy, "clipcore.protocol.check_command_args", opcode, args)
    if P.check_command_args(opcode, tuple(args)) == P.RESULT_OK:
        pkt = same(mpy, "clipcore.protocol.pack_command", cmd_id, opcode, args, buf=32)["r"][1]
        same(mpy, "clipcore.protocol.decode", pkt)
