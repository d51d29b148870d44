"""A squad on a track with no radio (issue #24; docs/team.md, "How the team setup is tested"): one
air server (blesim/airserver.py) with the clips and a controller per gateway, a real
``strideclip gateway`` process on each controller, one coach (``strideclip live --broker``) on an
MQTT broker, clips roaming from gateway to gateway and a gateway killed; then the score: what
the coach's logs hold against each clip's simulated run, step by step, and how late.

Used by tests/test_air.py at test size and by bench/bench_team.py at the issue's full size.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from blesim.airclient import BACKEND, AirClient
from clipcore import protocol as P
from strideclip.sim import simulate, steady_run
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.stream.packets import encode_packet, encode_samples
from strideclip.stream.sclog import load_log

STRIDECLIP = str(Path(sys.executable).parent / "strideclip")
RING_WALL_S = 60.0  # the clip's backfill ring (issue #24: 60 s), in wall time whatever the run's speed
SPP = 19  # samples per packet (blesim/clip.py)
LAG_S = 1.5  # a hand-over where the old gateway learns of its loss this much after the clip
KILL_AT = 0.75  # of the run: the roams are over by 0.6


@dataclass
class Team:
    """The run's shape. Clip i starts in range of gateway i mod N; it roams ``roams`` times to the
    next gateway, in turn a plain move, an overlap (in both ranges for a moment, then the new one
    only) and a late loss (the old gateway still holds its side when the new one connects); then
    the gateway holding most clips is SIGKILLed, its clips in range of the gateway they came from."""

    gateways: int = 3
    clips: int = 4
    minutes: float = 4.0
    speed: float = 10.0
    roams: int = 3
    kill: bool = True
    gather: bool = True  # the squad starts in every gateway's range, the runs once each is at its own
    seed: int = 60
    done_timeout_s: float = 10.0  # after the runs end, for the coach's last backfills
    dashboard: bool = False  # the coach is `strideclip dashboard --broker` (a page to watch) instead of `live`

    @property
    def run_s(self) -> float:
        return self.minutes * 60 / self.speed


@dataclass
class Outcome:
    """What happened (the air's truth and the processes' logs) and the figures scored from it."""

    out: Path
    truths: dict = field(default_factory=dict)  # clip -> the air's truth
    exits: dict = field(default_factory=dict)  # process name -> exit code
    killed: str | None = None
    killed_at: float | None = None  # time.monotonic()
    back_s: dict = field(default_factory=dict)  # clip -> s from the kill to its next gateway's connection
    figures: dict = field(default_factory=dict)
    per_clip: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)  # process -> {"cpu_s", "wall_s", "rss_mb"} before it was stopped
    coach_at_start: dict = field(default_factory=dict)  # the coach's usage() as the runs started
    notes: list = field(default_factory=list)


def names(team: Team) -> tuple[list[str], list[str]]:
    return [f"gw-{i + 1}" for i in range(team.gateways)], [f"clip-{i + 1}" for i in range(team.clips)]


def plan(team: Team) -> list[tuple[float, str, list[str], float]]:
    """(seconds from the start, clip, the gateways it is then in range of, lag_s); the kill comes after."""
    gws, clips = names(team)
    rng = random.Random(team.seed)
    steps = []
    for k, clip in enumerate(clips):
        at = gws[k % len(gws)]
        for r in range(team.roams):
            t = team.run_s * (0.12 + 0.5 * r / max(1, team.roams)) + rng.uniform(0, 0.06 * team.run_s)
            new = gws[(gws.index(at) + 1) % len(gws)]
            if r % 3 == 1:  # both ranges for a moment, then the new one
                steps += [(t, clip, [at, new], 0.0), (t + LAG_S, clip, [new], 0.0)]
            else:  # a plain move; every third, the old gateway times out LAG_S after the clip
                steps.append((t, clip, [new], LAG_S if r % 3 == 2 else 0.0))
            at = new
    return sorted(steps)


def spawn(args: list[str], env: dict, out: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, stdout=open(out / f"{name}.out", "w"), stderr=open(out / f"{name}.err", "w"))


def usage(pid: int) -> dict:
    """CPU seconds, seconds since it started and resident memory of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    tick_hz = os.sysconf("SC_CLK_TCK")
    up_s = float(Path("/proc/uptime").read_text().split()[0])
    return {"cpu_s": (int(stat[11]) + int(stat[12])) / tick_hz, "wall_s": up_s - int(stat[19]) / tick_hz,
            "rss_mb": rss_kb / 1024}


