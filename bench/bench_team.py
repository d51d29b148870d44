"""A squad on a track at the issue's acceptance size (#24): gateways as processes on one shared air,
a real mosquitto, one coach; clips roaming, a gateway SIGKILLed (docs/team.md, "How the team
setup is tested"; the machinery is tests/blesim/team.py, which tests/test_air.py runs small).

Default: 3 gateways, 24 clips at 208 Hz, 10 minutes at real time, 3 roams per clip, the gateway
holding most clips killed at 3/4 of the run. Prints, from the coach's session logs against each
clip's simulated run:

- **lost samples**: samples of the runs the coach's logs lack after backfill (and values that are
  not the clip's);
- **doubled / lost steps**: the coach's logs analysed (session.replay.analyse, what `strideclip
  replay` runs) against each run analysed whole, step by step (initial contact index);
- **latency**: per live packet (its first copy at the coach), from when the clip made its newest
  sample to when the coach logged and analysed it, p50 / p95 / max (hand-overs included: live
  packets wait behind the backfill of the gap before them);
- **back after the kill**: seconds from the SIGKILL to each of its clips' next connection;
- **gateways**: CPU seconds and resident memory of each gateway process;
- with ``--dashboard``, the coach is `strideclip dashboard --broker` watched by chromium
  (bench/screenwatch.py): **sample -> screen**, from when the clip made the newest sample a tile
  shows to the animation frame that first shows it, p50 / p95 / max (target p95 <= 300 ms), and
  the coach's CPU per clip.

Run: .venv/bin/python bench/bench_team.py [--clips 24] [--minutes 10] [--speed 1] [--gather] [--dashboard]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from blesim.team import Team, main_json, names, run_team, score  # noqa: E402
from broker import start_broker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenwatch import ScreenWatch, have_chromium  # noqa: E402


def sample_to_screen_ms(seen: dict, truths: dict) -> np.ndarray:
    """For each tile change the page saw: its frame's wall time less when the clip made the
    newest sample it shows (the air's clock: the stream's start plus samples at rate x speed)."""
    out = []
    for who, _received_s, newest_idx, shown_s in seen["changes"]:
        truth = truths.get(who)
        if truth and newest_idx > 0:
            made_s = truth["stream_started_utc"] + newest_idx / (truth["rate_hz"] * truth["speed"])
            out.append((shown_s - made_s) * 1000)
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--speed", type=float, default=1.0, help="times real time")
    ap.add_argument("--roams", type=int, default=3)
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--gather", action="store_true",
                    help="start the squad in every gateway's range (else each gateway finds its clips by scanning)")
    ap.add_argument("--out", default=None, help="keep the logs here (default: a temporary folder)")
    ap.add_argument("--dashboard", action="store_true",
                    help="the coach is `strideclip dashboard --broker`, watched by chromium: sample -> screen latency")
    ap.add_argument("--json", action="store_true", help="print everything as JSON")
    args = ap.parse_args()
    if args.dashboard and not have_chromium():
        sys.exit("--dashboard needs /usr/bin/chromium (make test installs Debian's chromium)")
    team = Team(gateways=args.gateways, clips=args.clips, minutes=args.minutes, speed=args.speed, roams=args.roams,
                kill=not args.no_kill, gather=args.gather, done_timeout_s=60.0, dashboard=args.dashboard)
    screen = ScreenWatch() if args.dashboard else None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        broker = start_broker(out, gateways=names(team)[0])
        t0 = time.monotonic()
        try:
            result = run_team(team, out / "team", broker, on_dashboard=screen.watch if screen else None)
        finally:
            broker.close()
            seen = screen.finish() if screen else None
        wall_s = time.monotonic() - t0
        score(team, result)
    if seen is not None:
        ms = sample_to_screen_ms(seen, result.truths)
        result.figures["screen_ms"] = {"updates": len(ms), "p50": float(np.percentile(ms, 50)),
                                       "p95": float(np.percentile(ms, 95)), "max": float(ms.max()),
                                       "frames_per_s": seen["frames"] / max(seen["seconds"], 1e-9)} if len(ms) else None
    coach, start = result.usage.get("coach"), result.coach_at_start
    if coach and start:  # from the runs' start to the end (the squad's gathering before is not the coach's work)
        cpu_pct = 100 * (coach["cpu_s"] - start["cpu_s"]) / (coach["wall_s"] - start["wall_s"])
        result.figures["coach_cpu_pct"] = cpu_pct
        result.figures["coach_cpu_pct_per_clip"] = cpu_pct / team.clips
    if args.json:
        print(main_json(result))
        return
    f = result.figures
    print(f"team: {team.gateways} gateways, {team.clips} clips at 208 Hz, {team.minutes:g} min at {team.speed:g}x "
          f"real time, {team.roams} roams each ({f['roams']} gateway changes seen by the clips), "
          f"{wall_s:.0f} s in all")
    print(f"samples: {f['samples']}, lost after backfill {f['lost_samples']}, not the clip's {f['wrong_values']}")
    print(f"steps: {f['steps']} in the runs, doubled {f['doubled_steps']}, lost {f['lost_steps']}; "
          f"{f['duplicate_packets_dropped']} duplicate packets dropped by the coach")
    print(f"latency sample -> coach, live packets: p50 {f['latency_ms_p50']:.0f} ms, p95 {f['latency_ms_p95']:.0f} ms, "
          f"max {f['latency_ms_max']:.0f} ms")
    if result.killed:
        backs = ", ".join(f"{c} {s:.2f} s" for c, s in sorted(result.back_s.items()))
        print(f"{result.killed} killed: its clips back through another gateway after {backs or 'none held'}")
    for name, u in sorted(result.usage.items()):  # (air: the test's radio, clips included: not the product's)
        print(f"{name}: {u['cpu_s']:.1f} CPU s ({100 * u['cpu_s'] / u['wall_s']:.0f} % of a core over its "
              f"{u['wall_s']:.0f} s), {u['rss_mb']:.0f} MB resident")
    if f.get("screen_ms"):
        sc = f["screen_ms"]
        print(f"sample -> screen (chromium, {sc['updates']} tile updates): p50 {sc['p50']:.0f} ms, p95 {sc['p95']:.0f} ms, "
              f"max {sc['max']:.0f} ms (target p95 <= 300 ms); {sc['frames_per_s']:.0f} frames/s")
    if f.get("coach_cpu_pct_per_clip") is not None:
        print(f"coach ({'dashboard' if args.dashboard else 'live'}): {f['coach_cpu_pct']:.0f} % of one core, "
              f"{f['coach_cpu_pct_per_clip']:.2f} % per clip (analysis, logs{', the page' if args.dashboard else ''}; "
              f"at {team.speed:g}x real time)")
    for note in result.notes:
        print(f"note: {note}")
    print(f"exits: {result.exits}")


if __name__ == "__main__":
    main()
