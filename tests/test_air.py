"""Gateways as separate processes in one shared air (issue #24 item 5; docs/team.md, "How the team
setup is tested"). An air server process (tests/blesim/airserver.py) holds the simulated clips and
one bumble controller per gateway; each gateway is a real ``strideclip`` subprocess whose bleak
code talks HCI over TCP to its own controller there (``--ble-backend blesim.remoteworld:world``).
The tests move clips between gateways' ranges and hold each process's log to what the air
carried to that gateway (the air's truth) and to the simulated run itself.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from blesim.airclient import BACKEND, AirClient
from clipcore import protocol as P
from strideclip.sim import simulate, steady_run
from strideclip.stream.sclog import load_log

STRIDECLIP = str(Path(sys.executable).parent / "strideclip")
SUPERVISION_TIMEOUT = 0x08  # HCI_CONNECTION_TIMEOUT_ERROR
MINUTES, SPEED, SEED = 3.0, 10.0, 60  # each clip's run: 18 s of wall time


def live(air: AirClient, gateway: str, out: Path) -> subprocess.Popen:
    """``strideclip live --clip clip-1`` as gateway ``gateway``: its own process, its own controller."""
    folder = out / gateway
    folder.mkdir(parents=True)
    return subprocess.Popen([STRIDECLIP, "live", "--clip", "clip-1", "--out", str(folder), "--no-history",
                             "--ble-backend", BACKEND], env=air.gateway_env(gateway),
                            stdout=open(out / f"{gateway}.out", "w"), stderr=open(out / f"{gateway}.err", "w"))


def wait_for(what: str, pred, timeout_s: float = 30.0) -> float:
    """Poll until ``pred()``; the seconds it took. A test never hangs: it fails naming what it waited for."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"waited {timeout_s} s for {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


def clip_now(air: AirClient) -> dict:
    return air.status()["clips"]["clip-1"]


def stop(procs: list[subprocess.Popen], out: Path) -> None:
    """Ctrl-C each live process: each ends its link, closes its log and exits 0."""
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        code = p.wait(60)
        name = Path(p.args[p.args.index("--out") + 1]).name
        assert code == 0, (out / f"{name}.err").read_text()[-3000:]


def only_log(folder: Path):
    logs = sorted(folder.glob("*.sclog"))
    assert len(logs) == 1, logs
    return load_log(logs[0])


def held(log, ptype: int) -> np.ndarray:
    """The sample indices the log got in packets of this type (live SAMPLES or BACKFILL)."""
    sel = log.packets[log.packets["ptype"] == ptype]
    parts = [np.arange(a, a + n) for a, n in zip(sel["first_idx"], sel["count"])]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def carried(truth: dict, gateway: str, ptype: int) -> np.ndarray:
    """The sample indices the air carried to this gateway in packets of this type."""
    parts = [np.arange(a, b) for t, a, b in truth["carried"].get(gateway, []) if t == ptype]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def assert_true_to_the_run(log, run) -> None:
    """Every sample a log holds is the one the clip sampled."""
    assert log.conflicting_samples == 0
    assert np.array_equal(log.counts, run.counts[log.sample_idx])


@pytest.fixture
def run():
    return simulate(steady_run(MINUTES, seed=SEED))  # what clip-1 of the air runs


def test_a_clip_moved_between_two_live_processes_reaches_each_only_in_its_range(tmp_path, run):
    with AirClient(gateways=2, clips=1, minutes=MINUTES, speed=SPEED, store_s=240, seed=SEED,
                   stderr_path=tmp_path / "air.err") as air:
        a = live(air, "gw-1", tmp_path)  # the clip starts in gw-1's range only
        procs = [a]
        try:
            wait_for("gw-1 to stream 20 s of the run", lambda: clip_now(air)["sampled"] > 208 * 20)
            air.move("clip-1", "gw-2")  # out of gw-1's range, whatever packet is on its way
            procs.append(live(air, "gw-2", tmp_path))  # gw-2 finds it in its own scan
            wait_for("gw-2 to hold the clip", lambda: clip_now(air)["connected_to"] == "gw-2")
            joined = clip_now(air)["sampled"]
            wait_for("gw-2 to stream 20 s", lambda: clip_now(air)["sampled"] > joined + 208 * 20)
            air.move("clip-1", "gw-1")  # and back: gw-1's waiting connection completes
            wait_for("gw-1 to hold the clip again", lambda: clip_now(air)["connected_to"] == "gw-1")
            wait_for("the run to end", lambda: clip_now(air)["done"])
            time.sleep(1.0)  # (the last backfill)
        finally:
            truth = air.truth("clip-1")
            stop(procs, tmp_path)

    links = truth["links"]
    assert [lk["gateway"] for lk in links] == ["gw-1", "gw-2", "gw-1"]
    assert [lk["reason"] for lk in links[:2]] == [SUPERVISION_TIMEOUT] * 2  # each move, on the clip's side
    logs = {gw: only_log(tmp_path / gw) for gw in ("gw-1", "gw-2")}
    for gw, log in logs.items():
        # what came live is exactly what the air carried to this gateway while the clip was in its range
        assert np.array_equal(held(log, P.T_SAMPLES), carried(truth, gw, P.T_SAMPLES)), gw
        assert np.isin(held(log, P.T_BACKFILL), carried(truth, gw, P.T_BACKFILL)).all(), gw
        assert_true_to_the_run(log, run)
        lost = [e for _t, e in log.host_events if e["event"] == "link" and e["state"] == "lost"]
        assert lost, f"{gw} never heard its link was lost"
    live_1, live_2 = held(logs["gw-1"], P.T_SAMPLES), held(logs["gw-2"], P.T_SAMPLES)
    assert len(live_1) > 208 * 40 and len(live_2) > 208 * 15
    assert not np.intersect1d(live_1, live_2).size  # never heard by both: nothing while out of range
    # gw-1 was there at the start and the end and asked the clip for what it streamed to gw-2
    assert np.array_equal(logs["gw-1"].sample_idx, np.arange(len(run.counts)))
    assert np.isin(live_2, held(logs["gw-1"], P.T_BACKFILL)).all()


def test_a_clip_back_in_range_after_a_long_absence_is_reconnected_at_once(tmp_path):
    """A gateway whose clip is away for longer than two connection attempts (10 s each: each waits
    for the clip to advertise) does not pause between them as after a quick failure: the clip back
    in range is connected within a second, not after a back-off of up to 5 s."""
    with AirClient(gateways=2, clips=1, minutes=8.0, speed=SPEED, store_s=240, seed=SEED,
                   stderr_path=tmp_path / "air.err") as air:
        gw = live(air, "gw-1", tmp_path)
        try:
            wait_for("gw-1 to hold the clip", lambda: clip_now(air)["connected_to"] == "gw-1")
            air.move("clip-1", "gw-2")  # away: in the range of a gateway that is not there
            time.sleep(23.0)
            air.move("clip-1", "gw-1")
            back_s = wait_for("gw-1 to hold the clip again", lambda: clip_now(air)["connected_to"] == "gw-1", 15.0)
        finally:
            stop([gw], tmp_path)
    retries = [(t_ms, e) for t_ms, e in only_log(tmp_path / "gw-1").host_events
               if e["event"] == "link" and e["state"] == "retry"]
    assert len(retries) >= 2, retries  # two attempts timed out waiting for the clip
    assert all(e["wait_s"] <= 0.25 for _t, e in retries), retries
    assert back_s < 1.5, f"the clip back in range was connected {back_s:.1f} s later"


def test_a_hand_over_with_both_gateways_holding_the_clip_and_a_gateway_killed(tmp_path, run):
    """Both gateways see the clip at first; the one that got it loses it late (its side of the link
    times out 1.5 s after the clip's), so for a moment both hold it; then the new holder's process
    is SIGKILLed with the clip in both ranges: the other gateway has it back within 5 s and
    backfills the gap."""
    with AirClient(gateways=2, clips=1, minutes=MINUTES, speed=SPEED, store_s=240, seed=SEED,
                   reach="clip-1=gw-1+gw-2", stderr_path=tmp_path / "air.err") as air:
        procs = {gw: live(air, gw, tmp_path) for gw in ("gw-1", "gw-2")}
        try:
            wait_for("a gateway to hold the clip", lambda: clip_now(air)["connected_to"] is not None)
            first = clip_now(air)["connected_to"]
            other = "gw-2" if first == "gw-1" else "gw-1"
            wait_for("10 s of the run", lambda: clip_now(air)["sampled"] > 208 * 10)
            air.move("clip-1", other, lag_s=1.5)
            wait_for(f"{other} to hold the clip", lambda: clip_now(air)["connected_to"] == other)
            joined = clip_now(air)["sampled"]
            air.move("clip-1", "gw-1", "gw-2")  # back in both ranges: `first` waits to reconnect
            wait_for(f"{other} to stream 10 s", lambda: clip_now(air)["sampled"] > joined + 208 * 10)
            killed_at = time.monotonic()
            procs[other].kill()  # no goodbye: the gateway just goes silent
            wait_for(f"{first} to hold the clip again", lambda: clip_now(air)["connected_to"] == first)
            wait_for("the run to end", lambda: clip_now(air)["done"])
            time.sleep(1.0)
        finally:
            truth = air.truth("clip-1")
            procs[other].kill()
            stop([procs[first]], tmp_path)
        assert procs[other].wait() == -signal.SIGKILL

    links = truth["links"]
    assert [lk["gateway"] for lk in links] == [first, other, first]
    handed, taken, back = links
    assert handed["reason"] == SUPERVISION_TIMEOUT
    # the old holder still had its side of the link when the new one connected
    assert handed["lost_s"] <= taken["connected_s"] < handed["gateway_lost_s"]
    assert taken["reason"] == SUPERVISION_TIMEOUT  # the killed gateway's clip timed out
    back_s = back["connected_s"] - killed_at  # (the air's clock is this machine's monotonic one)
    assert taken["lost_s"] - killed_at >= 0.7  # the clip heard nothing more, then timed out
    assert back_s < 5.0, f"back through {first} {back_s:.1f} s after {other} was killed"
    log = only_log(tmp_path / first)
    assert np.array_equal(held(log, P.T_SAMPLES), carried(truth, first, P.T_SAMPLES))
    assert np.array_equal(log.sample_idx, np.arange(len(run.counts)))  # the gaps backfilled
    assert_true_to_the_run(log, run)
    dead = only_log(tmp_path / other)  # as far as its process wrote it before the kill
    assert np.isin(held(dead, P.T_SAMPLES), carried(truth, other, P.T_SAMPLES)).all()
    assert_true_to_the_run(dead, run)


def test_a_squad_roams_over_three_gateway_processes_and_a_broker_with_one_gateway_killed(tmp_path):
    """The team run of bench/bench_team.py, small: 3 gateway processes on one air, a real mosquitto,
    one coach (`live --broker`); 4 clips each roam 3 times (a plain move, an overlap, a late loss),
    then the gateway holding most clips is SIGKILLed. The coach's log of every clip holds every
    sample of its run, each the clip's own, and the analysis finds each step of the run once."""
    from blesim.team import Team, names, run_team, score
    from broker import start_broker

    team = Team(gateways=3, clips=4, minutes=MINUTES, speed=SPEED, roams=3, seed=SEED, done_timeout_s=30.0)
    broker = start_broker(tmp_path, gateways=names(team)[0])
    try:
        result = run_team(team, tmp_path / "team", broker)
    finally:
        broker.close()
    score(team, result)
    f, per_clip = result.figures, result.per_clip
    assert f["lost_samples"] == 0, {c: (p["missing"], p["gaps"], p["backfill_failed"]) for c, p in per_clip.items()}
    assert f["wrong_values"] == 0 and all(p["conflicting"] == 0 for p in per_clip.values())
    assert f["steps"] > 1000 and f["doubled_steps"] == 0 and f["lost_steps"] == 0
    # each clip was moved on 3 times; a move made before the clip had reached the gateway of the move
    # before skips that one in its links (seen once in 7 runs), so at least 2 changes each, 3 on average
    changes = {c: len(p["gateways"]) - 1 for c, p in per_clip.items()}
    assert min(changes.values()) >= team.roams - 1 and sum(changes.values()) >= team.clips * team.roams, \
        {c: p["gateways"] for c, p in per_clip.items()}
    assert f["duplicate_packets_dropped"] > 0  # the overlaps and late losses did deliver repeats
    assert result.killed and result.back_s and max(result.back_s.values()) < 5.0, result.back_s
    assert result.exits.pop(result.killed) == -signal.SIGKILL
    assert set(result.exits.values()) == {0}, (result.exits, result.notes)
