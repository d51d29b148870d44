"""Commands that run a session: demo, simulate, replay, record, live (the dashboard: cli/dashboard.py)."""
from __future__ import annotations

import sys
from datetime import datetime

import click

from strideclip.cli.common import (BLE_BACKEND_OPTION, CLIPS_OPTION, CUES_OPTION, FORCE_OPTION, HISTORY_OPTION,
                                   LIVE_CUES_OPTION, NO_HISTORY_OPTION, OUT_FILE, OUT_FOLDER, SERIAL_PORTS_OPTION, CtrlC,
                                   add_to_history, example, history_prior, resolve_ble_backend, rows_said, run_ble)
from strideclip.cli.progress import ProgressBar
from strideclip.cli.session_end import end_live_run, print_live_summary
from strideclip.cli.team import broker_options, broker_spec_of, close_broker, open_broker
from strideclip.coaching.cueconfig import load_if_given

# the shortest demo run strideclip.sim.scenario.demo_run makes (importing the simulator here would
# slow every command's start; tests/test_cli_outputs.py holds the two together)
DEMO_RUN_MIN_MINUTES = 5.0


@click.command(epilog=example("strideclip demo --minutes 10 --speed 120 --out my-demo"))
@click.option("--out", type=OUT_FOLDER, metavar="FOLDER", default=None,
              help="New folder to write the log, its ground truth, summary and report in "
                   "(default: strideclip-demo-<date>-<time>).")
@click.option("--minutes", type=click.FloatRange(DEMO_RUN_MIN_MINUTES, 120), default=30.0, show_default=True,
              help="Length of the simulated run, minutes (form breaks down at 60 % of it).")
@click.option("--speed", type=click.FloatRange(1, 10000), default=60.0, show_default=True,
              help="Pace of the replay, times real time (60: a minute per second).")
def demo(out: str | None, minutes: float, speed: float) -> None:
    """Simulate a run with fatigue and stream it through the whole pipeline, live."""
    from strideclip.stream.outputs import check_folder

    if out:  # (the dated default is new by its name)
        check_folder(out, option="--out", new=True)
    from strideclip.views.demo import run_demo

    run_demo(out, minutes=minutes, speed=speed)


@click.command(epilog=example("strideclip simulate --minutes 20 --fatigue-onset-min 12 -o run.sclog"))
@click.option("--minutes", type=click.FloatRange(1, 600), default=10.0, show_default=True,
              help=f"Length of the session, minutes (demo: at least {DEMO_RUN_MIN_MINUTES:g}).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the simulated runner and link: same seed, same bytes.")
@click.option("--scenario", type=click.Choice(["steady", "demo"]), default="steady", show_default=True,
              help="steady: walk, run, walk; demo: turn, hills, a traffic light, fatigue.")
@click.option("--speed-mps", type=click.FloatRange(1.8, 7.0), default=3.3, show_default=True,
              help="steady: running speed, m/s.")
@click.option("--cadence-spm", type=click.FloatRange(120, 230), default=None,
              help="steady: force a cadence, steps/min (default: the runner's own).")
@click.option("--fatigue-onset-min", type=click.FloatRange(0, 600), default=None,
              help="Minute when form starts to break down (default: none for steady, 60 % of the run for demo).")
@click.option("--rate-hz", type=click.Choice(["104", "208", "416"]), default="208", show_default=True,
              help="The clip's sample rate, Hz.")
@click.option("--drop-prob", type=click.FloatRange(0, 0.4), default=0.002, show_default=True,
              help="Chance per packet (a probability) that a burst of BLE packet loss starts.")
@click.option("--mount", nargs=3, default=(0.0, 0.0, 0.0), metavar="ROLL PITCH YAW",
              type=(click.FloatRange(-180, 180), click.FloatRange(-90, 90), click.FloatRange(-180, 180)),
              help="Clip misalignment on top of the recommended orientation, degrees: roll and yaw "
                   "-180..180, pitch -90..90.")
@click.option("-o", "--output", type=OUT_FILE, metavar="FILE", required=True,
              help="Session log to write (a .truth.json sidecar is written beside it).")