def run_team(team: Team, out: Path, broker, on_dashboard: Callable[[str], None] | None = None) -> Outcome:
    """Run it: the coach and the gateways as processes on the air, the roams, the kill, the end.
    ``broker``: a running mosquitto from tests/broker.py ``start_broker`` with these gateways' users.
    ``on_dashboard``: called with the page's URL when the coach is a dashboard, before the runs start."""
    out.mkdir(parents=True, exist_ok=True)
    gws, clips = names(team)
    result = Outcome(out)
    everyone = ",".join(f"{c}={'+'.join(gws)}" for c in clips) if team.gather else None
    air = AirClient(gateways=team.gateways, clips=team.clips, minutes=team.minutes, speed=team.speed,
                    store_s=RING_WALL_S * team.speed, seed=team.seed, reach=everyone,
                    start="command" if team.gather else "heard", stderr_path=out / "air.err")
    procs: dict[str, subprocess.Popen] = {}
    try:
        coach_args = [STRIDECLIP, "dashboard" if team.dashboard else "live", "--broker", broker.url,
                      "--broker-credentials", str(broker.user_credentials_path(broker.coach)), "--broker-user",
                      broker.coach, "--out", str(out / "coach"), "--no-history"]
        coach_args += ["--port", "0"] if team.dashboard else []
        procs["coach"] = spawn(coach_args + [a for c in clips for a in ("--clip", c)], air.env(PYTHONUNBUFFERED="1"),
                               out, "coach")
        _wait_line(out / "coach.out", "dashboard: http" if team.dashboard else "following", procs["coach"])
        if team.dashboard and on_dashboard:
            said = (out / "coach.out").read_text().splitlines()
            on_dashboard(next(line.split()[1] for line in said if line.startswith("dashboard: ")))
        for gw in gws:
            procs[gw] = spawn([STRIDECLIP, "gateway", "--broker", broker.url, "--name", gw, "--broker-credentials",
                               str(broker.user_credentials_path(gw)), "--out", str(out / gw),
                               "--ble-backend", BACKEND], air.gateway_env(gw), out, gw)
        if team.gather:
            _gather(air, procs, out, gws, clips)
        _wait(lambda: all(s["sampled"] > 0 for s in _clips(air).values()) or None, 60, "every clip to be heard")
        result.coach_at_start = usage(procs["coach"].pid)
        t0 = time.monotonic()
        for t, clip, to, lag_s in plan(team):
            time.sleep(max(0.0, t0 + t - time.monotonic()))
            air.move(clip, *to, lag_s=lag_s)
        if team.kill:  # after every roam has settled
            time.sleep(max(0.0, t0 + KILL_AT * team.run_s - time.monotonic()))
            _kill(air, procs, result, gws)
        _wait(lambda: all(s["done"] for s in _clips(air).values()) or None, team.run_s + 60, "the runs to end")
        try:
            complete: set[str] = set()
            _wait(lambda: _coach_complete(out / "coach", air, complete), team.done_timeout_s, "the coach's backfills",
                  1.0)
        except TimeoutError as e:
            result.notes.append(str(e))  # (scored as it is: what is missing is counted)
    finally:
        if air.proc.poll() is None:  # the test's radio: its load is on this machine too
            result.usage["air"] = usage(air.proc.pid)
        _stop(procs, result, out)
        result.truths = {c: air.truth(c) for c in clips}
        air.close()
        (out / "truth.json").write_text(json.dumps(result.truths))
    if result.killed_at is not None:
        for clip, truth in result.truths.items():
            later = [lk for lk in truth["links"] if lk["connected_s"] > result.killed_at]
            held = [lk for lk in truth["links"] if lk["gateway"] == result.killed and lk["connected_s"] <= result.killed_at]
            if held and held[-1]["lost_s"] and held[-1]["lost_s"] >= result.killed_at - 0.01:
                result.back_s[clip] = later[0]["connected_s"] - result.killed_at if later else float("inf")
    return result


