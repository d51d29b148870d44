"""A team over a real broker (issue #24, docs/team.md): `strideclip gateway` processes carry
simulated clips that answer commands to the coach (`strideclip live --broker`, or the coach's
code in this process) through mosquitto configured by `strideclip broker-config`
(tests/broker.py). What the coach records is held against the simulated runs themselves and
against the gateways' own logs.

Clips roaming between gateways over a shared radio are tests/test_air.py's; here a clip's
hand-over is played by two gateways in this process whose simulated clip is in reach of each
for set stretches of the run (``RoamingClip``): overlapping, then a gap the returning gateway's
clip fills by backfill."""
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rig import run_async  # (a page test's Playwright loop may hold the main thread)
from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip.link.broker import BrokerLink
from strideclip.link.playback import SimulatedClipTransport
from strideclip.link.sources import ClipSource, broker_source
from strideclip.session.gateway import Gateway
from strideclip.session.live import open_clips, run_clips
from strideclip.link.mqtt import parse_url
from strideclip.sim import demo_run, simulate
from strideclip.stream.sclog import iter_records, load_log

EXE = str(Path(sys.executable).parent / "strideclip")
SIM_MINUTES = 5  # the gateway's --minutes: the shortest simulated athlete's run


def athlete_run(i: int):
    """athlete-i's run as `strideclip gateway --simulate` simulates it (seeds 200, 201, ...)."""
    return simulate(demo_run(199 + i, minutes=SIM_MINUTES))


def gateway_cmd(broker, name: str, out: Path, *args: str) -> list[str]:
    return [EXE, "gateway", "--broker", broker.url, "--name", name, "--broker-credentials",
            str(broker.user_credentials_path(name)), "--out", str(out), "--minutes", str(SIM_MINUTES), *args]


def the_log(folder: Path, clip: str) -> Path:
    (path,) = sorted(folder.glob(f"{clip}-*.sclog"))
    return path


