"""Commands that run a session: demo, simulate, replay, record, live, dashboard."""
from __future__ import annotations

import sys

import click

from strideclip.cli.common import (BLE_BACKEND_OPTION, CLIPS_OPTION, CUES_OPTION, HISTORY_OPTION, NO_HISTORY_OPTION,
                                   SERIAL_PORTS_OPTION, add_to_history, history_prior, resolve_ble_backend, run_ble)
from strideclip.coaching.cueconfig import load_if_given


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: strideclip-demo-<date>-<time>).")
@click.option("--minutes", type=click.FloatRange(6, 120), default=30.0, show_default=True)
@click.option("--speed", type=click.FloatRange(1, 10000), default=60.0, show_default=True, help="Times real time.")
def demo(out, minutes, speed) -> None:
    """Simulate a run with fatigue and stream it through the whole pipeline, live."""
    from strideclip.views.demo import run_demo

    run_demo(out, minutes=minutes, speed=speed)


@click.command()
@click.option("--minutes", type=click.FloatRange(1, 600), default=10.0, show_default=True, help="Length of the session.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--scenario", type=click.Choice(["steady", "demo"]), default="steady", show_default=True,
              help="steady: walk, run, walk; demo: turn, hills, a traffic light, fatigue.")
@click.option("--speed-mps", type=click.FloatRange(1.8, 7.0), default=3.3, show_default=True, help="Running speed.")
@click.option("--cadence-spm", type=click.FloatRange(120, 230), default=None, help="Force a cadence (default: the runner's own).")
@click.option("--fatigue-onset-min", type=click.FloatRange(0, 600), default=None, help="Minute when form starts to break down.")
@click.option("--rate-hz", type=click.Choice(["104", "208", "416"]), default="208", show_default=True)
@click.option("--drop-prob", type=click.FloatRange(0, 0.4), default=0.002, show_default=True,
              help="Chance per packet that a burst of BLE packet loss starts.")
@click.option("--mount", nargs=3, type=float, default=(0.0, 0.0, 0.0), metavar="ROLL PITCH YAW",
              help="Clip misalignment in degrees on top of the recommended orientation.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Session log to write (a .truth.json sidecar is written beside it).")
@click.option("--athlete", default=None, help="Who ran it (stored in the log; default: the simulated runner's name).")
@click.option("--started-at", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), default=None,
              help="When the run started, UTC (default: a fixed date, so the same seed gives the same bytes).")
def simulate(minutes, seed, scenario, speed_mps, cadence_spm, fatigue_onset_min, rate_hz, drop_prob, mount, output,
             athlete, started_at):
    """Write a simulated run to a session log, with its ground truth beside it."""
    from dataclasses import replace
    from pathlib import Path

    from strideclip.sim import demo_run, simulate as run_sim, steady_run, truth_path, write_log

    if Path(output).exists():
        raise click.UsageError(f"{output} exists; a session log is never overwritten")
    if scenario == "demo":
        sc = demo_run(seed, minutes=minutes, rate_hz=int(rate_hz))
        if fatigue_onset_min is not None:
            sc = replace(sc, fatigue=replace(sc.fatigue, onset_s=fatigue_onset_min * 60))
    else:
        sc = steady_run(minutes, speed_mps=speed_mps, cadence_spm=cadence_spm, seed=seed,
                        fatigue_onset_min=fatigue_onset_min, rate_hz=int(rate_hz))
    sc = replace(sc, link=replace(sc.link, drop_prob=drop_prob),
                 sensor=replace(sc.sensor, mount_roll_deg=mount[0], mount_pitch_deg=mount[1], mount_yaw_deg=mount[2]))
    run = run_sim(sc)
    write_log(run, output, athlete=athlete,
              started_at=started_at.strftime("%Y-%m-%dT%H:%M:00.000+00:00") if started_at else None)
    click.echo(f"wrote {output}: {len(run.counts)} samples at {run.rate_hz} Hz ({sc.duration_s / 60:.1f} min), "
               f"{len(run.steps)} steps, {len(run.link.packets)} packets received, "
               f"{len(run.link.dropped)} loss burst(s)")
    click.echo(f"ground truth: {truth_path(output)}")


@click.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--realtime", is_flag=True, help="Replay at the pace it was recorded.")
@click.option("--speed", type=click.FloatRange(0.01, 10000), default=None, help="Replay X times real time.")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable summary object at the end.")
@click.option("--steps-csv", type=click.Path(dir_okay=False), default=None,
              help="Write the per-step metrics table (one row per step, docs/metrics.md) to this new file.")
