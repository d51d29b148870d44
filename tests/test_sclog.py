"""The session log: round trips, recovery from truncation and corruption, crash safety."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip.errors import LogFormatError, UnsupportedLogVersionError
from strideclip.stream.packets import encode_packet, encode_samples
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.stream.sclog import iter_records, load_log

HELLO = P.Hello((0, 1, 0), P.IMU_SIMULATED, 208, 16, 2000, 488, 15625, 7, 1, 90, 19, 0)


def _write(path, n_packets=50, skip=(), backfill=(), session2_at=None):
    """A log of n_packets 19-sample packets; sample value = sample index (mod int16)."""
    with SessionLogWriter(path, header={"athlete": "test"}) as w:
        w.clip_packet(encode_packet(HELLO), 0)
        for k in range(n_packets):
            if session2_at == k:
                w.clip_packet(encode_packet(HELLO._replace(session_id=2)), 10 * k)
            if k in skip:
                continue
            idx = np.arange(19 * k, 19 * k + 19)
            w.clip_packet(encode_samples(k, 19 * k, np.repeat((idx % 30000)[:, None], 6, 1).astype(np.int16)), 10 * k)
        for k in backfill:
            idx = np.arange(19 * k, 19 * k + 19)
            w.clip_packet(encode_samples(0, 19 * k, np.repeat((idx % 30000)[:, None], 6, 1).astype(np.int16),
                                         backfill=True), 10 * n_packets)
        w.host_event("note", t_ms=5, text="hello")
    return path


def test_stream_and_bulk_readers_agree(tmp_path):
    path = _write(tmp_path / "a.sclog")
    recs = list(iter_records(path))
    assert [r.kind for r in recs[:2]] == [L.REC_HEADER, L.REC_CLIP]
    assert json.loads(recs[0].body)["athlete"] == "test"
    log = load_log(path)
    assert log.hello == HELLO
    assert log.sample_idx.tolist() == list(range(50 * 19))
    assert (log.counts[:, 0] == log.sample_idx).all()
    assert sum(r.kind == L.REC_CLIP for r in recs) == 1 + len(log.packets)
    assert log.host_events == [(5, {"event": "note", "text": "hello"})]
    assert log.gaps == [] and log.report.clean


def test_gaps_are_listed_and_backfill_fills_them(tmp_path):
    log = load_log(_write(tmp_path / "gap.sclog", skip=(10, 11, 30)))
    assert log.gaps == [[190, 228], [570, 589]]
    log = load_log(_write(tmp_path / "filled.sclog", skip=(10, 11, 30), backfill=(10, 11, 30)))
    assert log.gaps == [] and log.sample_idx.tolist() == list(range(950))
    assert log.conflicting_samples == 0


def test_samples_of_a_restarted_clip_session_are_kept_apart(tmp_path):
    log = load_log(_write(tmp_path / "restart.sclog", session2_at=20))
    assert [part.hello.session_id for part in log.sessions] == [1, 2]
    assert log.sample_idx.tolist() == list(range(20 * 19))  # not mixed in: the first session's
    assert log.later_sessions[0].sample_idx.tolist() == list(range(20 * 19, 50 * 19))


def test_never_overwrites_a_recording(tmp_path):
    path = _write(tmp_path / "keep.sclog")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        SessionLogWriter(path, header={})
    assert path.read_bytes() == before


def test_wrong_magic_and_version_are_named(tmp_path):
    bad = tmp_path / "bad.sclog"
    bad.write_bytes(b"hello world, not a log")
    with pytest.raises(LogFormatError, match="not a StrideClip session log"):
        load_log(bad)
    with pytest.raises(LogFormatError):
        list(iter_records(bad))
    newer = tmp_path / "newer.sclog"
    newer.write_bytes(b"SCLOG\x09\r\n" + bytes(20))
    with pytest.raises(UnsupportedLogVersionError) as info:
        load_log(newer)
    assert info.value.version == 9


class Reference(tuple):
    def __repr__(self):  # keep hypothesis' failure reports readable
        return "<reference log>"


@pytest.fixture(scope="module")
def reference_log(tmp_path_factory):
    path = _write(tmp_path_factory.mktemp("ref") / "ref.sclog", n_packets=30)
    data = path.read_bytes()
    # Frame boundaries of the intact log, to know which records a cut or damage must keep.
    ends, pos = [], L.LOG_MAGIC_BYTES
    while pos < len(data):
        n = P.u16(data, pos + 2)
        pos += P.FRAME_OVERHEAD_BYTES + n
        ends.append(pos)
    return Reference((data, ends, [r.body for r in iter_records(path)]))


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=L.LOG_MAGIC_BYTES, max_value=10_000_000))
def test_truncated_log_keeps_every_complete_record(reference_log, tmp_path, cut):
    data, ends, bodies = reference_log
    cut = min(cut, len(data))
    path = tmp_path / "cut.sclog"
    path.write_bytes(data[:cut])
    complete = sum(e <= cut for e in ends)
    got = [r.body for r in iter_records(path)]
    assert got == bodies[:complete]
    log = load_log(path)
    assert len(log.packets) == sum(b[0] == P.header_byte(P.T_SAMPLES) for b in bodies[:complete])
    if cut not in ends and cut > L.LOG_MAGIC_BYTES:
        assert log.report.incomplete_tail_bytes == cut - max(e for e in [L.LOG_MAGIC_BYTES, *ends] if e <= cut)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupt_middle_loses_only_the_records_it_touches(reference_log, tmp_path, data):
    raw, ends, bodies = reference_log
    start = data.draw(st.integers(L.LOG_MAGIC_BYTES, len(raw) - 1))
    length = data.draw(st.integers(1, 300))
    noise = data.draw(st.binary(min_size=length, max_size=length))
    damaged = bytearray(raw)
    damaged[start : start + length] = noise
    damaged = bytes(damaged[: len(raw)])
    path = tmp_path / "damaged.sclog"
    path.write_bytes(damaged)
    got = [r.body for r in iter_records(path)]
    starts = [L.LOG_MAGIC_BYTES, *ends[:-1]]
    untouched = [b for b, s, e in zip(bodies, starts, ends) if e <= start or s >= start + length]
    it = iter(got)
    assert all(any(g == want for g in it) for want in untouched), "an undamaged record was lost"
    log = load_log(path)  # never raises on damage
    if damaged != raw:
        assert got == bodies or not log.report.clean


def test_reader_follows_a_log_still_being_written(tmp_path):
    path = tmp_path / "live.sclog"
    writer = SessionLogWriter(path, header={})

    def produce():
        for k in range(20):
            writer.clip_packet(encode_samples(k, 19 * k, np.zeros((19, 6), np.int16)), 10 * k)
            time.sleep(0.02)
        writer.close()

    t = threading.Thread(target=produce)
    t.start()
    got = list(iter_records(path, follow_s=1.0))
    t.join()
    assert sum(r.kind == L.REC_CLIP for r in got) == 20


WRITER = """
import sys, time
import numpy as np
from strideclip.stream.packets import encode_samples
from strideclip.stream.logwriter import SessionLogWriter
w = SessionLogWriter(sys.argv[1], header={"athlete": "killed"}, fsync_interval_s=3600)
k = 0
while True:
    w.clip_packet(encode_samples(k & 0xFFFF, 19 * k, np.full((19, 6), k % 1000, np.int16)), k)
    print(k, flush=True)   # record k is written (and flushed to the OS) before this line
    k += 1
    time.sleep(0.002)
"""


def test_sigkill_mid_session_loses_nothing_that_was_written(tmp_path):
    path = tmp_path / "killed.sclog"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    while acknowledged < 200:
        acknowledged = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log = load_log(path)
    assert log.header["athlete"] == "killed"
    n_packets = len(log.packets)
    assert n_packets >= acknowledged + 1  # every acknowledged record is on disk
    assert log.sample_idx.tolist() == list(range(19 * n_packets))  # and every one replays whole
    assert sum(r.kind == L.REC_CLIP for r in iter_records(path)) == n_packets
