"""Hostile logs (issue #21): records with valid CRCs and hostile content, for every record kind and
every packet type, through every reader and tool. No traceback; every other record still read;
a live session records to the end. docs/log-format.md says what is checked."""
import json
import random
import struct
import subprocess
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner

from clipcore import logrecord as L
from clipcore import protocol as P
from clipcore.steps import RATES_HZ
from mpy import REPO, find_tool
from strideclip.cli import cli
from strideclip.session.replay import replay
from strideclip.stream.packets import encode_packet
from strideclip.stream.sclog import ReadReport, iter_records, load_header, load_log

CLEAN = REPO / "tests" / "data" / "steady_208hz.sclog"  # 1 min at 208 Hz: walk, run, walk
SEED = 21
N_HOSTILE = 3000  # hostile records made for each of the mixed and the rejected-only logs
HELLO = next(P.decode(r.body) for r in iter_records(CLEAN) if r.body[:1] == bytes([P.header_byte(P.T_HELLO)]))


# --- hostile records ------------------------------------------------------------------------------
# Each maker returns (kind, body, verdict). "reject": the boundary must skip the record (a bad
# record; for a clip packet, a bad packet); "accept": it must take it; "stream": a clip packet that
# must be a bad packet once the clip's stream is under way (samples 2^31 ahead of it); "either":
# a well-formed packet that may or may not fit the stream (a new session, a backfill).

