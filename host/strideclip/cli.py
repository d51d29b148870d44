"""The ``strideclip`` command line: one subcommand per job the product does."""
from __future__ import annotations

import sys

import click

from strideclip import __version__
from strideclip.errors import StrideClipError

CLIPS_OPTION = click.option("--clip", "clip_names", multiple=True, help="A clip's BLE name or address; repeat for several.")
SERIAL_PORTS_OPTION = click.option("--serial", "ports", multiple=True, help="A clip on a USB serial port; repeat for several.")
CUES_OPTION = click.option("--cues", "cues_path", type=click.Path(dir_okay=False), default=None,
                           help="Cue settings (TOML, [cues] table; docs/cues.md). Live: also sent to each clip.")


HISTORY_OPTION = click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                              help="History database (default: $STRIDECLIP_HISTORY, else in the user's data folder).")


NO_HISTORY_OPTION = click.option("--no-history", is_flag=True,
                                 help="Do not add the recorded logs to the session history.")


def _catalogue(paths, db_path) -> None:
    """Add freshly recorded logs to the session history (docs/history.md); a failure there is
    said and never costs the recording."""
    from pathlib import Path

    from strideclip.errors import HistoryError
    from strideclip.store.history import History

    paths = [Path(p) for p in paths if Path(p).exists()]
    if not paths:
        return
    try:
        with History(db_path) as h:
            res = h.import_paths(paths, watch_s=0)  # their writers have closed them
            where = h.path
    except (HistoryError, OSError) as e:
        click.echo(f"not added to the history: {e}", err=True)
        return
    for _, why in res.bad:
        click.echo(f"not added to the history: {why}", err=True)
    if res.imported or res.replaced:
        click.echo(f"added to the history ({where}): "
                   + ", ".join(f"#{sid} {Path(p).name}" for p, sid in res.imported + res.replaced))


def _history_prior(db_path, before: str | None = None):
    """prior_for(athlete): their usual form from the history (None without one)."""
    from strideclip.analysis.fatigue import prior_from_history
    from strideclip.errors import HistoryError
    from strideclip.store.history import History
    from strideclip.store.history_db import default_path

    def prior_for(athlete: str):
        if db_path is None and not default_path().exists():
            return None
        try:
            with History(db_path) as h:
                return prior_from_history(h.baseline(athlete, before=before))
        except HistoryError as e:
            click.echo(f"history not used: {e}", err=True)
            prior_for.unusable = True
            return None

    prior_for.unusable = False  # set once the history could not be read: nothing more to say of it
    return prior_for


def _cue_settings(path) -> dict:
    from strideclip.coaching import cueconfig

    return cueconfig.load(path) if path else {}


# The bleak backend for scan/live/record: bleak's platform one unless a test names another.
BLE_BACKEND_OPTION = click.option("--ble-backend", default=None, hidden=True,
                                  help="module:function giving bleak scanner_backend/client_backend (tests).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strideclip")
def cli() -> None:
    """StrideClip: a running-form coach worn at the sacrum."""


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: strideclip-demo-<date>-<time>).")
@click.option("--minutes", type=click.FloatRange(6, 120), default=30.0, show_default=True)
@click.option("--speed", type=click.FloatRange(1, 10000), default=60.0, show_default=True, help="Times real time.")
def demo(out, minutes, speed) -> None:
    """Simulate a run with fatigue and stream it through the whole pipeline, live."""
    from strideclip.views.demo import run_demo

    run_demo(out, minutes=minutes, speed=speed)


@cli.command()
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