@click.option("--history-baseline", is_flag=True,
              help="Measure fatigue against the athlete's usual form from the history (as live sessions do).")
@HISTORY_OPTION
@CUES_OPTION
def replay(log, realtime, speed, as_json, steps_csv, history_baseline, db_path, cues_path):
    """Stream a session log through the host pipeline and report what it found."""
    import json
    from pathlib import Path

    from strideclip.analysis.metrics import write_step_table_csv
    from strideclip.session.replay import analyse

    if steps_csv and Path(steps_csv).exists():
        raise click.UsageError(f"{steps_csv} exists; choose a new file for the step table")
    prior = None
    if history_baseline:
        from strideclip.session.replay import session_start
        from strideclip.stream.sclog import load_header

        header = load_header(log)
        start, _ = session_start({"started_at": header.get("started_at"), "log": log})
        prior_for = history_prior(db_path, before=start.isoformat(timespec="seconds"))
        prior = prior_for(header.get("athlete") or header.get("clip_name") or "")
        if prior is None and not prior_for.unusable:
            click.echo("no earlier sessions of this athlete in the history: the session's own warm-up is the baseline",
                       err=True)
    summary, table = analyse(log, cue_settings=load_if_given(cues_path), fatigue_prior=prior,
                             speed=1.0 if realtime else speed)
    if steps_csv:
        write_step_table_csv(table, steps_csv)  # one row per step
        click.echo(f"wrote {steps_csv}: {len(table)} steps with their metrics", err=True)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"{log}: {summary['frames']} frames, {summary['samples']} samples, "
               f"{summary['duration_s']:.1f} s at {summary['rate_hz']} Hz")
    click.echo(f"  link: {summary['lost_packets']} packets lost ({summary['loss_pct']:.2f} %), "
               f"{len(summary['gaps'])} unfilled gap(s), {summary['bad_packets']} bad packet(s)")
    click.echo(f"  log: {summary['log_damage']['summary']}")
    click.echo(f"  steps {summary['steps']} ({summary['running_steps']} running): cadence "
               f"{summary.get('cadence_spm_median', float('nan')):.1f} spm, peak vertical "
               f"{summary.get('peak_vertical_g_median', float('nan')):.2f} g, peak vGRF "
               f"{summary.get('peak_vgrf_bw_median', float('nan')):.2f} BW, contact "
               f"{summary.get('contact_ms_median', float('nan')):.0f} ms, pelvic rotation / drop / tilt "
               f"{summary.get('pelvic_rotation_deg_median', float('nan')):.1f} / "
               f"{summary.get('pelvic_drop_deg_median', float('nan')):.1f} / "
               f"{summary.get('pelvic_tilt_deg_median', float('nan')):.1f} deg")
    from strideclip.coaching.cue_outcomes import LOOK_S

    for cue, outcome in zip(summary["cues"], summary["cue_outcomes"]):
        rec, watched = outcome["recovered_after_s"], outcome.get("watched_s", LOOK_S)
        unseen = (f"no recovery within {LOOK_S / 60:.0f} min" if watched >= LOOK_S
                  else f"no recovery in the {watched:.0f} s the log still has")
        at = f"{cue['t_s']:.1f} s" if cue["t_s"] is not None else "an unknown time"  # sent before the clip's HELLO
        click.echo(f"  cue at {at}: {cue['played']} at {cue['tempo_spm']} spm ({cue['reason']}); "
                   f"{'recovered after ' + format(rec, '.0f') + ' s' if rec is not None else unseen}"
                   f", {outcome['in_zone_pct'] if outcome['in_zone_pct'] is not None else '-'} % of steps in the zone")