@FORCE_OPTION
@click.option("--athlete", default=None, help="Who ran it (stored in the log; default: the simulated runner's name).")
@click.option("--started-at", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), default=None,
              help="When the run started, UTC (default: a fixed date, so the same seed gives the same bytes).")
def simulate(minutes: float, seed: int, scenario: str, speed_mps: float, cadence_spm: float | None,
             fatigue_onset_min: float | None, rate_hz: str, drop_prob: float, mount: tuple[float, float, float],
             output: str, force: bool, athlete: str | None, started_at: datetime | None) -> None:
    """Write a simulated run to a session log, with its ground truth beside it."""
    from dataclasses import replace

    from strideclip.sim import demo_run, simulate as run_sim, steady_run, truth_path, write_log
    from strideclip.stream.outputs import OutputFile

    if fatigue_onset_min is not None and fatigue_onset_min >= minutes:
        raise click.BadParameter(f"{fatigue_onset_min:g} is not within the {minutes:g}-minute run",
                                 param_hint="--fatigue-onset-min")
    if scenario == "demo" and minutes < DEMO_RUN_MIN_MINUTES:
        raise click.BadParameter(f"the demo scenario needs at least {DEMO_RUN_MIN_MINUTES:g} minutes",
                                 param_hint="--minutes")
    log = OutputFile(output, option="-o", force=force)  # both checked before the run is simulated
    log.beside(truth_path(log.path))
    if scenario == "demo":
        sc = demo_run(seed, minutes=minutes, rate_hz=int(rate_hz))
        if fatigue_onset_min is not None:
            sc = replace(sc, fatigue=replace(sc.fatigue, onset_s=fatigue_onset_min * 60))
    else:
        sc = steady_run(minutes, speed_mps=speed_mps, cadence_spm=cadence_spm, seed=seed,
                        fatigue_onset_min=fatigue_onset_min, rate_hz=int(rate_hz))
    sc = replace(sc, link=replace(sc.link, drop_prob=drop_prob),
                 sensor=replace(sc.sensor, mount_roll_deg=mount[0], mount_pitch_deg=mount[1], mount_yaw_deg=mount[2]))
    with ProgressBar(f"simulating {sc.duration_s / 60:.0f} min") as bar:
        run = run_sim(sc, progress=bar)
        write_log(run, log, athlete=athlete,
                  started_at=started_at.strftime("%Y-%m-%dT%H:%M:00.000+00:00") if started_at else None)
    click.echo(f"wrote {output}: {len(run.counts)} samples at {run.rate_hz} Hz ({sc.duration_s / 60:.1f} min), "
               f"{len(run.steps)} steps simulated (the truth a replay is scored against), "
               f"{len(run.link.packets)} packets received, "
               f"{len(run.link.dropped)} loss burst(s)")
    click.echo(f"ground truth: {truth_path(output)}")


@click.command(epilog=example("strideclip replay run.sclog --steps-csv steps.csv"))
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--realtime", is_flag=True, help="Replay at the pace it was recorded.")
@click.option("--speed", type=click.FloatRange(0.01, 10000), default=None,
              help="Replay at this many times real time (default: as fast as it goes).")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable summary object at the end.")
@click.option("--steps-csv", type=OUT_FILE, metavar="FILE", default=None,
              help="Write the per-step metrics table (one row per step, docs/metrics.md) to this file.")
@FORCE_OPTION
@click.option("--history-baseline", is_flag=True,
              help="Measure fatigue against the athlete's usual form from the history (as live sessions do).")