@cli.command()
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
    from strideclip.session.pipeline import Session
    from strideclip.session.replay import replay as run_replay

    if steps_csv and Path(steps_csv).exists():
        raise click.UsageError(f"{steps_csv} exists; choose a new file for the step table")
    prior = None
    if history_baseline:
        from strideclip.session.replay import session_start
        from strideclip.stream.sclog import load_header

        header = load_header(log)
        start, _ = session_start({"started_at": header.get("started_at"), "log": log})
        prior_for = _history_prior(db_path, before=start.isoformat(timespec="seconds"))
        prior = prior_for(header.get("athlete") or header.get("clip_name") or "")
        if prior is None and not prior_for.unusable:
            click.echo("no earlier sessions of this athlete in the history: the session's own warm-up is the baseline",
                       err=True)
    session = Session(cue_settings=_cue_settings(cues_path), fatigue_prior=prior)
    summary = run_replay(log, speed=1.0 if realtime else speed, session=session)
    if steps_csv:
        table = session.step_table()
        write_step_table_csv(table, steps_csv)
        # a detected step has a row once the next contact closes it (not the last, not across a gap)
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


@cli.command()
@click.argument("dataset", type=click.Choice(["alcantara", "voisard", "adeptdata", "sim", "csv"]))
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding the data sets (default: ../shared/data beside the repository).")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default="208",
              show_default=True, help="The clip rate the recordings are resampled to.")
@click.option("--tolerance-ms", type=click.FloatRange(1, 500), default=None,
              help="Matching tolerance (default 50 ms running, 100 ms walking).")
@click.option("--samples", type=click.Path(exists=True, dir_okay=False), help="csv: samples file.")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), help="csv: reference contacts (t_s).")
@click.option("--rate-hz", "input_rate_hz", type=click.FloatRange(10, 5000), help="csv: rows per second in --samples.")
@click.option("--accel-unit", type=click.Choice(["g", "mps2"]), default="g", show_default=True)
@click.option("--gyro-unit", type=click.Choice(["dps", "rads"]), default="dps", show_default=True)
@click.option("--events-out", type=click.Path(dir_okay=False), help="csv: write the detected contacts (t_s, side).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(dataset, data_dir, clip_rate, tolerance_ms, samples, reference, input_rate_hz, accel_unit, gyro_unit,
             events_out, as_json):
    """Score the step detector against reference footfalls (docs/step-detector.md)."""
    import json

    from strideclip.evaluation import evaluate as ev

    if dataset == "csv":
        if not (samples and reference and input_rate_hz):
            raise click.UsageError("csv needs --samples, --reference and --rate-hz")
        out = ev.evaluate_csv(samples, reference, rate_hz=input_rate_hz, clip_rate_hz=int(clip_rate),
                              tolerance_ms=tolerance_ms or 50.0, accel_unit=accel_unit, gyro_unit=gyro_unit,
                              events_out=events_out)
    else:
        out = ev.evaluate(dataset, rate_hz=int(clip_rate), tolerance_ms=tolerance_ms, data_dir=data_dir)
    if as_json:
        click.echo(json.dumps(out))
        return
    for key, value in out.items():
        if key != "per_window":
            click.echo(f"{key:32s} {value}")


@cli.command()
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
    clips = _run_ble(_live_main(sources, [clip_name] if clip_name else [], Path(output).parent, seconds, ble_backend,
                                idle_s=idle_s, log_paths=[Path(output)], athlete=athlete,
                                cue_settings=_cue_settings(cues_path),
                                prior_for=None if no_history else _history_prior(db_path)))
    _print_live_summary(clips)
    if not no_history:
        _catalogue([output], db_path)
    if any(c.link.error for c in clips):
        click.echo(f"strideclip: everything before it is in {output}", err=True)
        sys.exit(1)


@cli.command()
@click.option("--seconds", type=click.FloatRange(0.2, 60), default=3.0, show_default=True, help="How long to listen.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
@BLE_BACKEND_OPTION
def scan(seconds, as_json, ble_backend):
    """List clips advertising nearby: name, address, signal, battery."""
    import json

    from strideclip.link.ble import scan as ble_scan

    async def main():
        backend = await _ble_backend(ble_backend)
        return await ble_scan(seconds, backend=backend and backend.scanner_backend)

    clips = _run_ble(main())
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in clips]))
        return
    if not clips:
        click.echo("no clips found (are they on and not connected to another host?)")
    for c in clips:
        battery = f"{c.battery_pct} %" if c.battery_pct is not None else "?"
        click.echo(f"{c.name:<22} {c.address}  {c.rssi_dbm if c.rssi_dbm is not None else '?':>4} dBm  battery {battery}")


