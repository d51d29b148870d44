"""simulate -> log -> replay: every frame seen, gaps exactly where packets were dropped."""
import json
import subprocess
import time

import numpy as np
import pytest

from clipcore import protocol as P
from mpy import REPO, find_tool
from strideclip.session.replay import replay
from strideclip.sim import simulate, steady_run, truth_path, write_log
from strideclip.stream.decode import ClipEvent, Gap, SampleBlock, StreamDecoder
from strideclip.stream.packets import encode_packet, encode_samples

DATA = REPO / "tests" / "data"


def _cli(*args, timeout_s=300):
    done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_simulate_then_replay_round_trips(tmp_path):
    log = tmp_path / "run.sclog"
    _cli("simulate", "--minutes", 3, "--seed", 21, "--drop-prob", 0.02, "--rate-hz", 104, "-o", log)
    truth = json.loads(truth_path(log).read_text())
    summary = json.loads(_cli("replay", log, "--json"))
    spp = truth["scenario"]["link"]["samples_per_packet"]
    n_sent = -(-truth["n_samples"] // spp)
    n_received = n_sent - sum(-(-(b - a) // spp) for a, b in truth["dropped"])
    hellos = 1 + 3  # at the start and once a minute, as the clip sends it (the run lasts a little over 3 min)
    assert summary["frames"] == 1 + hellos + n_received  # header + hellos + every packet the host received
    assert summary["clip_packets"] == hellos + n_received
    received_span = (0, truth["n_samples"])
    interior = [g for g in truth["dropped"] if g[0] > received_span[0] and g[1] < received_span[1]]
    assert interior, "the scenario should have lost some packets"
    assert summary["gaps"] == interior
    assert summary["samples"] == truth["n_samples"] - sum(b - a for a, b in truth["dropped"])
    assert summary["rate_hz"] == 104 and summary["log_damage"]["clean"]
    for key in ("frames", "samples", "duration_s", "gaps", "cues"):
        assert key in summary


def test_replay_never_overwrites_and_refuses_bad_options(tmp_path):
    log = tmp_path / "x.sclog"
    _cli("simulate", "--minutes", 1, "-o", log)
    done = subprocess.run([find_tool("strideclip"), "simulate", "--minutes", "1", "-o", str(log)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "exists: add --force to replace it" in done.stderr
    done = subprocess.run([find_tool("strideclip"), "simulate", "--rate-hz", "100", "-o", str(tmp_path / "y.sclog")],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "100" in done.stderr


def test_replay_of_a_damaged_log_reports_and_keeps_the_rest(tmp_path):
    src = (DATA / "steady_208hz.sclog").read_bytes()
    damaged = bytearray(src)
    damaged[40_000:40_300] = bytes(300)  # a corrupt middle
    path = tmp_path / "damaged.sclog"
    path.write_bytes(bytes(damaged[:-50]))  # and a cut-off end
    clean = replay(DATA / "steady_208hz.sclog")
    got = replay(path)
    assert not got["log_damage"]["clean"]
    assert got["log_damage"]["incomplete_tail_bytes"] > 0
    assert got["log_damage"]["damaged_regions"][0][0] <= 40_000
    lost = clean["samples"] - got["samples"]
    assert 0 < lost <= 19 * 4  # at most the two or three packets the damage touched, plus the tail
    assert len(got["gaps"]) == 1  # the corrupt middle shows as a gap, never as invented samples


@pytest.mark.parametrize("name", ["steady_208hz", "lossy_104hz"])
def test_committed_logs_replay_as_their_truth_says(name):
    log = DATA / f"{name}.sclog"
    truth = json.loads(truth_path(log).read_text())
    s = replay(log)
    interior = [g for g in truth["dropped"] if g[0] > 0 and g[1] < truth["n_samples"]]
    assert s["gaps"] == interior
    assert s["rate_hz"] == truth["rate_hz"]


@pytest.mark.parametrize("name,args", [
    ("steady_208hz", dict(minutes=1, seed=11, drop_prob=0.0, rate_hz=208, mount=(0, 0, 0))),
    ("lossy_104hz", dict(minutes=1, seed=12, drop_prob=0.02, rate_hz=104, mount=(20, -30, 45))),
])
def test_committed_logs_are_reproducible(tmp_path, name, args):
    """If this fails, the simulator or the log format changed: regenerate tests/data (README there)."""
    from dataclasses import replace

    sc = steady_run(args["minutes"], seed=args["seed"], rate_hz=args["rate_hz"])
    sc = replace(sc, link=replace(sc.link, drop_prob=args["drop_prob"]),
                 sensor=replace(sc.sensor, mount_roll_deg=args["mount"][0], mount_pitch_deg=args["mount"][1],
                                mount_yaw_deg=args["mount"][2]))
    out = write_log(simulate(sc), tmp_path / f"{name}.sclog")
    assert out.read_bytes() == (DATA / f"{name}.sclog").read_bytes()


def test_replay_paces_by_receive_time(tmp_path):
    log = tmp_path / "pace.sclog"
    write_log(simulate(steady_run(1, seed=3)), log)
    t0 = time.monotonic()
    s = replay(log, speed=30)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.9 * s["duration_s"] / 30


def test_decoder_reports_gaps_and_merges_backfill_without_duplicates():
    dec = StreamDecoder()
    hello = P.Hello((0, 1, 0), 0, 208, 16, 2000, 488, 15625, 1, 1, 100, 19, 0)
    block = lambda k: np.full((19, 6), k, np.int16)  # noqa: E731
    out = dec.feed(encode_packet(hello), 0)
    assert isinstance(out[0], ClipEvent)
    dec.feed(encode_samples(0, 0, block(0)), 1)
    out = dec.feed(encode_samples(3, 57, block(3)), 2)  # packets 1 and 2 lost
    assert isinstance(out[0], Gap) and (out[0].start_idx, out[0].end_idx, out[0].lost_packets) == (19, 57, 2)
    assert isinstance(out[1], SampleBlock) and out[1].first_idx == 57
    assert dec.feed(encode_samples(3, 57, block(3)), 3) == []  # a repeated packet adds nothing
    out = dec.feed(encode_samples(0, 10, np.vstack([block(9)] * 2)[:38], backfill=True), 4)  # covers 10..47
    assert [(o.first_idx, len(o.counts), o.backfill) for o in out] == [(19, 29, True)]
    assert dec.open_gaps == [[48, 57]]
    assert dec.stats.lost_packets == 2 and dec.stats.backfilled_samples == 29
    bad = dec.feed(b"\x11\x00", 5)
    assert bad[0].error and dec.stats.bad_packets == 1


def test_a_step_table_is_the_callers_own_and_grows_with_the_session():
    """``Session.step_table`` joins the rows once until more come (a summary and ``analyse`` ask
    for it three times, #26): each caller still gets an array of its own, with every row so far."""
    from clipcore import logrecord as L
    from strideclip.session.pipeline import Session
    from strideclip.stream.sclog import iter_records

    packets = [(r.body, r.t_ms) for r in iter_records(DATA / "steady_208hz.sclog") if r.kind == L.REC_CLIP]
    session = Session()
    for body, t_ms in packets[:len(packets) // 2]:
        session.feed(body, t_ms)
    first = session.step_table()
    assert len(first) == len(session.step_rows) > 20
    first["cadence_spm"] = -1.0  # the caller's to change
    again = session.step_table()
    assert not (again["cadence_spm"] == -1.0).any() and again.flags.writeable
    for body, t_ms in packets[len(packets) // 2:]:
        session.feed(body, t_ms)
    session.finish()
    whole = session.step_table()
    assert len(whole) == len(session.step_rows) > len(again) and whole[:len(again)].tobytes() == again.tobytes()