def _pkt(ptype: int, fmt: str, *fields) -> bytes:
    return struct.pack("<B" + fmt, P.header_byte(ptype), *fields)


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _deep(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def _samples(rng, ptype, first_idx, count=None):
    count = count or rng.randint(1, 19)
    data = bytes(rng.getrandbits(8) for _ in range(P.SAMPLE_BYTES * count))
    return _pkt(ptype, "HIB", rng.getrandbits(16), first_idx, count) + data


def _clip(rng):
    """One clip packet, of every type, hostile in some field."""
    u32 = rng.getrandbits(32)
    ptype = rng.choice((P.T_SAMPLES, P.T_BACKFILL))
    count = rng.randint(2, 19)
    bad_rate = rng.choice([r for r in (0, 1, 50, 100, 200, 207, 209, 400, 1000, 0xFFFF) if r not in RATES_HZ])
    choices = [
        # samples: the index leaves u32, jumps 2^31 ahead, lengths that lie, a zero count
        lambda: (_samples(rng, ptype, (1 << 32) - rng.randint(1, count - 1), count), "reject"),
        lambda: (_samples(rng, P.T_SAMPLES, rng.choice((1 << 31, (1 << 31) + rng.getrandbits(20), 0xFFFFFF00))),
                 "stream"),
        lambda: (_samples(rng, ptype, u32)[:-rng.randint(1, 11)], "reject"),
        lambda: (_samples(rng, ptype, u32) + bytes(rng.randint(1, 11)), "reject"),
        lambda: (_pkt(ptype, "HIB", 0, u32, 0), "reject"),
        lambda: (_samples(rng, P.T_BACKFILL, rng.getrandbits(31)), "either"),  # backfill nobody asked for
        # hello: a rate the detector has no table for, zeros, a battery over 100; or a new session
        lambda: (encode_packet(HELLO._replace(rate_hz=bad_rate)), "reject"),
        lambda: (encode_packet(HELLO._replace(**{rng.choice(("accel_fs_g", "gyro_fs_dps", "accel_ug_per_lsb",
                                                              "gyro_mdps_per_lsb_q8", "samples_per_packet")): 0})),
                 "reject"),
        lambda: (encode_packet(HELLO._replace(battery_pct=rng.randint(101, 254))), "reject"),
        lambda: (encode_packet(HELLO._replace(accel_ug_per_lsb=rng.randint(2001, 0xFFFF))), "reject"),
        lambda: (encode_packet(HELLO._replace(session_id=rng.getrandbits(16), rate_hz=rng.choice(RATES_HZ),
                                              accel_ug_per_lsb=rng.randint(1, 0xFFFF),
                                              gyro_mdps_per_lsb_q8=rng.randint(1, 0xFFFF))), "either"),
        # step, cue, status, result, log data: out-of-range enums, extreme indices and values
        lambda: (_pkt(P.T_STEP, "IBHHB", u32, rng.randint(2, 254), rng.getrandbits(16), rng.getrandbits(16), 0),
                 "reject"),
        lambda: (_pkt(P.T_STEP, "IBHHB", u32, rng.choice((0, 1, 255)), rng.getrandbits(16), rng.getrandbits(16),
                      rng.getrandbits(8)), "accept"),
        lambda: (_pkt(P.T_CUE, "IBBBHH", u32, rng.choice((0, 4, 255)), 1, 0, 170, 30), "reject"),
        lambda: (_pkt(P.T_CUE, "IBBBHH", u32, 1, 1, rng.randint(2, 255), 170, 30), "reject"),
        lambda: (_pkt(P.T_CUE, "IBBBHH", u32, rng.randint(1, 3), rng.getrandbits(8), rng.randint(0, 1),
                      rng.getrandbits(16), rng.getrandbits(16)), "accept"),
        lambda: (_pkt(P.T_STATUS, "IBi", u32, rng.getrandbits(8), rng.randint(-(1 << 31), (1 << 31) - 1)), "accept"),
        lambda: (_pkt(P.T_RESULT, "BBBi", rng.getrandbits(8), rng.getrandbits(8), rng.randint(9, 255), 0), "reject"),
        lambda: (_pkt(P.T_RESULT, "BBBi", rng.getrandbits(8), rng.getrandbits(8), rng.randint(0, 8),
                      rng.randint(-(1 << 31), (1 << 31) - 1)), "accept"),
        lambda: (_pkt(P.T_LOG_DATA, "BI", rng.getrandbits(8), u32) + rng.randbytes(rng.randint(1, 224)), "accept"),
        lambda: (_pkt(P.T_LOG_DATA, "BI", rng.getrandbits(8), u32), "reject"),
        # wrong lengths for every fixed-size type, a command (host -> clip) from the clip, bad headers
        lambda: (_pkt(rng.choice((P.T_HELLO, P.T_STEP, P.T_CUE, P.T_STATUS, P.T_RESULT)), "")
                 + rng.randbytes(rng.choice((0, 3, 30, 300))), "reject"),
        lambda: (_pkt(P.T_COMMAND, "BB", rng.getrandbits(8), P.OP_HELLO), "reject"),
        lambda: (bytes([rng.choice((0x00, 0x10, 0x1A, 0x1F, 0x21, 0xF3))]) + rng.randbytes(rng.randint(0, 30)),
                 "reject"),
        lambda: (b"", "reject"),
    ]
    body, verdict = rng.choice(choices)()
    return L.REC_CLIP, body, verdict


def _host(rng):
    """One host event: not an object, nested too deep, not JSON, or an object with odd fields."""
    choices = [
        lambda: (_json(rng.choice((7, -1.5, "gap", None, True, [], ["event", "gap"]))), "reject"),
        lambda: (('{"event": "gap", "x": %s}' % _deep(4000)).encode(), "reject"),
        lambda: (('{"event": "gap", "x": %s}' % _deep(rng.randint(40, 900))).encode(), "reject"),
        lambda: (_deep(4000).encode(), "reject"),
        lambda: (rng.choice((b"", b"{", b"\xff\xfe{}", b'{"event": "gap"} trailing', b'{"event": NaN}',
                             b'{"event": "gap", "start_idx": Infinity}', b'{"event": "x", "n": ' + b"9" * 5000 + b"}")),
                 "reject"),
        lambda: (_json(rng.choice(({}, {"start_idx": 1}, {"event": 7}, {"event": None}, {"event": ["gap"]}))),
                 "reject"),
        lambda: (_json({"event": rng.choice(("gap", "cue_sent", "link", "clock", "<!--<script>", "$x$", "é" * 300)),
                        "start_idx": rng.choice((-1, 1 << 70, "x", None, 1.5)), "end_idx": rng.choice(([], {}, 3)),
                        "nested": {"a": [1, {"b": "c"}]}}), "accept"),
    ]
    body, verdict = rng.choice(choices)()
    return L.REC_HOST, body, verdict


def _tx(rng):
    """A packet the host 'sent': anything that is not a well-formed command is rejected."""
    buf = bytearray(32)
    choices = [
        lambda: (bytes(buf[:P.pack_command(buf, rng.getrandbits(8), P.OP_METRONOME_START, (170, 30))]), "accept"),
        lambda: (encode_packet(HELLO), "reject"),
        lambda: (_pkt(P.T_COMMAND, "BB", 1, rng.randint(12, 255)), "reject"),
        lambda: (_pkt(P.T_COMMAND, "BB", 1, P.OP_BUZZ) + rng.randbytes(rng.choice((0, 2, 9))), "reject"),
        lambda: (rng.randbytes(rng.randint(0, 40)).replace(bytes([P.header_byte(P.T_COMMAND)]), b"\x00"), "reject"),
    ]
    body, verdict = rng.choice(choices)()
    return L.REC_TX, body, verdict


def _header_later(rng):
    """A header anywhere but first: a log has one header, its first record."""
    header = rng.choice(({"athlete": "Mallory"}, ["athlete"], 3, {"started_at": "yesterday"}))
    return L.REC_HEADER, _json(header), "reject"


def _odd_kind(rng):
    return rng.choice((0, 5, 6, 0x7F, 0xFF)), rng.randbytes(rng.randint(0, 20)), "reject"


def hostile_records(rng: random.Random, n: int) -> list[tuple[int, bytes, str]]:
    makers = (_clip, _clip, _clip, _host, _tx, _header_later, _odd_kind)
    return [rng.choice(makers)(rng) for _ in range(n)]


def _short_record(rng):
    """A frame with a valid CRC too short to hold a record's kind and time."""
    return P.frame(bytes([L.REC_HOST]) + rng.randbytes(rng.randint(0, L.RECORD_PREFIX_BYTES - 2)))


# --- logs -----------------------------------------------------------------------------------------

def _clean_records():
    return [(r.kind, r.t_ms, r.body) for r in iter_records(CLEAN)]


def _write_log(path: Path, records) -> Path:
    """records: (kind, t_ms, body), or raw frame bytes."""
    with open(path, "xb") as f:
        f.write(L.LOG_MAGIC)
        for r in records:
            f.write(r if isinstance(r, bytes) else L.record(r[0], r[1], r[2]))
    return path


def _base_records():
    """The clean log's records with a note, a sent command and the link's figures among them."""
    recs = _clean_records()
    buf = bytearray(16)
    cmd = bytes(buf[:P.pack_command(buf, 1, P.OP_HELLO, ())])
    t = recs[2][1]
    return (recs[:3] + [(L.REC_HOST, t, _json({"event": "note", "text": "hello"})), (L.REC_TX, t, cmd)] + recs[3:]
            + [(L.REC_HOST, recs[-1][1], _json({"event": "link_stats", "played_packets": len(recs) - 1}))])


def _insert(base: list, hostile: list, rng: random.Random) -> list:
    """The base records with the hostile ones at random places once the clip streams (after the
    first samples packet); each takes the receive time of the record after it, so a playback
    keeps the log's pace."""
    first = next(i for i, r in enumerate(base) if r[0] == L.REC_CLIP and r[2][0] == P.header_byte(P.T_SAMPLES))
    out = list(base)
    for rec in hostile:
        at = rng.randint(first + 1, len(out) - 1)
        out.insert(at, rec if isinstance(rec, bytes) else (rec[0], out[at][1], rec[1]))
    return out


def _is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(any(w == p for w in it) for p in part)


def _count(hostile, *, clip: bool, verdicts=("reject", "stream", "either", "accept")) -> int:
    return sum((kind == L.REC_CLIP) == clip and v in verdicts for kind, _, v in hostile)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """The clean log, one with hostile records of every kind among its records, and one with only
    those the boundary must skip; what went into each."""
    folder = tmp_path_factory.mktemp("hostile")
    rng = random.Random(SEED)
    base = _base_records()
    mixed = hostile_records(rng, N_HOSTILE)
    shorts = [_short_record(rng) for _ in range(20)]
    rejected = [h for h in hostile_records(rng, N_HOSTILE) if h[2] in ("reject", "stream")]
    print(f"hostile records tried: {len(mixed) + len(shorts)} in the mixed log, {len(rejected) + len(shorts)} "
          f"in the rejected-only log")
    return {
        "base": base, "mixed": mixed, "rejected": rejected, "shorts": shorts,
        "clean_log": _write_log(folder / "clean.sclog", base),
        "mixed_log": _write_log(folder / "mixed.sclog", _insert(base, mixed + shorts, rng)),
        "rejected_log": _write_log(folder / "rejected.sclog", _insert(base, rejected + shorts, rng)),
    }


def test_readers_skip_each_hostile_record_and_read_every_other(logs):
    base, hostile, shorts = logs["base"], logs["mixed"], logs["shorts"]
    report = ReadReport()
    got = [(r.kind, r.t_ms, r.body) for r in iter_records(logs["mixed_log"], report=report)]
    bad_records = _count(hostile, clip=False, verdicts=("reject",)) + len(shorts)
    # clip records pass the reader as they are (the decoder checks every packet, live or logged)
    assert len(got) == len(base) + _count(hostile, clip=True) + _count(hostile, clip=False, verdicts=("accept",))
    assert report.bad_records == bad_records and not report.clean and len(report.rejected) == 20
    assert report.frames == len(base) + len(hostile) + len(shorts) and report.dropped_bytes == 0
    assert _is_subsequence(base, got)  # every intact record of the clean log, in order
    log, clean = load_log(logs["mixed_log"]), load_log(logs["clean_log"])
    assert log.report.bad_records == bad_records
    assert log.header == clean.header and log.hello == clean.hello
    assert _is_subsequence(clean.host_events, log.host_events) and _is_subsequence(clean.sent, log.sent)
    assert len(log.host_events) == len(clean.host_events) + _count(
        [h for h in hostile if h[0] == L.REC_HOST], clip=False, verdicts=("accept",))
    assert len(log.bad_packets) >= _count(hostile, clip=True, verdicts=("reject",))
    summary = replay(logs["mixed_log"])
    assert summary["frames"] == report.frames and summary["log_damage"]["bad_records"] == bad_records
    assert summary["clip_packets"] == sum(r[0] == L.REC_CLIP for r in base) + _count(hostile, clip=True)
    assert summary["bad_packets"] >= _count(hostile, clip=True, verdicts=("reject",))
    json.dumps(summary, allow_nan=False)  # the summary is plain JSON whatever the log held


def test_a_log_whose_hostile_records_are_all_skipped_reads_as_the_clean_one(logs):
    hostile, shorts = logs["rejected"], logs["shorts"]
    assert {v for _, _, v in hostile} == {"reject", "stream"} and {k for k, _, _ in hostile} >= {1, 2, 3, 4}
    log, clean = load_log(logs["rejected_log"]), load_log(logs["clean_log"])
    assert log.sample_idx.tolist() == clean.sample_idx.tolist() and (log.counts == clean.counts).all()
    assert log.host_events == clean.host_events and log.sent == clean.sent and log.header == clean.header
    assert len(log.bad_packets) == _count(hostile, clip=True, verdicts=("reject", "stream"))
    assert log.report.bad_records == _count(hostile, clip=False, verdicts=("reject",)) + len(shorts)
    got, want = replay(logs["rejected_log"]), replay(logs["clean_log"])
    assert got["bad_packets"] == len(log.bad_packets) and want["bad_packets"] == 0
    assert got["log_damage"]["bad_records"] == log.report.bad_records
    same = ("samples", "steps", "running_steps", "duration_s", "gaps", "cues", "fatigue", "rate_hz", "athlete",
            "started_at", "clip", "cadence_spm_median", "peak_vertical_g_median", "pelvic_rotation_deg_median")
    assert {k: got[k] for k in same} == {k: want[k] for k in same}
    assert got["host_events"] == want["host_events"]


# --- the tools --------------------------------------------------------------------------------------

def _cli(*args):
    """A strideclip command run in this process: it must succeed, with no traceback. In a thread of
    its own: a browser test on this worker leaves an event loop in the main thread, and `live`
    runs one of its own."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, cli, [str(a) for a in args]).result()
    crash = None if isinstance(result.exception, SystemExit) else result.exception
    assert crash is None, "".join(traceback.format_exception(*result.exc_info))
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result


def test_replay_report_and_export_take_hostile_logs(logs, tmp_path):
    mixed = json.loads(_cli("replay", logs["mixed_log"], "--json").stdout)
    rejected = json.loads(_cli("replay", logs["rejected_log"], "--json").stdout)
    assert mixed["bad_packets"] >= _count(logs["mixed"], clip=True, verdicts=("reject",))
    assert rejected["samples"] == replay(logs["clean_log"])["samples"]
    assert "bad packet(s)" in _cli("replay", logs["mixed_log"]).stdout
    _cli("report", logs["mixed_log"], "-o", tmp_path / "r.html", "--png", tmp_path / "r.png", "--no-history")
    assert "report-data" in (tmp_path / "r.html").read_text() and (tmp_path / "r.png").stat().st_size
    for fmt in ("csv", "fit"):
        _cli("export", logs["mixed_log"], "--format", fmt, "-o", tmp_path / f"r.{fmt}")
    assert (tmp_path / "r.fit").read_bytes()[8:12] == b".FIT"
    assert len((tmp_path / "r.csv").read_text().splitlines()) > 50


def test_a_log_of_nothing_but_bad_records_ends_in_clean_messages(tmp_path):
    """The real command, as a user runs it: a message naming the problem, never a traceback."""
    rng = random.Random(3)
    path = _write_log(tmp_path / "junk.sclog", [(k, 0, b) for k, b, v in hostile_records(rng, 300) if v == "reject"])
    for args, code, said in ((["replay", path], 1, "no samples in this log"),  # one answer, as export's
                             (["export", path, "--format", "fit", "-o", tmp_path / "j.fit"], 1, "no samples in this log"),
                             (["history", "import", path, "--db", tmp_path / "h.sqlite"], 1, "no samples in this log")):
        done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=120)
        assert done.returncode == code and said in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_live_replay_of_a_hostile_log_records_every_packet_to_the_end(logs, tmp_path):
    result = _cli("live", "--replay", logs["mixed_log"], "--speed", 200, "--seconds", 60, "--out", tmp_path,
                  "--no-history")
    (recorded,) = tmp_path.glob("*.sclog")
    played = [r.body for r in iter_records(logs["mixed_log"]) if r.kind == L.REC_CLIP]
    kept = list(iter_records(recorded))
    assert [r.body for r in kept if r.kind == L.REC_CLIP] == played  # the bad ones too: the log keeps them
    events = [r.value["event"] for r in kept if r.kind == L.REC_HOST]
    assert "packet_error" not in events and "error" not in events and events[-1] == "link_stats"
    assert "bad packet(s) recorded and skipped" in result.stderr


# --- headers ------------------------------------------------------------------------------------------

def _with_header(path: Path, header: bytes, *, session_id: int | None = None) -> Path:
    """The clean log under another header (and another clip session, with ``session_id``)."""
    recs = _base_records()[1:]
    if session_id is not None:
        hello = encode_packet(HELLO._replace(session_id=session_id))
        recs = [(k, t, hello if b == encode_packet(HELLO) else b) for k, t, b in recs]
    return _write_log(path, [(L.REC_HEADER, 0, header), *recs])


NAMES = "$\\frac{1}{$ <!--<script>\x1b[2J\u2028\ud800"
HEADERS = [  # (the log's first record, the header a reader must make of it (None: skipped), fields dropped)
    (b'["athlete", "Ana"]', None, 0),
    (b"7", None, 0),
    (_deep(4000).encode(), None, 0),
    (('{"":' * 1500 + "1" + "}" * 1500).encode(), None, 0),
    (b'\xff{"athlete": "Ana"}', None, 0),
    (b'{"athlete": NaN}', None, 0),
    (b'{"athlete": "Ana", "seed": 1e999}', None, 0),
    (_json({"athlete": ["Ana", "Ben"], "started_at": "yesterday", "clip_name": "clip-zz\u2603", "clip_id": "7",
            "rate_hz": 100, "session_id": -1, "seed": True, "source": {"x": 1}, "extra": [1, 2]}),
     {"clip_name": "clip-zz\u2603", "extra": [1, 2]}, 7),
    (_json({"athlete": NAMES, "started_at": "2026-03-01T08:00:00+02:00", "clip_id": 0xABCD, "rate_hz": 208}),
     {"athlete": "$\\frac{1}{$ <!--<script>[2J", "started_at": "2026-03-01T06:00:00.000+00:00", "clip_id": 0xABCD,
      "rate_hz": 208}, 0),
    (_json({"started_at": "9999-12-31T23:59:59-23:59", "athlete": "x" * 5000}), {"athlete": "x" * 200}, 1),
    (_json({"started_at": "1970-01-01T00:00:00+00:00", "athlete": ""}), {"athlete": ""}, 1),
    (_json({"started_at": "2026-03-01"}), {"started_at": "2026-03-01T00:00:00.000+00:00"}, 0),
]


def test_hostile_headers_are_skipped_or_cleaned_and_the_rest_read(tmp_path):
    base = _base_records()[1:]
    for k, (body, want, dropped) in enumerate(HEADERS):
        path = _with_header(tmp_path / f"h{k}.sclog", body)
        report = ReadReport()
        recs = list(iter_records(path, report=report))
        assert [(r.kind, r.t_ms, r.body) for r in recs[want is not None:]] == base
        assert report.bad_records == (want is None) and len(report.rejected) == (want is None) + dropped
        log = load_log(path)
        assert log.header == load_header(path) == (want or {})
        assert log.sample_idx.tolist() == load_log(CLEAN).sample_idx.tolist()
    summary = replay(tmp_path / "h7.sclog")  # athlete a list, start "yesterday", an odd clip name
    assert summary["athlete"] is None and summary["started_at"] is None and summary["clip"] == "clip-zz\u2603"
    assert len(summary["log_damage"]["rejected"]) == 7 and "athlete: a JSON list" in summary["log_damage"]["summary"]


def test_the_tools_take_hostile_headers(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    paths = [_with_header(folder / f"h{k:02d}.sclog", body, session_id=100 + k) for k, (body, *_) in enumerate(HEADERS)]
    out = _cli("history", "import", folder, "--db", tmp_path / "h.sqlite")
    assert out.stdout.count(".sclog") == len(HEADERS)  # one line per log imported
    sessions = json.loads(_cli("history", "--db", tmp_path / "h.sqlite", "--json").stdout)
    assert sum(len(a["sessions"]) for a in sessions.values()) == len(HEADERS)
    assert all(isinstance(a, str) for a in sessions)
    for k in (7, 8):
        _cli("report", paths[k], "-o", tmp_path / f"{k}.html", "--png", tmp_path / f"{k}.png", "--no-history")
        _cli("export", paths[k], "--format", "fit", "-o", tmp_path / f"{k}.fit")


# --- the cases of issue #21, one by one -----------------------------------------------------------------

def _clean_with(tmp_path: Path, name: str, *records, at: int = 10) -> Path:
    """The clean log with these (kind, body) records put in before its record ``at``."""
    base = _base_records()
    return _write_log(tmp_path / name, base[:at] + [(k, base[at][1], b) for k, b in records] + base[at:])


def test_a_header_that_is_a_json_list_is_skipped_and_the_log_read(tmp_path):
    path = _with_header(tmp_path / "list.sclog", b'["athlete", "Ana"]')
    summary, clean = replay(path), replay(CLEAN)
    assert summary["log_damage"]["bad_records"] == 1 and summary["athlete"] is None
    assert (summary["samples"], summary["steps"]) == (clean["samples"], clean["steps"])
    assert "a JSON list, not an object" in summary["log_damage"]["summary"]


def test_host_events_that_are_a_number_or_nested_4000_deep_are_skipped(tmp_path):
    deep = ('{"event": "gap", "x": %s}' % _deep(4000)).encode()
    path = _clean_with(tmp_path, "events.sclog", (L.REC_HOST, b"7"), (L.REC_HOST, deep),
                       (L.REC_HEADER, _deep(4000).encode()))
    summary = replay(path)
    assert summary["log_damage"]["bad_records"] == 3
    assert [e["event"] for e in summary["host_events"]] == ["note", "link_stats"]
    assert load_log(path).report.bad_records == 3


def test_a_hello_at_a_rate_the_detector_has_no_table_for_is_a_bad_packet(tmp_path):
    for rate in (100, 0xFFFF):
        hello = encode_packet(HELLO._replace(rate_hz=rate, session_id=HELLO.session_id + 1))
        summary = replay(_clean_with(tmp_path, f"rate{rate}.sclog", (L.REC_CLIP, hello)))
        assert summary["bad_packets"] == 1 and "runs at 104, 208 or 416 Hz" in summary["bad_packet_errors"][0]
        assert summary["rate_hz"] == 208 and not summary["restarts"] and summary["steps"] == replay(CLEAN)["steps"]
    hellos = sum(k == L.REC_CLIP and b == encode_packet(HELLO) for k, _, b in _base_records())  # one a minute
    only = _write_log(tmp_path / "only.sclog", [(k, t, encode_packet(HELLO._replace(rate_hz=100))
                                                  if k == L.REC_CLIP and b == encode_packet(HELLO) else b)
                                                 for k, t, b in _base_records()])
    summary = replay(only)  # no HELLO to go by: the samples are counted, no step is looked for
    assert hellos >= 1 and summary["bad_packets"] == hellos and summary["rate_hz"] == 0 and summary["steps"] == 0 and summary["samples"]


def test_samples_at_index_2_31_are_a_bad_packet_and_the_stream_goes_on(tmp_path):
    rng = random.Random(1)
    far, past_u32 = _samples(rng, P.T_SAMPLES, 1 << 31, 19), _samples(rng, P.T_BACKFILL, 0xFFFFFFFF, 2)
    path = _clean_with(tmp_path, "far.sclog", (L.REC_CLIP, far), (L.REC_CLIP, past_u32))
    summary, clean = replay(path), replay(CLEAN)
    assert summary["bad_packets"] == 2 and summary["gaps"] == clean["gaps"] == []
    assert (summary["samples"], summary["steps"], summary["duration_s"]) == (clean["samples"], clean["steps"],
                                                                             clean["duration_s"])
    log = load_log(path)
    assert len(log.bad_packets) == 2 and log.sample_idx.tolist() == load_log(CLEAN).sample_idx.tolist()


def test_live_replay_goes_on_past_a_flood_of_bad_packets_to_the_end(tmp_path):
    rng = random.Random(2)
    flood = [(L.REC_CLIP, _samples(rng, P.T_SAMPLES, (1 << 31) + k, 19)) for k in range(60)]
    flood += [(L.REC_CLIP, encode_packet(HELLO._replace(rate_hz=100))), (L.REC_HOST, b"7")]
    path = _clean_with(tmp_path, "flood.sclog", *flood, at=8)  # most of what came so far is bad
    result = _cli("live", "--replay", path, "--speed", 200, "--seconds", 60, "--out", tmp_path / "out", "--no-history")
    (recorded,) = (tmp_path / "out").glob("*.sclog")
    assert [r.body for r in iter_records(recorded) if r.kind == L.REC_CLIP] == \
        [r.body for r in iter_records(path) if r.kind == L.REC_CLIP]
    assert "61 bad packet(s) recorded and skipped" in result.stderr and "internal error" not in result.output
    assert replay(recorded)["steps"] == replay(CLEAN)["steps"]


def test_a_folder_import_goes_on_past_a_log_started_yesterday(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    _with_header(folder / "a.sclog", _json({"athlete": "Ana", "started_at": "yesterday"}), session_id=1)
    for k, day in ((2, "2026-03-02"), (3, "2026-03-09")):
        _with_header(folder / f"b{k}.sclog", _json({"athlete": "Ana", "started_at": f"{day}T07:00:00+00:00"}),
                     session_id=k)
    out = _cli("history", "import", folder, "--db", tmp_path / "h.sqlite")
    assert "3 imported" in out.stdout
    sessions = json.loads(_cli("history", "--db", tmp_path / "h.sqlite", "--json").stdout)["Ana"]["sessions"]
    assert sorted(s["started_from"] for s in sessions) == ["file time", "log", "log"]


def test_report_png_takes_an_athlete_name_that_looks_like_tex(tmp_path):
    path = _with_header(tmp_path / "tex.sclog", _json({"athlete": "$\\frac{1}{$ and $x$", "source": "ble"}))
    _cli("report", path, "-o", tmp_path / "r.html", "--png", tmp_path / "r.png", "--no-history")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_export_fit_takes_a_clip_name_outside_fits_rules(tmp_path):
    from strideclip.views.export import fit_serial

    for name in ("clip-zz", "clip-123456789", "Ana's clip \u2603", "clip-0000abcd"):
        path = _with_header(tmp_path / f"{len(name)}.sclog", _json({"athlete": "Ana", "clip_name": name}))
        _cli("export", path, "--format", "fit", "-o", tmp_path / f"{len(name)}.fit")
    assert [fit_serial(n) for n in ("clip-zz", "clip-123456789", "clip-0000abcd", None)] == [0, 0, 0xABCD, 0]


def test_history_takes_an_athlete_given_as_a_list(tmp_path):
    path = _with_header(tmp_path / "list.sclog", _json({"athlete": ["Ana", "Ben"], "clip_name": "Ana's clip"}))
    _cli("history", "import", path, "--db", tmp_path / "h.sqlite")
    got = json.loads(_cli("history", "--db", tmp_path / "h.sqlite", "--json").stdout)
    assert list(got) == ["Ana's clip"]  # no athlete in the log: the clip stands in
    assert "Ana's clip" in _cli("history", "--db", tmp_path / "h.sqlite").stdout


def test_report_html_keeps_its_charts_with_a_comment_and_script_in_the_athlete_name(tmp_path):
    name = "<!--<script>Ana</script>&"
    path = _with_header(tmp_path / "script.sclog", _json({"athlete": name, "source": "ble"}))
    _cli("report", path, "-o", tmp_path / "r.html", "--no-history")
    page = (tmp_path / "r.html").read_text()
    head, rest = page.split('<script type="application/json" id="report-data">')
    data, tail = rest.split("</script>", 1)
    assert "<" not in data and ">" not in data and "&" not in data and json.loads(data)["athlete"] == name
    # the name never opens a comment or a script: every chart's data and code is read as the page's
    assert "<!--" not in page and name not in page
    assert page.count("<script") == page.count("</script>") and "Bokeh" in head + tail


def test_the_live_terminal_view_shows_a_clip_name_that_looks_like_markup_as_it_is():
    """A clip names itself over the air: "[/x]" or "[bold]" is text, not rich markup."""
    import io

    from rich.console import Console

    from strideclip.session.pipeline import Session
    from strideclip.views.terminal import TerminalView

    class Clip:
        def __init__(self, name):
            self.name = name

        def values(self):
            v = Session().live_values()
            v.update(name=self.name, connected=True, reconnects=0, rtt_ms=None, rssi_dbm=-60, battery_pct=80,
                     error=None)
            return v

    out = io.StringIO()
    names = ["[/x]", "[bold]Ana", "[link=http://evil.example]x"]
    Console(file=out, width=400).print(TerminalView(title="t", live=False).render([Clip(n).values() for n in names],
                                                                                    width=400))
    for name in names:
        assert name in out.getvalue()