@HISTORY_OPTION
@CUES_OPTION
def replay(log: str, realtime: bool, speed: float | None, as_json: bool, steps_csv: str | None, force: bool,
           history_baseline: bool, db_path: str | None, cues_path: str | None) -> None:
    """Stream a session log through the host pipeline and report what it found."""
    import json

    table_out = None
    if steps_csv:  # (checked before the log is read; the module is imported only when it writes)
        from strideclip.stream.outputs import OutputFile, writing

        table_out = OutputFile(steps_csv, option="--steps-csv", force=force, source=log)
    from strideclip.session.replay import analyse

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
    with ProgressBar(f"reading {click.format_filename(log, shorten=True)}", quiet=as_json) as bar:
        summary, table = analyse(log, cue_settings=load_if_given(cues_path), fatigue_prior=prior,
                                 speed=1.0 if realtime else speed, progress=bar)
    if table_out:
        from strideclip.analysis.metrics import write_step_table_csv

        with writing(table_out) as (part,):
            write_step_table_csv(table, part)  # one row per step
        click.echo(f"wrote {steps_csv}: {rows_said(len(table), summary['steps'])} with their metrics", err=True)
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
    if summary.get("imported"):  # another sensor's recording (docs/import.md)
        from strideclip.imports.recording import provenance_said

        source, blank = provenance_said(summary["imported"])
        click.echo(f"  imported from {source}" + "".join(f"; not measured: {b}" for b in blank))
    from strideclip.coaching.cue_outcomes import outcome_text

    for cue, outcome in zip(summary["cues"], summary["cue_outcomes"]):
        at = f"{cue['t_s']:.1f} s" if cue["t_s"] is not None else "an unknown time"  # sent before the clip's HELLO
        click.echo(f"  cue at {at}: {cue['played']} at {cue['tempo_spm']} spm ({cue['reason']}); "
                   f"{outcome_text(outcome)}"
                   f", {outcome['in_zone_pct'] if outcome['in_zone_pct'] is not None else '-'} % of steps in the zone")


@click.command(epilog=example("strideclip record --serial /dev/ttyUSB0 -o run.sclog --seconds 600"))
@click.option("--serial", "port", default=None, help="The clip's USB serial port (its config link \"usb\").")
@click.option("--clip", "clip_name", default=None, help="The clip's BLE name or address (its config link \"ble\").")
@click.option("-o", "--output", type=OUT_FILE, metavar="FILE", required=True,
              help="Session log to write (a new file: a recording is never replaced).")
@click.option("--seconds", type=click.FloatRange(0.1, 24 * 3600), default=None,
              help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--idle-s", type=click.FloatRange(0.1, 3600), default=None,
              help="Stop when nothing arrives for this many seconds.")
@click.option("--athlete", default=None, help="Who wears the clip (stored in the log).")
@LIVE_CUES_OPTION
@BLE_BACKEND_OPTION
@HISTORY_OPTION
@NO_HISTORY_OPTION
def record(port: str | None, clip_name: str | None, output: str, seconds: float | None, idle_s: float | None,
           athlete: str | None, cues_path: str | None, ble_backend: str | None, db_path: str | None,
           no_history: bool) -> None:
    """Record a clip over USB serial or BLE to a session log. Ctrl-C stops."""
    from pathlib import Path

    from strideclip.stream.outputs import check_file

    if (port is None) == (clip_name is None):
        raise click.UsageError("give either --serial PORT or --clip NAME")
    check_file(output, option="-o", can_force=False)  # a live log is crash-safe as it grows: never staged
    from strideclip.link.sources import serial_source

    sources = [serial_source(port)] if port else []
    ctrl_c, clips = CtrlC(), []
    run_ble(_live_main(sources, [clip_name] if clip_name else [], Path(output).parent, seconds, ble_backend,
                       idle_s=idle_s, log_paths=[Path(output)], athlete=athlete, cue_settings=load_if_given(cues_path),
                       prior_for=None if no_history else history_prior(db_path), opened=clips, stop=ctrl_c.stop),
            ctrl_c=ctrl_c)
    print_live_summary(clips)
    if not no_history and not ctrl_c.aborted:
        add_to_history([output], db_path)
    if any(c.link.error for c in clips):
        click.echo(f"strideclip: everything before it is in {output}", err=True)
        sys.exit(1)
    if ctrl_c.aborted:
        sys.exit(CtrlC.INTERRUPTED_EXIT)


@click.command(epilog=example("strideclip live --sim 2 --seconds 60 --out runs",
                              "strideclip live --broker mqtt://192.168.1.20:1883 --broker-credentials coach.json --clip anna"))