def wait_for_line(path: Path, text: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in (path.read_text() if path.exists() else ""):
        assert proc.poll() is None, f"ended before saying {text!r}: {path.read_text()}"
        assert time.monotonic() < deadline, f"never said {text!r}"
        time.sleep(0.05)


def assert_whole(log, run) -> int:
    """Every sample from the first to the last, exactly the simulated clip's: their number."""
    n = len(log.sample_idx)
    assert log.gaps == [], f"{log.path}: samples missing {log.gaps}"
    assert log.sample_idx[0] == 0 and log.sample_idx[-1] == n - 1
    np.testing.assert_array_equal(log.counts, run.counts[:n])
    return n


def assert_holds(log, run, n: int) -> None:
    """The log holds the run's first ``n`` samples, each exactly (and maybe more after them)."""
    np.testing.assert_array_equal(log.sample_idx[:n], np.arange(n))
    np.testing.assert_array_equal(log.counts[:n], run.counts[:n])


def test_a_gateway_carries_every_sample_of_its_clips_to_the_coach(mosquitto_broker, tmp_path):
    b = mosquitto_broker
    coach_out = tmp_path / "coach.txt"
    with open(coach_out, "w") as out:
        coach = subprocess.Popen([EXE, "live", "--broker", b.url, "--broker-credentials", str(b.credentials_path),
                                  "--clip", "athlete-1", "--clip", "athlete-2", "--seconds", "16", "--out",
                                  str(tmp_path / "coach"), "--no-history"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_line(coach_out, "recording", coach)
        gw = subprocess.run(gateway_cmd(b, "gw-a", tmp_path / "gw", "--simulate", "2", "--speed", "20",
                                        "--seconds", "6"), capture_output=True, text=True, timeout=60)
        assert gw.returncode == 0, gw.stderr
        assert coach.wait(30) == 0, coach_out.read_text()
    finally:
        coach.kill()
    said = coach_out.read_text()
    assert "following athlete-1, athlete-2 through the broker" in said
    backfilled = 0
    for i in (1, 2):
        run = athlete_run(i)
        coach_log, gw_log = load_log(the_log(tmp_path / "coach", f"athlete-{i}")), load_log(the_log(tmp_path / "gw", f"athlete-{i}"))
        n = assert_whole(coach_log, run)
        assert n >= 0.8 * 6 * 20 * run.rate_hz  # 6 s at 20x real time
        assert_holds(gw_log, run, n)  # the gateway's safety copy too (and what its clip sent as it stopped)
        assert coach_log.header["source"] == "broker" and gw_log.header["gateway"] == "gw-a"
        links = [e for _t, e in coach_log.host_events if e.get("event") == "link"]
        assert links[0]["state"] == "connected" and links[0]["gateway"] == "gw-a"
        backfilled += int((coach_log.packets["ptype"] == P.T_BACKFILL).sum())
    assert backfilled > 0  # the simulated link's losses, asked back through the gateway


def test_a_gateway_finds_ble_clips_and_carries_them(mosquitto_broker, tmp_path):
    """The gateway's BLE side: clips found by a scan (tests/blesim: bleak over bumble, simulated
    clips that stream once connected), carried whole to the coach."""
    from strideclip.sim import steady_run

    b = mosquitto_broker
    coach_out = tmp_path / "coach.txt"
    with open(coach_out, "w") as out:
        coach = subprocess.Popen([EXE, "live", "--broker", b.url, "--broker-credentials", str(b.credentials_path),
                                  "--clip", "clip-1", "--clip", "clip-2", "--seconds", "18", "--out",
                                  str(tmp_path / "coach"), "--no-history"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_line(coach_out, "recording", coach)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "BLESIM_CLIPS": "2", "BLESIM_SPEED": "10",
               "BLESIM_MINUTES": "0.5"}
        gw = subprocess.run(gateway_cmd(b, "gw-a", tmp_path / "gw", "--seconds", "12", "--ble-backend",
                                        "blesim.cliworld:world"), capture_output=True, text=True, timeout=60, env=env)
        assert gw.returncode == 0, gw.stderr
        assert coach.wait(30) == 0, coach_out.read_text()
    finally:
        coach.kill()
    assert "carrying clip-1" in gw.stdout and "carrying clip-2" in gw.stdout
    for i in (1, 2):
        run = simulate(steady_run(0.5, seed=59 + i))  # the clips of blesim.cliworld
        n = assert_whole(load_log(the_log(tmp_path / "coach", f"clip-{i}")), run)
        assert len(run.counts) - 19 < n <= len(run.counts)  # the whole run (30 s at 10x) but a last part-batch
        assert_holds(load_log(the_log(tmp_path / "gw", f"clip-{i}")), run, n)


class RoamingClip(SimulatedClipTransport):
    """A simulated clip in this gateway's reach only for ``windows_s`` (run seconds): its packets
    outside them never reach this gateway, it says "lost" on leaving and "connected" on coming
    back, and answers commands only while here. All copies of one clip share one start
    (``epoch``, time.monotonic()), so it is one clip moving between gateways."""

    def __init__(self, name, run, *, windows_s, epoch, **kw):
        super().__init__(name, run, **kw)
        self.windows_s, self.epoch = windows_s, epoch

    def _here(self, t_s: float) -> bool:
        return any(a <= t_s < b for a, b in self.windows_s)

    async def run(self, stop: asyncio.Event) -> None:
        self._started = self.epoch
        stopped = asyncio.ensure_future(stop.wait())
        for t_ms, pkt in self.packets:
            t_s = t_ms / 1000
            wait_s = self.epoch + t_s / self.speed - time.monotonic()
            if wait_s > 0:
                await asyncio.wait({stopped}, timeout=wait_s)
            if stop.is_set() or t_s >= self.windows_s[-1][1]:
                break
            if self._here(t_s) != self.connected:
                self.connected = not self.connected
                self.on_link("connected" if self.connected else "lost")
            if self.connected:
                self.on_packet(pkt, time.monotonic())
        if self.connected:
            self.connected = False
            self.on_link("lost")
        await stopped


def test_a_clip_handed_between_gateways_is_merged_and_its_gap_backfilled(mosquitto_broker, tmp_path):
    """gw-a has the clip for run seconds 0-20, gw-b for 15-40 (both at once for 5 s), gw-a again
    from 50 to 70: the coach's log holds every sample once, and the 40-50 s gap came back as
    backfill through gw-a, the gateway holding the clip when it was seen."""
    b = mosquitto_broker
    url = parse_url(b.url)
    run = athlete_run(1)
    speed = 6.0
    reach = {"gw-a": [(0, 20), (50, 70)], "gw-b": [(15, 40)]}

    async def main():
        coach = BrokerLink(url, user="coach", password=b.users["coach"])
        await coach.start()
        (clip,) = open_clips([broker_source("clip-1", coach)], tmp_path / "coach")
        epoch = time.monotonic() + 1.0
        gateways = []
        for name, windows in reach.items():
            gw = Gateway(name, url, tmp_path / name, user=name, password=b.users[name])
            await gw.start()
            gw.follow([ClipSource("clip-1", "air", "simulator", lambda windows=windows, **cb: RoamingClip(
                "clip-1", run, windows_s=windows, epoch=epoch, speed=speed, **cb))])
            gateways.append(gw)
        seconds = 1.0 + 70 / speed + 2.0
        await asyncio.gather(run_clips([clip], seconds=seconds + 1.0), *(g.run(seconds=seconds) for g in gateways))
        for g in gateways:
            await g.close()
        await coach.close()
        return clip

    clip = run_async(main())
    log = load_log(clip.log_path)
    n = assert_whole(log, run)
    assert n >= 69 * run.rate_hz
    links = [(e["state"], e.get("gateway")) for _t, e in log.host_events
             if e.get("event") == "link" and e["state"] in ("connected", "handover", "lost")]
    assert links == [("connected", "gw-a"), ("handover", "gw-b"), ("lost", "gw-b"), ("connected", "gw-a"),
                     ("lost", "gw-a")]
    filled = np.zeros(n, bool)
    for _t, e in log.host_events:
        if e.get("event") == "gap_filled":
            filled[e["start_idx"]:e["end_idx"]] = True
    assert filled[41 * run.rate_hz:49 * run.rate_hz].all()  # the run's 40-50 s, where no gateway had the clip
    stats = [e for _t, e in log.host_events if e.get("event") == "link_stats"][-1]
    assert stats["duplicates_dropped"] > 4 * run.rate_hz / 19  # the 5 s both had it: each packet once
    assert stats["handovers"] == 1 and stats["gateways"] == "gw-a,gw-b"
    gw_a = load_log(the_log(tmp_path / "gw-a", "clip-1"))  # the backfill went through gw-a: its log has it too
    assert (gw_a.packets["ptype"] == P.T_BACKFILL).sum() > 0


def test_the_coachs_cue_reaches_the_clip_through_its_gateway_and_a_killed_gateway_is_seen(mosquitto_broker,
                                                                                            tmp_path):
    from strideclip.views.dashboard.markup import tile_html
    from strideclip.views.dashboard.state import Dashboard

    b = mosquitto_broker
    gw = subprocess.Popen(gateway_cmd(b, "gw-a", tmp_path / "gw", "--simulate", "1", "--speed", "5", "--seconds", "60"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def main():
        coach = BrokerLink(b.url, user="coach", password=b.users["coach"])
        await coach.start()
        (clip,) = open_clips([broker_source("athlete-1", coach)], tmp_path / "coach")
        stop = asyncio.Event()
        running = asyncio.ensure_future(run_clips([clip], stop=stop))
        try:
            deadline = time.monotonic() + 30
            while not (clip.link.connected and clip.session.step_count):
                assert gw.poll() is None and time.monotonic() < deadline, "the gateway's clip never came"
                await asyncio.sleep(0.1)
            cue = await clip.coach_cue("metronome", tempo_spm=172, duration_s=20)
            tile = Dashboard([clip], out_dir=tmp_path / "coach").athlete(0)
            gw.send_signal(signal.SIGKILL)  # the gateway loses power: its will says so
            killed = time.monotonic()
            while clip.link.connected:
                await asyncio.sleep(0.02)
            seen_s = time.monotonic() - killed
        finally:
            stop.set()
            await running
            await coach.close()
        return clip, cue, tile, seen_s

    try:
        clip, cue, tile, seen_s = run_async(main())
    finally:
        gw.kill()
        gw.wait()
    assert cue.sent and cue.error is None
    assert tile["gateway"] == "gw-a" and 'data-key="gateway" data-value="gw-a"' in tile_html(tile)
    assert seen_s < 2.0
    log = load_log(clip.log_path)
    sent = [e for _t, e in log.host_events if e.get("event") == "cue_sent"]
    assert [(e["played"], e["tempo_spm"]) for e in sent] == [("metronome_start", 172)]
    lost = [e for _t, e in log.host_events if e.get("event") == "link" and e["state"] == "lost"]
    assert lost[-1]["reason"] == "gateway gw-a went offline"
    # the command the coach packed is the one the gateway wrote to the clip, and the clip answered it
    cue_cmds = [pkt for _t, pkt in log.sent if pkt[2] == P.OP_METRONOME_START]
    gw_sent = [bytes(r.body) for r in iter_records(the_log(tmp_path / "gw", "athlete-1")) if r.kind == L.REC_TX]
    assert cue_cmds and cue_cmds[0] in gw_sent
    answered = [m for _t, m in log.events if isinstance(m, P.Result) and m.opcode == P.OP_METRONOME_START]
    assert [r.code for r in answered] == [P.RESULT_OK]


def test_a_broker_restarted_mid_run_loses_nothing(mosquitto_broker, tmp_path):
    """The broker crashes (SIGKILL) and comes back: the gateway holds its packets and sends them
    when it is back; the coach reconnects and, with backfill for what it missed, has every sample."""
    b = mosquitto_broker
    coach_out = tmp_path / "coach.txt"
    with open(coach_out, "w") as out:
        coach = subprocess.Popen([EXE, "live", "--broker", b.url, "--broker-credentials", str(b.credentials_path),
                                  "--clip", "athlete-1", "--seconds", "20", "--out", str(tmp_path / "coach"),
                                  "--no-history"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_line(coach_out, "recording", coach)
        gw = subprocess.Popen(gateway_cmd(b, "gw-a", tmp_path / "gw", "--simulate", "1", "--speed", "10",
                                          "--seconds", "12"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        gw_log = None
        deadline = time.monotonic() + 30
        while gw_log is None or len(load_log(gw_log).sample_idx) < 3 * 10 * 208:  # 3 s of the run carried
            assert gw.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
            gw_log = next(iter((tmp_path / "gw").glob("athlete-1-*.sclog")), None)
        b.kill()
        time.sleep(2.0)  # 20 s of the clip's run while there is no broker
        b.start()
        out, err = gw.communicate(timeout=60)
        assert gw.returncode == 0, err
        assert coach.wait(40) == 0, coach_out.read_text()
    finally:
        coach.kill()
        if gw.poll() is None:
            gw.kill()
    assert "2 connection(s), 1 lost, 0 packet(s) never acknowledged" in out
    run = athlete_run(1)
    n = assert_whole(load_log(the_log(tmp_path / "coach", "athlete-1")), run)
    assert_holds(load_log(the_log(tmp_path / "gw", "athlete-1")), run, n)
    assert n >= 0.8 * 12 * 10 * run.rate_hz


def test_the_outbox_holds_packets_while_the_broker_is_away(mosquitto_broker, tmp_path):
    """The broker stopped (it saves its sessions) and started again: what the gateway's clip sent
    meanwhile reaches the coach as the live packets they were, from the gateway's outbox, in
    order - not as backfill."""
    b = mosquitto_broker
    url = parse_url(b.url)
    run = athlete_run(1)

    async def main():
        from strideclip.link.sources import sim_source

        coach = BrokerLink(url, user="coach", password=b.users["coach"])
        await coach.start()
        (clip,) = open_clips([broker_source("athlete-1", coach)], tmp_path / "coach")
        gw = Gateway("gw-a", url, tmp_path / "gw", user="gw-a", password=b.users["gw-a"])
        await gw.start()
        gw.follow([sim_source("athlete-1", run, 10, answers=True)])
        stop = asyncio.Event()
        coaching = asyncio.ensure_future(run_clips([clip], stop=stop))
        carrying = asyncio.ensure_future(gw.run(seconds=9))
        await asyncio.sleep(2.5)
        await asyncio.to_thread(b.stop)
        await asyncio.sleep(2.0)
        waiting = gw.stats()["outbox_waiting"]
        await asyncio.to_thread(b.start)
        await carrying
        deadline = time.monotonic() + 15
        while clip.session.decoder.open_gaps or clip.session.decoder.stats.samples < 8 * 10 * run.rate_hz:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        stop.set()
        await coaching
        await gw.close()
        await coach.close()
        return clip, gw, waiting

    clip, gw, waiting = run_async(main())
    assert waiting > 2.0 * 10 * run.rate_hz / 19 * 0.8  # ~2 s of the clip's packets at 10x
    assert gw.stats()["outbox_waiting"] == 0 and gw.stats()["broker_losses"] == 1
    coach_log = load_log(clip.log_path)
    gw_log = load_log(the_log(tmp_path / "gw", "athlete-1"))
    assert_whole(coach_log, run)
    coach_live, gw_live = (log.packets["first_idx"][log.packets["ptype"] == P.T_SAMPLES] for log in (coach_log, gw_log))
    # every live packet the gateway carried (not those its clip sent as it stopped) came live, in order
    np.testing.assert_array_equal(coach_live, gw_live[gw_live <= coach_live[-1]])
    # ... and said how long they waited at the gateway: those kept over 2 s (the broker was away 2 s and
    # more) did not count as the gateway holding the clip now
    (stats,) = [e for _t, e in coach_log.host_events if e["event"] == "link_stats"]
    assert 0.3 * waiting < stats["outbox_packets"] <= waiting + 10 * run.rate_hz / 19


@pytest.mark.parametrize("case", ["no credentials", "another gateway's", "no broker", "bad url", "bad name"])
def test_a_gateway_refused_says_why_in_one_line(mosquitto_broker, tmp_path, case):
    b = mosquitto_broker
    args = gateway_cmd(b, "gw-a", tmp_path / "gw", "--simulate", "1", "--seconds", "1")
    if case == "no credentials":
        i = args.index("--broker-credentials")
        del args[i:i + 2]
        said = "refused a connection without credentials"
    elif case == "another gateway's":
        args[args.index("--broker-credentials") + 1] = str(b.credentials_path)
        args[args.index("--name") + 1] = "gw-z"  # no such user: its password is not in the file
        said = "no password for user 'gw-z'"
    elif case == "no broker":
        args[args.index("--broker") + 1] = f"mqtt://127.0.0.1:{b.port}"
        b.stop()
        said = "cannot reach the broker"
    elif case == "bad url":
        args[args.index("--broker") + 1] = "tcp://127.0.0.1:1883"
        said = "is not a broker address"
    else:
        args[args.index("--name") + 1] = "north/+"
        said = "cannot be a topic level"
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert said in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "gw").glob("*.sclog"))  # refused before any clip was opened


def test_a_gateway_with_another_gateways_password_is_refused_by_the_broker(mosquitto_broker, tmp_path):
    b = mosquitto_broker
    creds = tmp_path / "stolen.json"
    creds.write_text(json.dumps({"users": {"gw-a": b.users["gw-b"]}}))
    args = gateway_cmd(b, "gw-a", tmp_path / "gw", "--simulate", "1", "--seconds", "1")
    args[args.index("--broker-credentials") + 1] = str(creds)
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "refused user gw-a" in r.stderr and "Traceback" not in r.stderr


def test_the_coachs_commands_refuse_a_bad_broker_setup(mosquitto_broker, tmp_path):
    b = mosquitto_broker
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"users": {"coach": "not-the-password"}}))
    for args, said in [
        (["live", "--broker", b.url, "--seconds", "1"], "name each athlete's clip"),
        (["live", "--broker", b.url, "--broker-credentials", str(wrong), "--clip", "x", "--seconds", "1",
          "--no-history"], "refused user coach"),
        (["dashboard", "--broker", b.url, "--broker-credentials", str(wrong), "--clip", "x", "--port", "0",
          "--seconds", "2", "--no-history"], "refused user coach"),
        (["dashboard", "--broker", "mqtt://", "--clip", "x", "--port", "0"], "is not a broker address"),
        (["live", "--broker", b.url, "--broker-credentials", str(b.user_credentials_path("coach")), "--clip", "Anna B",
          "--clip", "Anna_B", "--seconds", "1", "--no-history"], "--clip 'Anna B' and --clip 'Anna_B' are one name"),
        (["live", "--broker", b.url, "--clip", "x", "--broker-ca", str(wrong)], "are for a TLS broker: give --broker mqtts://"),
        (["dashboard", "--broker", "mqtts://127.0.0.1", "--clip", "x", "--broker-key", str(wrong)],
         "--broker-key goes with --broker-cert"),
        (["live", "--broker", "mqtts://127.0.0.1", "--clip", "x", "--broker-cert", str(wrong)],
         "wrong.json with key (in the same file): not a certificate and its private key in PEM"),
        (["live", "--broker", "mqtts://127.0.0.1", "--clip", "x", "--broker-ca", str(wrong)],
         "wrong.json: not a CA certificate in PEM"),
        (["live", "--clip", "x", "--broker-ca", str(wrong)], "need --broker URL"),
    ]:
        r = subprocess.run([EXE, *args, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200"})
        assert r.returncode == 2, (args, r.stderr)
        assert said in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len([line for line in r.stderr.splitlines() if line.startswith("strideclip:")]) <= 1


def test_ctrl_c_ends_a_gateway_with_its_logs_whole(mosquitto_broker, tmp_path):
    b = mosquitto_broker
    gw = subprocess.Popen(gateway_cmd(b, "gw-a", tmp_path / "gw", "--simulate", "1", "--speed", "10"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not list((tmp_path / "gw").glob("athlete-1-*.sclog")) or \
                len(load_log(the_log(tmp_path / "gw", "athlete-1")).sample_idx) < 2000:
            assert gw.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        gw.send_signal(signal.SIGINT)
        out, err = gw.communicate(timeout=30)
    finally:
        gw.kill()
    assert gw.returncode == 0, err
    assert "athlete-1: " in out and "packets carried" in out and "0 packet(s) never acknowledged" in out
    log = load_log(the_log(tmp_path / "gw", "athlete-1"))
    assert [e["event"] for _t, e in log.host_events][-1] == "link_stats"  # closed whole, its figures last