@click.command()
@click.option("--serial", "port", default=None, help="The clip's USB serial port (its config link \"usb\").")
@click.option("--clip", "clip_name", default=None, help="The clip's BLE name or address (its config link \"ble\").")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Session log to write (new file).")
@click.option("--seconds", type=click.FloatRange(0.1, 24 * 3600), default=None, help="Stop after this long.")
@click.option("--idle-s", type=click.FloatRange(0.1, 3600), default=None, help="Stop when nothing arrives for this long.")
@click.option("--athlete", default=None, help="Who wears the clip (stored in the log).")
@CUES_OPTION
@BLE_BACKEND_OPTION
@HISTORY_OPTION
@NO_HISTORY_OPTION
def record(port, clip_name, output, seconds, idle_s, athlete, cues_path, ble_backend, db_path, no_history):
    """Record a clip over USB serial or BLE to a session log. Ctrl-C stops."""
    from pathlib import Path

    from strideclip.session.live import serial_source

    if (port is None) == (clip_name is None):
        raise click.UsageError("give either --serial PORT or --clip NAME")
    if Path(output).exists():
        raise click.UsageError(f"{output} exists; a session log is never overwritten")
    sources = [serial_source(port)] if port else []
    clips = run_ble(_live_main(sources, [clip_name] if clip_name else [], Path(output).parent, seconds, ble_backend,
                                idle_s=idle_s, log_paths=[Path(output)], athlete=athlete,
                                cue_settings=load_if_given(cues_path),
                                prior_for=None if no_history else history_prior(db_path)))
    _print_live_summary(clips)
    if not no_history:
        add_to_history([output], db_path)
    if any(c.link.error for c in clips):
        click.echo(f"strideclip: everything before it is in {output}", err=True)
        sys.exit(1)


@click.command()
@CLIPS_OPTION
@SERIAL_PORTS_OPTION
@click.option("--replay", "logs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Play a session log back as if live (developers, demos); repeat for several.")
@click.option("--sim", "sims", type=click.IntRange(0, 16), default=0, help="Follow this many simulated clips.")
@click.option("--speed", type=click.FloatRange(0.1, 1000), default=1.0, show_default=True,
              help="Pace of --replay and --sim, times real time.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for the session logs, one per clip.")
@click.option("--seconds", type=click.FloatRange(0.1, 24 * 3600), default=None, help="Stop after this long (default: Ctrl-C).")
@CUES_OPTION
@BLE_BACKEND_OPTION
@HISTORY_OPTION
@NO_HISTORY_OPTION
def live(clip_names, ports, logs, sims, speed, out_dir, seconds, cues_path, ble_backend, db_path, no_history):
    """Live view of one or more clips, each recorded to its own session log. With no source
    given, every clip found in a BLE scan."""
    from pathlib import Path

    from strideclip.session.live import log_source, serial_source, sim_source
    from strideclip.sim import simulate, steady_run

    sources = [serial_source(p) for p in ports] + [log_source(p, speed) for p in logs]
    sources += [sim_source(f"sim-{i + 1}", simulate(steady_run(30, seed=100 + i)), speed) for i in range(sims)]
    scan_all = not (clip_names or sources)
    opened: list = []
    clips = run_ble(_live_main(sources, list(clip_names), Path(out_dir), seconds, ble_backend, view=True,
                                scan_all=scan_all, cue_settings=load_if_given(cues_path), opened=opened,
                                prior_for=None if no_history else history_prior(db_path)))
    _print_live_summary(clips)
    if not no_history:  # real clips only: replays and simulated runners are not sessions of anyone's
        add_to_history([c.log_path for c in opened if c.source.kind not in ("log", "simulator")], db_path)
    sys.exit(1 if clips and all(c.link.error for c in clips) else 0)


async def _live_main(sources, names, out_dir, seconds, backend_spec, *, view=False, scan_all=False, idle_s=None,
                     log_paths=None, athlete=None, cue_settings=None, opened=None, prior_for=None):
    """Scan for the named BLE clips (all found, with ``scan_all``), open every link, say so, and
    record them all with a live view until the time is up, they go quiet, or Ctrl-C."""
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan
    from strideclip.session.live import open_clips, run_clips
    from strideclip.views.terminal import TerminalView

    backend = await resolve_ble_backend(backend_spec)
    sources = list(sources)
    if names or scan_all:
        found = await ble_scan(3.0, backend=backend and backend.scanner_backend)
        sources += pick(found, names)
    if not sources:
        raise click.ClickException("no clips found (are they on and not connected to another host?)")
    clips = open_clips(sources, out_dir, backend=backend and backend.client_backend, log_paths=log_paths,
                       athlete=athlete, cue_settings=cue_settings, prior_for=prior_for)
    if opened is not None:
        opened += clips  # the caller still knows the logs if Ctrl-C ends the run
    click.echo("recording " + ", ".join(f"{c.name} ({c.source.address})" for c in clips) + " (Ctrl-C stops)")
    sys.stdout.flush()  # the links are open: nothing from now on is lost
    with TerminalView(title="StrideClip live", live=view and sys.stdout.isatty()) as table:
        return await run_clips(clips, seconds=seconds, idle_s=idle_s, on_update=table.show_clips if view else None)