@CLIPS_OPTION
@broker_options
@SERIAL_PORTS_OPTION
@click.option("--replay", "logs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Play a session log back as if live (developers, demos); repeat for several.")
@click.option("--sim", "sims", type=click.IntRange(0, 16), default=0, help="Follow this many simulated clips.")
@click.option("--speed", type=click.FloatRange(0.1, 1000), default=1.0, show_default=True,
              help="Pace of --replay and --sim, times real time.")
@click.option("--out", "out_dir", type=OUT_FOLDER, metavar="FOLDER", default=".", show_default=True,
              help="Folder for the session logs, one per clip (made if missing).")
@click.option("--seconds", type=click.FloatRange(0.1, 24 * 3600), default=None,
              help="Stop after this many seconds (default: Ctrl-C).")
@LIVE_CUES_OPTION
@BLE_BACKEND_OPTION
@HISTORY_OPTION
@NO_HISTORY_OPTION
def live(clip_names: tuple[str, ...], broker_url: str | None, broker_credentials: str | None, broker_user: str,
         broker_tls: tuple,
         ports: tuple[str, ...], logs: tuple[str, ...], sims: int, speed: float, out_dir: str, seconds: float | None,
         cues_path: str | None, ble_backend: str | None, db_path: str | None, no_history: bool) -> None:
    """Live view of one or more clips, each recorded to its own session log. With no source
    given, every clip found in a BLE scan; with --broker, the --clip names through the broker."""
    from pathlib import Path

    from strideclip.stream.outputs import check_folder

    broker = broker_spec_of(broker_url, broker_credentials, broker_user, clip_names, broker_tls)
    check_folder(out_dir, option="--out")  # before any clip is simulated or opened
    from strideclip.link.sources import log_source, serial_source, sim_source
    from strideclip.sim import simulate, steady_run

    sources = [serial_source(p) for p in ports] + [log_source(p, speed) for p in logs]
    with ProgressBar(f"simulating {sims} runner(s)") as bar:
        runs = [simulate(steady_run(30, seed=100 + i), progress=bar.part(i, sims)) for i in range(sims)]
    sources += [sim_source(f"sim-{i + 1}", run, speed) for i, run in enumerate(runs)]
    scan_all = not (clip_names or sources)
    ctrl_c, clips = CtrlC(), []
    run_ble(_live_main(sources, list(clip_names), Path(out_dir), seconds, ble_backend, view=True, scan_all=scan_all,
                       cue_settings=load_if_given(cues_path), opened=clips, stop=ctrl_c.stop,
                       prior_for=None if no_history else history_prior(db_path), broker=broker), ctrl_c=ctrl_c)
    code = end_live_run(clips, ctrl_c, history=not no_history, db_path=db_path)
    sys.exit(code or (1 if clips and all(c.link.error for c in clips) else 0))


async def _live_main(sources, names, out_dir, seconds, backend_spec, *, view=False, scan_all=False, idle_s=None,
                     log_paths=None, athlete=None, cue_settings=None, opened=None, prior_for=None, stop=None,
                     broker=None):
    """Scan for the named BLE clips (all found, with ``scan_all``; through the broker, with
    ``broker``), open every link, say so, and record them all with a live view until the time is
    up, they go quiet, or ``stop`` (Ctrl-C)."""
    if broker is None:
        return await _record_live(sources, names, out_dir, seconds, backend_spec, view=view, scan_all=scan_all,
                                  idle_s=idle_s, log_paths=log_paths, athlete=athlete, cue_settings=cue_settings,
                                  opened=opened, prior_for=prior_for, stop=stop)
    link, carried = await open_broker(broker, names)
    try:
        return await _record_live([*sources, *carried], [], out_dir, seconds, backend_spec, view=view,
                                  cue_settings=cue_settings, opened=opened, prior_for=prior_for, stop=stop)
    finally:
        await close_broker(link)


async def _record_live(sources, names, out_dir, seconds, backend_spec, *, view=False, scan_all=False, idle_s=None,
                       log_paths=None, athlete=None, cue_settings=None, opened=None, prior_for=None, stop=None):
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
        return await run_clips(clips, seconds=seconds, idle_s=idle_s, on_update=table.show_clips if view else None,
                               stop=stop)