@cli.command()
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
    clips = _run_ble(_live_main(sources, list(clip_names), Path(out_dir), seconds, ble_backend, view=True,
                                scan_all=scan_all, cue_settings=_cue_settings(cues_path), opened=opened,
                                prior_for=None if no_history else _history_prior(db_path)))
    _print_live_summary(clips)
    if not no_history:  # real clips only: replays and simulated runners are not sessions of anyone's
        _catalogue([c.log_path for c in opened if c.source.kind not in ("log", "simulator")], db_path)
    sys.exit(1 if clips and all(c.link.error for c in clips) else 0)


async def _ble_backend(spec: str | None):
    """``module:function`` returning (awaitably) an object with bleak ``scanner_backend`` and
    ``client_backend`` classes; None: bleak's platform backend."""
    if not spec:
        return None
    import importlib
    import inspect

    module, _, attr = spec.partition(":")
    made = getattr(importlib.import_module(module), attr)()
    return await made if inspect.isawaitable(made) else made


async def _live_main(sources, names, out_dir, seconds, backend_spec, *, view=False, scan_all=False, idle_s=None,
                     log_paths=None, athlete=None, cue_settings=None, opened=None, prior_for=None):
    """Scan for the named BLE clips (all found, with ``scan_all``), open every link, say so, and
    record them all with a live view until the time is up, they go quiet, or Ctrl-C."""
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan
    from strideclip.session.live import open_clips, run_clips
    from strideclip.views.terminal import LiveTable

    backend = await _ble_backend(backend_spec)
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
    with LiveTable(live=view and sys.stdout.isatty()) as table:
        return await run_clips(clips, seconds=seconds, idle_s=idle_s, on_update=table.update if view else None)


def _run_ble(coro):
    import asyncio

    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return []


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


@cli.command()
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
    _run_ble(_dashboard_main(sources, list(clip_names), Path(out_dir), host, port, lan, allow_hosts, seconds,
                             ble_backend, _cue_settings(cues_path), None if no_history else _history_prior(db_path),
                             opened))
    if not no_history:
        _catalogue([c.log_path for c in opened if c.source.kind not in ("log", "simulator")], db_path)


async def _dashboard_main(sources, names, out_dir, host, port, lan, allow_hosts, seconds, backend_spec, cue_settings,
                          prior_for, opened):
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan
    from strideclip.session.live import open_clips
    from strideclip.views.dashboard.server import serve

    backend = await _ble_backend(backend_spec)
    sources = list(sources)
    if names:
        sources += pick(await ble_scan(3.0, backend=backend and backend.scanner_backend), names)
    clips = open_clips(sources, out_dir, backend=backend and backend.client_backend, cue_settings=cue_settings,
                       prior_for=prior_for)
    opened += clips
    return await serve(clips, out_dir=out_dir, host=host, port=port, lan=lan, seconds=seconds, echo=click.echo,
                       allow_hosts=[h.lower() for h in allow_hosts])