def _print_live_summary(clips) -> None:
    for c in clips:
        s = c.session.summary()
        stats = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.transport.stats().items())
        click.echo(f"{c.name}: {c.log_path}: {s['samples']} samples ({s['duration_s']:.1f} s at {s['rate_hz']} Hz), "
                   f"{s['steps']} steps, {len(s['gaps_filled'])} gap(s) filled by backfill, {len(s['gaps'])} still open; "
                   f"link: {stats}")
        if s["bad_packets"]:  # what the clip sent that the host could not take: in the log, skipped here
            click.echo(f"{c.name}: {s['bad_packets']} bad packet(s) recorded and skipped"
                       + "".join(f"; first {e}" for e in s["bad_packet_errors"][:1]), err=True)
        if c.link.error:
            click.echo(f"strideclip: {c.name}: {c.link.error}", err=True)


@click.command()
@CLIPS_OPTION
@SERIAL_PORTS_OPTION
@click.option("--simulate", "n_sim", type=click.IntRange(0, 16), default=0,
              help="Follow this many simulated athletes through the whole pipeline (no clip needed).")
@click.option("--speed", type=click.FloatRange(0.1, 1000), default=1.0, show_default=True,
              help="Simulated athletes: times real time.")
@click.option("--minutes", type=click.FloatRange(1, 180), default=30.0, show_default=True,
              help="Simulated athletes: length of the run.")
@click.option("--rate-hz", type=click.Choice(["104", "208", "416"]), default="208", show_default=True,
              help="Simulated athletes: the clip's sample rate.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8050, show_default=True, help="0: any free port.")
@click.option("--lan", is_flag=True, help="Serve to the LAN: pages and cues then need the access token printed here.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Another name browsers use for this machine (its host names and addresses are known); repeatable.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="strideclip-sessions", show_default=True,
              help="Folder for the session logs (and the reports written when the run ends); the page serves "
                   "only these.")
@click.option("--seconds", type=click.FloatRange(1, 24 * 3600), default=None, help="Stop after this long (default: Ctrl-C).")
@CUES_OPTION
@HISTORY_OPTION
@NO_HISTORY_OPTION
@BLE_BACKEND_OPTION
def dashboard(clip_names, ports, n_sim, speed, minutes, rate_hz, host, port, lan, allow_hosts, out_dir, seconds,
              cues_path, db_path, no_history, ble_backend):
    """The coach's live dashboard in the browser: every athlete at a glance, offline."""
    import ipaddress
    from pathlib import Path

    from strideclip.session.live import serial_source, sim_source
    from strideclip.sim import demo_run, simulate

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not lan:
        raise click.UsageError(f"--host {host} serves beyond this machine: add --lan (pages and cues then need a token)")
    if not (clip_names or ports or n_sim):
        raise click.UsageError("give --clip NAME, --serial PORT or --simulate N")
    sources = [serial_source(p) for p in ports]
    if n_sim:  # the page comes up once they are simulated: say why the wait
        click.echo(f"simulating {n_sim} athlete(s), {minutes} min each…", err=True)
    sources += [sim_source(f"athlete-{i + 1}", simulate(demo_run(200 + i, minutes=minutes, rate_hz=int(rate_hz))), speed,
                           answers=True) for i in range(n_sim)]
    opened: list = []
    run_ble(_dashboard_main(sources, list(clip_names), Path(out_dir), host, port, lan, allow_hosts, seconds,
                             ble_backend, load_if_given(cues_path), None if no_history else history_prior(db_path),
                             opened))
    if not no_history:
        add_to_history([c.log_path for c in opened if c.source.kind not in ("log", "simulator")], db_path)


async def _dashboard_main(sources, names, out_dir, host, port, lan, allow_hosts, seconds, backend_spec, cue_settings,
                          prior_for, opened):
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan
    from strideclip.session.live import open_clips
    from strideclip.views.dashboard.server import serve

    backend = await resolve_ble_backend(backend_spec)
    sources = list(sources)
    if names:
        sources += pick(await ble_scan(3.0, backend=backend and backend.scanner_backend), names)
    clips = open_clips(sources, out_dir, backend=backend and backend.client_backend, cue_settings=cue_settings,
                       prior_for=prior_for)
    opened += clips
    return await serve(clips, out_dir=out_dir, host=host, port=port, lan=lan, seconds=seconds, echo=click.echo,
                       allow_hosts=[h.lower() for h in allow_hosts])
