"""One path for a session's data (#22): every reader and command gives the same samples, steps
and counts for the same log, backfilled samples are analysed in order, and one damaged HELLO
loses only what it touches."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clipcore import protocol as P
from strideclip.analysis.binned import binned_median
from strideclip.stream.packets import encode_packet, encode_samples
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.stream.sclog import load_log
from strideclip.sim import simulate, steady_run, write_log

EXE = Path(sys.executable).parent / "strideclip"
SPP = 19


def cli(*args, ok=True):
    done = subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def replayed(log) -> dict:
    return json.loads(cli("replay", log, "--json").stdout)


def write_packets(path, hello, packets, *, header=None):
    """A log as the host records it: (t_ms, packet) in arrival order."""
    with SessionLogWriter(path, header={"athlete": "Ana", "source": "ble", "clip_name": "clip", **(header or {})}) as w:
        w.clip_packet(encode_packet(hello), t_ms=0)
        for t_ms, pkt in packets:
            w.clip_packet(pkt, t_ms=t_ms)
    return path


def write_restarted(path, hello, first, later_counts):
    """A log whose clip restarts after the packets ``first``: the next session's HELLO, then
    ``later_counts`` live from index 0 again."""
    t_end = first[-1][0]
    again = hello._replace(session_id=hello.session_id + 1)
    later = [(t_end + 1000 + t, p) for t, p in live_packets(later_counts, hello.rate_hz)]
    return write_packets(path, hello, [*first, (t_end + 500, encode_packet(again)), *later])


def live_packets(counts, rate_hz, *, skip=(), start_seq=0):
    """SAMPLES packets for every sample, except those whose first sample lies in ``skip`` [a, b)."""
    out = []
    for k, first in enumerate(range(0, len(counts), SPP)):
        if skip and skip[0] <= first < skip[1]:
            continue
        t_ms = int((first + SPP) * 1000 / rate_hz) + 20
        out.append((t_ms, encode_samples((start_seq + k) & 0xFFFF, first, counts[first:first + SPP])))
    return out


@pytest.fixture(scope="module")
def run90():
    run = simulate(steady_run(1.5, seed=7))  # 90 s: walk, run, walk
    return run


def test_a_fully_backfilled_gap_replays_with_every_step(run90, tmp_path):
    rate = run90.rate_hz
    counts = run90.counts
    whole = write_packets(tmp_path / "whole.sclog", run90.hello, live_packets(counts, rate))
    gap = (40 * rate // SPP * SPP, 55 * rate // SPP * SPP)  # 15 s lost on the link ...
    pkts = live_packets(counts, rate, skip=gap)
    back_at = next(t for t, p in pkts if P.u32(p, 3) >= gap[1]) + 500  # ... asked back as soon as seen
    for k, first in enumerate(range(gap[0], gap[1], SPP)):
        pkts.append((back_at + 10 * k, encode_samples(k, first, counts[first:first + SPP], backfill=True)))
    pkts.sort(key=lambda tp: tp[0])
    filled = write_packets(tmp_path / "filled.sclog", run90.hello, pkts)
    a, b = replayed(whole), replayed(filled)
    assert a["steps"] > 150
    assert b["steps"] == a["steps"], (a["steps"], b["steps"])
    assert b["samples"] == a["samples"] == len(load_log(filled).sample_idx)


def _flip_hello(log: Path, which: int = 0) -> Path:
    """One byte of the log's ``which``-th HELLO flipped (its frame's CRC then fails)."""
    data = bytearray(log.read_bytes())
    hello_header = bytes([P.header_byte(P.T_HELLO)])
    at, seen = -1, -1
    while seen < which:
        at = data.index(hello_header, at + 1)
        seen += 1
    data[at + 6] ^= 0xFF
    out = log.with_name(log.stem + "-damaged.sclog")
    out.write_bytes(bytes(data))
    return out


def test_one_damaged_hello_loses_only_what_it_touches(tmp_path):
    run = simulate(steady_run(3, seed=11))
    log = write_log(run, tmp_path / "run.sclog")  # the HELLO at the start and once a minute, as the clip
    damaged = _flip_hello(log)
    a, b = replayed(log), replayed(damaged)
    assert b["log_damage"]["bad_frames"] >= 1
    assert b["rate_hz"] == 208 and b["samples"] == a["samples"] and b["steps"] == a["steps"]
    whole, hurt = load_log(log), load_log(damaged)
    assert hurt.hello == whole.hello and np.array_equal(hurt.accel_g(), whole.accel_g())


def test_a_log_whose_only_hello_is_damaged_says_so(tmp_path):
    run = simulate(steady_run(0.5, seed=12))
    log = write_log(run, tmp_path / "short.sclog")  # 30 s: one HELLO
    damaged = _flip_hello(log)
    for args in (("replay", damaged), ("report", damaged, "-o", tmp_path / "r.html"),
                 ("export", damaged, "--format", "csv", "-o", tmp_path / "s.csv")):
        done = cli(*args, ok=False)
        assert done.returncode == 1 and "no intact HELLO" in done.stderr, (args, done.stderr)


def test_two_clip_sessions_in_one_log_are_kept_apart_and_counted_alike(run90, tmp_path):
    rate, counts = run90.rate_hz, run90.counts
    log = write_restarted(tmp_path / "restart.sclog", run90.hello, live_packets(counts[:40 * rate], rate),
                          counts[40 * rate:])
    s = replayed(log)
    loaded = load_log(log)
    assert [len(part.sample_idx) for part in loaded.sessions] == [40 * rate, len(counts) - 40 * rate]
    assert s["samples"] == sum(len(part.sample_idx) for part in loaded.sessions) == len(counts)
    assert len(s["restarts"]) == 1


def test_every_export_has_one_row_per_step(run90, tmp_path):
    rate, counts = run90.rate_hz, run90.counts
    gap = (40 * rate // SPP * SPP, 55 * rate // SPP * SPP)  # lost and never asked back
    log = write_packets(tmp_path / "gap.sclog", run90.hello, live_packets(counts, rate, skip=gap))
    steps = replayed(log)["steps"]
    cli("replay", log, "--steps-csv", tmp_path / "steps.csv")
    cli("export", log, "--format", "csv", "-o", tmp_path / "export.csv")
    for csv in ("steps.csv", "export.csv"):
        rows = [r for r in (tmp_path / csv).read_text().splitlines()[1:] if r and not r.startswith("#")]
        assert len(rows) == steps, (csv, len(rows), steps)


def test_a_header_only_log_gets_one_answer_from_every_command(tmp_path):
    log = tmp_path / "empty.sclog"
    SessionLogWriter(log, header={"athlete": "Ana", "source": "ble"}).close()
    for args in (("replay", log), ("report", log, "-o", tmp_path / "r.html"),
                 ("export", log, "--format", "csv", "-o", tmp_path / "s.csv")):
        done = cli(*args, ok=False)
        assert done.returncode == 1 and "no samples" in done.stderr, (args, done.stderr)


def _report_data(html_path: Path) -> dict:
    import re

    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                html_path.read_text(), re.S).group(1))


def test_replay_report_export_and_history_agree_on_a_log_with_drops_backfill_a_restart_and_damage(run90, tmp_path):
    rate, counts = run90.rate_hz, run90.counts
    cut = 50 * rate // SPP * SPP  # the clip restarts here: its second session counts from 0 again
    filled, lost = (10 * rate // SPP * SPP, 15 * rate // SPP * SPP), (30 * rate // SPP * SPP, 33 * rate // SPP * SPP)
    first = [(t, p) for t, p in live_packets(counts[:cut], rate) if not (filled[0] <= P.u32(p, 3) < filled[1]
                                                                         or lost[0] <= P.u32(p, 3) < lost[1])]
    back_at = 20_000
    first += [(back_at + k, encode_samples(k, f, counts[f:f + SPP], backfill=True))
              for k, f in enumerate(range(*filled, SPP))]
    first.sort(key=lambda tp: tp[0])
    log = write_restarted(tmp_path / "messy.sclog", run90.hello, first, counts[cut:])
    data = bytearray(log.read_bytes())
    data[len(data) // 3] ^= 0xFF  # and one damaged record
    log.write_bytes(bytes(data))

    s = replayed(log)
    assert len(s["restarts"]) == 1 and s["log_damage"]["bad_frames"] >= 1
    assert s["samples"] == sum(len(p.sample_idx) for p in load_log(log).sessions)
    cli("export", log, "--format", "csv", "-o", tmp_path / "steps.csv")
    rows = [r.split(",") for r in (tmp_path / "steps.csv").read_text().splitlines() if r and not r.startswith("#")]
    head, rows = rows[0], rows[1:]
    cadence = np.array([float(r[head.index("cadence_spm")]) if r[head.index("cadence_spm")] else np.nan
                        for r in rows if r[head.index("running")] == "1"])
    assert len(rows) == s["steps"]
    step_s = 60.0 / cadence[np.isfinite(cadence)]  # (the summary's median: of step times in whole samples)
    assert round(60.0 / binned_median(np.round(step_s * s["rate_hz"]) / s["rate_hz"], 1 / s["rate_hz"]), 1) \
        == s["cadence_spm_median"]
    cli("report", log, "-o", tmp_path / "r.html", "--db", tmp_path / "h.sqlite")
    shown = _report_data(tmp_path / "r.html")
    assert shown["steps"] == s["steps"] and shown["running_steps"] == s["running_steps"]
    assert shown["medians"]["cadence_spm"] == s["cadence_spm_median"]
    cli("history", "import", log, "--db", tmp_path / "h.sqlite")
    (kept,) = json.loads(cli("history", "--json", "--db", tmp_path / "h.sqlite").stdout)["Ana"]["sessions"]
    assert kept["steps"] == s["steps"] and kept["running_steps"] == s["running_steps"]
    for col in ("cadence_spm", "peak_vertical_g", "pelvic_rotation_deg"):
        assert kept[col] == s[f"{col}_median"], col


def test_a_live_view_lags_one_gap_wait_at_most_however_close_the_gaps():
    """Each gap's wait for its backfill runs from when the samples after it came: a lossy link
    with a gap every few seconds keeps the live analysis within HOLD_S of the newest sample, and
    a source that can take no backfill does not wait at all."""
    from strideclip.session.pipeline import HOLD_S, Session

    run = simulate(steady_run(4, seed=12))
    packets = [(t, p) for k, (t, p) in enumerate(run.link.packets) if k % 150 != 75]  # a gap every ~14 s
    for wait_s, most_lag_s in ((HOLD_S, HOLD_S + 2), (0, 8)):  # 8 s: the detector starts again after a gap
        s = Session(gap_wait_s=wait_s)
        s.feed(encode_packet(run.hello), 0)
        lag_s = []
        for t_ms, pkt in packets:
            s.feed(pkt, t_ms)
            if s.step_rows and t_ms > 70_000:
                lag_s.append(s.now_s - float(s.step_rows[-1]["t_s"][0]))
        assert len(s.decoder.all_gaps) >= 12
        assert max(lag_s) <= most_lag_s, (wait_s, max(lag_s))
        s.finish(t_ms)
        assert s.step_count == len(s.step_rows)  # and every step has its row once the link ends