def _gather(air: AirClient, procs: dict, out: Path, gws: list[str], clips: list[str]) -> None:
    """The squad in every gateway's range until every gateway follows every clip (a gateway finds a
    clip new to it only by a scan now and then), then each clip at its own gateway, subscribed; go."""
    for gw in gws:
        for clip in clips:
            _wait_line(out / f"{gw}.out", f"carrying {clip} ", procs[gw])
    home = {clip: gws[k % len(gws)] for k, clip in enumerate(clips)}
    for clip, gw in home.items():
        air.move(clip, gw)
    _wait(lambda: all(s["connected_to"] == home[c] and s["listening"] for c, s in _clips(air).items()) or None,
          60, "each clip at its own gateway, subscribed")
    air.start()


def _stop(procs: dict, result: Outcome, out: Path) -> None:
    """Each process's CPU and memory, then Ctrl-C for everyone still running, and their exit codes."""
    for name, p in procs.items():
        if p.poll() is None:
            result.usage[name] = usage(p.pid)
            if name.startswith("gw-") and os.environ.get("BLESIM_DUMP"):  # where its tasks wait (blesim/remoteworld.py)
                p.send_signal(signal.SIGUSR1)
                time.sleep(0.5)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for name, p in procs.items():
        try:
            result.exits[name] = p.wait(60)
        except subprocess.TimeoutExpired:
            _where_stuck(name, p, out)
            p.kill()
            result.exits[name] = "hung"


def _where_stuck(name: str, p: subprocess.Popen, out: Path) -> None:
    """A process that did not end on Ctrl-C: where its asyncio tasks wait (a gateway's, on its
    stderr) and, with py-spy beside this Python, every thread's stack, in NAME.hang."""
    if name.startswith("gw-"):
        p.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
    spy = Path(sys.executable).parent / "py-spy"
    if spy.exists():
        dump = subprocess.run([str(spy), "dump", "--pid", str(p.pid), "--locals"], capture_output=True, text=True,
                              timeout=60)
        (out / f"{name}.hang").write_text(dump.stdout + dump.stderr)


def _clips(air: AirClient) -> dict:
    return air.status()["clips"]


def _wait(pred, timeout_s: float, what: str, every_s: float = 0.1):
    """Poll ``pred`` until it gives something other than None; TimeoutError naming ``what``."""
    t0 = time.monotonic()
    while (value := pred()) is None:
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(every_s)
    return value