@cli.command("evaluate-cues")
@click.option("--seeds", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Simulated runs of each kind (fatigue, steady with confounders).")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default="208", show_default=True)
@click.option("--fatigue-state", is_flag=True, help="Also score the host's fatigue state (needs the metrics: slower).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_cues_cmd(seeds, clip_rate, fatigue_state, as_json):
    """Score the cue policy on simulated fatigue runs and steady runs with confounders (docs/cues.md)."""
    import json

    from strideclip.evaluation.cues_eval import evaluate_cues

    click.echo(f"simulating {seeds} fatigue runs and {seeds} steady runs at {clip_rate} Hz "
               f"(about {6 * seeds if not fatigue_state else 9 * seeds} s on a laptop)...", err=True)
    out = evaluate_cues(seeds, int(clip_rate), fatigue_state=fatigue_state)
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"{out['seeds']} fatigue runs cued in time: {out['fatigue_cued_in_time_pct']} % "
               f"(lag after the 5 %/30 % point: median {out['cue_lag_s_median']} s, worst {out['cue_lag_s_max']} s); "
               f"false cues: {out['false_cues_per_hour']} per hour over {out['hours_without_fatigue']} h without fatigue")
    if fatigue_state:
        click.echo(f"fatigue state entered in time: {out['fatigue_state_in_time_pct']} % (lag median "
                   f"{out['fatigue_state_lag_s_median']} s, worst {out['fatigue_state_lag_s_max']} s); "
                   f"false: {out['false_fatigue_per_hour']} per hour")


@cli.command("evaluate-metrics")
@click.argument("check", type=click.Choice(["alcantara", "sim", "voisard", "drift", "frames"]))
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding the data sets (default: ../shared/data beside the repository).")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default="208", show_default=True)
@click.option("--hours", type=click.FloatRange(0.1, 12), default=2.0, show_default=True, help="drift: run length.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_metrics(check, data_dir, clip_rate, hours, as_json):
    """Check the per-step metrics against references (docs/metrics.md)."""
    import json

    from strideclip.evaluation import metrics_eval as me

    rate = int(clip_rate)
    if check == "alcantara":
        out = me.evaluate_alcantara(rate, data_dir)
    elif check == "sim":
        out = me.evaluate_sim(rate)
    elif check == "voisard":
        out = me.evaluate_voisard_uturns(rate, data_dir)
    elif check == "frames":
        out = me.evaluate_frames(rate, data_dir)
    else:
        out = me.rotation_drift_deg(hours, rate)
    out = {"check": check, "rate_hz": rate, **out}
    if as_json:
        click.echo(json.dumps(out))
        return
    for key, value in out.items():
        click.echo(f"{key:36s} {value}")


@cli.command()
@click.option("--port", required=True, help="The clip's USB serial port, e.g. /dev/ttyUSB0.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="A JSON file of config overrides to put on the clip (checked first).")
@click.option("--dry-run", is_flag=True, help="Compile and check, print the copy commands, touch no device.")
@click.option("--no-reset", is_flag=True, help="Leave the clip at its REPL instead of restarting it.")
def flash(port, config_path, dry_run, no_reset):
    """Copy the firmware onto a clip already running MicroPython (firmware/README.md)."""
    from strideclip.device.flash import flash as run_flash

    run_flash(port, config_path=config_path, dry_run=dry_run, reset=not no_reset, echo=click.echo)
    if not dry_run:
        click.echo(f"copied to the clip on {port}" + ("" if no_reset else "; it restarts with the new firmware"))


@cli.command()
@click.option("--start-spm", type=float, default=None, help="The runner's cadence when the plan started, steps/min.")
@click.option("--since", "since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day the plan started (YYYY-MM-DD).")
@click.option("--athlete", default=None,
              help="Instead of --start-spm/--since: start from this athlete's first running session in the history.")
@click.option("--on", "on_day", type=click.DateTime(formats=["%Y-%m-%d"]), help="The day to plan for (default: today).")
@HISTORY_OPTION
def plan(start_spm, since, athlete, on_day, db_path):
    """Today's metronome target from the cadence plan (+5 steps/min per 4 weeks, at most +10 %)."""
    import datetime as dt

    from strideclip.coaching.cadence_plan import target_spm

    day = on_day.date() if on_day else dt.date.today()
    if athlete:
        if start_spm is not None or since is not None:
            raise click.UsageError("give --athlete (plan from the history) or --start-spm with --since, not both")
        from strideclip.store.history import History

        with History(db_path) as h:
            got = h.plan_target_spm(athlete, day)
        if got is None:
            raise click.UsageError(f"no running session of {athlete} in the history: strideclip history import FOLDER")
        start_spm, start_day = got["start_spm"], dt.date.fromisoformat(got["since"])
    elif start_spm is None or since is None:
        raise click.UsageError("give --start-spm and --since, or --athlete to start from the history")
    else:
        start_day = since.date()
    try:
        target = target_spm(start_spm, start_day, day)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    click.echo(f"{day}: metronome target {target} steps/min (started at {start_spm:g} on {start_day})")
    click.echo(f"for a cue settings file (--cues):\n[cues]\ntarget_spm = {target}")


@cli.command()
@click.option("--port", help="The clip's USB serial port, e.g. /dev/ttyUSB0 (fetched with mpremote).")
@click.option("--clip", "clip_name", help="The clip's BLE name or address (fetched over BLE).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for the fetched session logs.")
@click.option("--delete", is_flag=True, help="Remove each log from the clip once its copy reads cleanly.")
@click.option("--ble-backend", hidden=True, help="module:function giving bleak backends (tests).")
@HISTORY_OPTION
@NO_HISTORY_OPTION
def sync(port, clip_name, out_dir, delete, ble_backend, db_path, no_history):
    """Fetch the runs the clip logged to its flash while no host was listening."""
    if bool(port) == bool(clip_name):
        raise click.UsageError("give the clip's --port (USB) or its --clip name (BLE)")
    if port:
        from strideclip.device.flash import sync as run_sync

        got = run_sync(port, out_dir, delete=delete, echo=click.echo)
    else:
        got = _run_ble(_sync_ble_main(clip_name, out_dir, delete, ble_backend))
    click.echo(f"{len(got)} log(s) in {out_dir}")
    if not no_history:
        _catalogue(got, db_path)


async def _sync_ble_main(clip_name, out_dir, delete, backend_spec):
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan
    from strideclip.store.logsync import sync_ble

    backend = await _ble_backend(backend_spec)
    (clip,) = pick(await ble_scan(3.0, backend=backend and backend.scanner_backend), [clip_name])
    click.echo(f"fetching the logs of {clip.name} ({clip.address})")
    return await sync_ble(clip.address, out_dir, delete=delete, backend=backend and backend.client_backend,
                          echo=click.echo)


class _ProgressBar:
    """A progress bar on a terminal's stderr for a long log; nothing elsewhere."""

    def __init__(self, label: str):
        self.label, self._bar = label, None

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=1)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar:
            self._bar.update(self._task, completed=done, total=total or 1)

    def __exit__(self, *exc):
        if self._bar:
            self._bar.__exit__(*exc)


@cli.group(invoke_without_command=True)
@click.option("--athlete", default=None, help="Only this athlete (default: everyone).")
@click.option("--load-rise-pct", type=click.FloatRange(0, 1000), default=10.0, show_default=True,
              help="Warn when a week's running time rises more than this over the week before.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: sessions, weeks, plan per athlete.")
@HISTORY_OPTION
@click.pass_context
def history(ctx, athlete, load_rise_pct, as_json, db_path):
    """Sessions and weekly trends per athlete; `history import` adds logs, `history repair` rebuilds a
    damaged history from its logs."""
    if ctx.invoked_subcommand:
        return
    import datetime as dt
    import json

    from strideclip.store.history import History

    with History(db_path) as h:
        athletes = [athlete] if athlete else h.athletes()
        out = {a: {"sessions": h.sessions(a), "weeks": h.weekly(a, load_rise_pct=load_rise_pct),
                   "plan": h.plan_target_spm(a, dt.date.today())} for a in athletes}
    if as_json:
        for a in out.values():
            for r in a["sessions"]:
                r.pop("summary_json")
        click.echo(json.dumps(out))
        return
    if not any(a["sessions"] for a in out.values()):
        click.echo(f"no sessions{' of ' + athlete if athlete else ''} in the history yet: strideclip history import FOLDER")
        return
    if len(out) > 1:  # the coach's view: athletes side by side, their latest session and last 4 weeks
        click.echo("athlete          sessions  latest      running min (4 weeks)  cadence  impact g  rotation deg")
        for a, d in out.items():
            last = d["sessions"][-1] if d["sessions"] else None
            recent = sum(w["running_min"] for w in d["weeks"][-4:])
            click.echo(f"{a[:16]:16} {len(d['sessions']):8d}  {last['started_at'][:10] if last else '-':10}  "
                       f"{recent:21.1f}  {_num(last and last['cadence_spm']):>7}  "
                       f"{_num(last and last['peak_vertical_g'], 2):>8}  {_num(last and last['pelvic_rotation_deg']):>12}")
        click.echo("")
    for a, d in out.items():
        click.echo(f"== {a}: {len(d['sessions'])} session(s)")
        for r in d["sessions"]:
            click.echo(f"  #{r['id']:<4} {r['started_at'][:16].replace('T', ' ')}  {r['duration_s'] / 60:5.1f} min "
                       f"({r['running_s'] / 60:5.1f} running)  cadence {_num(r['cadence_spm'])} spm  impact "
                       f"{_num(r['peak_vertical_g'], 2)} g  rotation {_num(r['pelvic_rotation_deg'])} deg  "
                       f"{r['cues']} cue(s){'  fatigue at ' + _num(r['fatigue_onset_s'] / 60) + ' min' if r['fatigue_onset_s'] else ''}"
                       f"{'  ' + ', '.join(x for x in (r['shoes'], r['surface'], r['tags']) if x) if (r['shoes'] or r['surface'] or r['tags']) else ''}")
        click.echo("  week        sessions  running min  change   cadence  impact  rotation")
        for w in d["weeks"]:
            change = f"{w['load_change_pct']:+6.0f} %" if w["load_change_pct"] is not None else "      -"
            click.echo(f"  {w['iso_week']}  {w['sessions']:8d}  {w['running_min']:11.1f}  {change}  "
                       f"{_num(w['cadence_spm']):>7}  {_num(w['peak_vertical_g'], 2):>6}  {_num(w['pelvic_rotation_deg']):>8}"
                       f"{f'  LOAD: running time up more than {load_rise_pct:g} % on the week before' if w['load_warning'] else ''}")
        if d["plan"]:
            p = d["plan"]
            click.echo(f"  cadence plan: {p['target_spm']:.0f} spm today (from {p['start_spm']:.1f} spm on {p['since']})")


def _num(v, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _history_db(db_path):
    """The database of a `history` subcommand: `history --db X SUB` and `history SUB --db X` alike."""
    outer = click.get_current_context().parent.params.get("db_path")
    if db_path and outer and db_path != outer:
        raise click.UsageError(f"two history databases given (--db {outer} and --db {db_path}): give one")
    return db_path or outer


@history.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--athlete", default=None, help="Who ran (default: the name in each log).")
@click.option("--shoes", default=None)
@click.option("--surface", default=None, help="e.g. road, track, trail, treadmill.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None, help="The session's distance, if known.")
@HISTORY_OPTION
@CUES_OPTION
def history_import(paths, athlete, shoes, surface, tags, distance_km, db_path, cues_path):
    """Add session logs (files or folders of *.sclog) to the history, one row per clip session: known
    sessions are skipped, a longer log of one replaces it, a log still being written waits."""
    from strideclip.store.history import History

    with History(_history_db(db_path)) as h:
        res = h.import_paths(paths, athlete=athlete, shoes=shoes, surface=surface, tags=tags, distance_km=distance_km,
                             cue_settings=_cue_settings(cues_path))
        for path, sid in res.imported:
            click.echo(f"#{sid} {path}")
        for path, sid in res.replaced:
            click.echo(f"#{sid} {path} (a longer log of a session in the history: replaces its row)")
        for path, why in res.bad:
            click.echo(f"skipped: {why}", err=True)  # the reason names the file
        for path, why in res.writing:
            click.echo(f"not imported: {why}", err=True)
        click.echo(f"{len(res.imported)} imported, {len(res.already)} already in the history, {len(res.bad)} bad"
                   + (f", {len(res.replaced)} replaced by a longer log" if res.replaced else "")
                   + (f", {len(res.writing)} still being written" if res.writing else "") + f" ({h.path})")
    if res.bad and not (res.imported or res.replaced or res.already):
        sys.exit(1)


@history.command("edit")
@click.argument("session_id", type=int)
@click.option("--athlete", default=None)
@click.option("--shoes", default=None)
@click.option("--surface", default=None)
@click.option("--tag", "tags", multiple=True, help="Replace the tags; repeat for several.")
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None)
@HISTORY_OPTION
def history_edit(session_id, athlete, shoes, surface, tags, distance_km, db_path):
    """Set what a log cannot know: distance, shoes, surface, tags (or fix the athlete)."""
    from strideclip.store.history import History

    with History(_history_db(db_path)) as h:
        h.edit(session_id, distance_km=distance_km, shoes=shoes, surface=surface, tags=tags or None, athlete=athlete)
        click.echo(f"session {session_id} updated")


@history.command("repair")
@click.argument("folders", nargs=-1, type=click.Path(exists=True))
@HISTORY_OPTION
@CUES_OPTION
def history_repair(folders, db_path, cues_path):
    """Rebuild a damaged history from the logs it catalogued (and FOLDERS of logs); the damaged file is kept."""
    from pathlib import Path

    from strideclip.store.history_db import default_path
    from strideclip.store.history_repair import repair

    path = Path(_history_db(db_path) or default_path())
    res = repair(path, folders, cue_settings=_cue_settings(cues_path))
    if res is None:
        click.echo(f"{path}: its integrity check passes; nothing to repair")
        return
    click.echo(f"{path} was damaged ({res.problem}); kept as {res.damaged_copy}")
    click.echo(f"{res.rows_read} session row(s) could still be read from it; the logs named in it"
               + (" and in the folders given" if folders else "") + " are analysed again")
    for log, sid in res.restored:
        click.echo(f"#{sid} {log}")
    for sid, log in res.kept:
        click.echo(f"#{sid} kept as it was read: its log {log} is gone")
    for sid, log in res.lost:
        click.echo(f"#{sid} lost: its log {log} is gone and its row could not be read", err=True)
    for _, why in res.bad:
        click.echo(f"skipped: {why}", err=True)
    click.echo(f"{len(res.restored)} session(s) restored from their logs, {len(res.kept)} kept without their log, "
               f"{len(res.lost)} lost, {len(res.bad)} bad ({path})")
    if not (res.restored or res.kept):
        click.echo(f"no session could be restored: add the folders of your logs with `strideclip history import "
                   f"FOLDER --db {path}`", err=True)


@cli.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The HTML file to write (new).")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Also write the main figure as a PNG image.")
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None,
              help="The session's distance, for per-km splits (default: from the history, if known there).")
@click.option("--no-history", is_flag=True, help="Do not compare with the athlete's earlier sessions.")
@HISTORY_OPTION
@CUES_OPTION
def report(log, output, png, distance_km, no_history, db_path, cues_path):
    """One session as a self-contained HTML report (opens with no network)."""
    from pathlib import Path

    from strideclip.views.report import write_report

    if Path(output).exists():
        raise click.UsageError(f"{output} exists; choose a new file for the report")
    with _ProgressBar(f"reading {Path(log).name}") as bar:
        data = write_report(log, output, png=png, distance_km=distance_km, history_db=False if no_history else db_path,
                            cue_settings=_cue_settings(cues_path), progress=bar, warn=lambda m: click.echo(m, err=True))
    summary, previous = data["summary"], data["previous"]
    click.echo(f"wrote {output}" + (f" and {png}" if png else "") + f": {summary['steps']} steps, "
               f"{len(summary['cues'])} cue(s), {len(previous)} earlier session(s) compared")


@cli.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "fit"]), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The file to write (new).")
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None,
              help="fit: the session's distance (a sacral clip cannot measure it).")
@CUES_OPTION
def export(log, fmt, output, distance_km, cues_path):
    """A session's steps as CSV, Parquet, or a FIT activity with running dynamics."""
    from pathlib import Path

    from strideclip.views.export import export_session

    with _ProgressBar(f"reading {Path(log).name}") as bar:
        summary = export_session(log, output, fmt, distance_km=distance_km, cue_settings=_cue_settings(cues_path),
                                 progress=bar)
    click.echo(f"wrote {output} ({fmt}): {summary['steps']} steps over {summary['duration_s'] / 60:.1f} min")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except StrideClipError as e:
        click.echo(f"strideclip: {e}", err=True)
        sys.exit(1)