def _wait_line(path: Path, text: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    def said():
        if proc.poll() is not None:
            err = path.with_suffix(".err").read_text()[-2000:]
            raise RuntimeError(f"{path.stem} ended (exit {proc.returncode}) before saying {text!r}: {err}")
        return True if text in path.read_text() else None

    _wait(said, timeout_s, f"{path.stem} to say {text!r}")


def _kill(air: AirClient, procs: dict, result: Outcome, gws: list[str]) -> None:
    """SIGKILL the gateway holding the most clips; each of them first also in range of the
    gateway it came from (which still follows it, waiting for it to advertise)."""
    status = _clips(air)
    held: dict[str, list[str]] = {}
    for clip, s in status.items():
        if s["connected_to"]:
            held.setdefault(s["connected_to"], []).append(clip)
    victim = max(held, key=lambda g: len(held[g]))
    for clip in held[victim]:
        before = [lk["gateway"] for lk in status[clip]["links"] if lk["gateway"] != victim]
        air.move(clip, victim, before[-1] if before else gws[(gws.index(victim) + 1) % len(gws)])
    result.usage[victim] = usage(procs[victim].pid)
    result.killed, result.killed_at = victim, time.monotonic()
    procs[victim].kill()


def coach_log(folder: Path, clip: str) -> Path:
    logs = sorted(folder.glob(f"{clip}-*.sclog"))
    if len(logs) != 1:
        raise AssertionError(f"the coach wrote {len(logs)} logs for {clip}: {[p.name for p in logs]}")
    return logs[0]


def _coach_complete(folder: Path, air: AirClient, done: set) -> bool | None:
    """True once the coach's log of every clip holds as many samples as its run (``done``: those that do)."""
    for clip, s in _clips(air).items():
        try:
            if clip not in done and len(load_log(coach_log(folder, clip)).sample_idx) >= s["samples"]:
                done.add(clip)
        except AssertionError:  # (no log yet)
            pass
    return True if len(done) == len(_clips(air)) else None


def reference_log(run, path: Path) -> Path:
    """The run as a host that missed nothing would have logged it (the clip's own packets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with SessionLogWriter(path, header={"athlete": path.stem, "source": "simulator", "rate_hz": run.rate_hz}) as w:
        w.clip_packet(encode_packet(run.hello), t_ms=0)
        for seq, first in enumerate(range(0, len(run.counts), SPP)):
            w.clip_packet(encode_samples(seq & 0xFFFF, first, run.counts[first:first + SPP]),
                          t_ms=(first + SPP) * 1000 // run.rate_hz)
    return path


def _steps(path: Path) -> tuple[dict, np.ndarray]:
    from strideclip.session.replay import analyse  # (what `strideclip replay` runs)

    return analyse(str(path))


def score(team: Team, result: Outcome) -> None:
    """Per clip and in all: samples the coach lacks, values not the clip's, steps doubled or lost
    against the run analysed whole, sample -> coach latency of live packets."""
    from collections import Counter

    _, clips = names(team)
    all_ms: list[np.ndarray] = []
    for k, clip in enumerate(clips):
        run = simulate(steady_run(team.minutes, seed=team.seed + k))  # what the air's clip ran
        path = coach_log(result.out / "coach", clip)
        log = load_log(path)
        n = len(run.counts)
        inside = log.sample_idx[log.sample_idx < n]
        pk = log.packets
        live = pk[pk["ptype"] == P.T_SAMPLES]
        truth = result.truths[clip]
        started = datetime.fromisoformat(log.header["started_at"]).timestamp()
        firsts, at = np.unique(live["first_idx"], return_index=True)  # the first copy of each
        made = truth["stream_started_utc"] + (firsts + live["count"][at]) / (truth["rate_hz"] * truth["speed"])
        ms = (started + live["t_ms"][at] / 1000 - made) * 1000
        all_ms.append(ms)
        got = Counter(_steps(path)[1]["ic_idx"].tolist())
        want = Counter(_steps(reference_log(run, result.out / "reference" / f"{clip}.sclog"))[1]["ic_idx"].tolist())
        stats = [e for _t, e in log.host_events if e["event"] == "link_stats"]
        result.per_clip[clip] = {
            "samples": n, "missing": int(n - len(inside)), "beyond_run": int(len(log.sample_idx) - len(inside)),
            "wrong_values": int((log.counts[: len(inside)] != run.counts[inside]).any(axis=1).sum()),
            "conflicting": log.conflicting_samples,
            "duplicates_dropped": stats[-1].get("duplicates_dropped") if stats else None,
            "steps": sum(want.values()), "doubled_steps": sum((got - want).values()),
            "lost_steps": sum((want - got).values()), "gateways": [lk["gateway"] for lk in truth["links"]],
            "latency_ms_p95": float(np.percentile(ms, 95)) if len(ms) else None,
            "gaps": [list(map(int, g)) for g in log.gaps],  # what is missing, and what the coach made of it:
            "backfill_failed": [f"{e['start_idx']}-{e['end_idx']}: {e['error']}" for _t, e in log.host_events
                                if e["event"] == "backfill_failed"],
        }
    ms = np.concatenate(all_ms) if all_ms else np.zeros(0)
    pc = result.per_clip.values()
    result.figures = {
        "clips": len(clips), "samples": sum(c["samples"] for c in pc), "lost_samples": sum(c["missing"] for c in pc),
        "wrong_values": sum(c["wrong_values"] for c in pc), "steps": sum(c["steps"] for c in pc),
        "doubled_steps": sum(c["doubled_steps"] for c in pc), "lost_steps": sum(c["lost_steps"] for c in pc),
        "duplicate_packets_dropped": sum(c["duplicates_dropped"] or 0 for c in pc),
        "roams": sum(len(c["gateways"]) - 1 for c in pc),
        "latency_ms_p50": float(np.percentile(ms, 50)) if len(ms) else None,
        "latency_ms_p95": float(np.percentile(ms, 95)) if len(ms) else None,
        "latency_ms_max": float(ms.max()) if len(ms) else None,
        "killed": result.killed, "back_s_max": max(result.back_s.values()) if result.back_s else None,
    }


def main_json(result: Outcome) -> str:
    return json.dumps({"figures": result.figures, "per_clip": result.per_clip, "back_s": result.back_s,
                       "usage": result.usage, "exits": result.exits, "notes": result.notes}, indent=1, default=str)
