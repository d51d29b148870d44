"""Commands for what is kept: history (import, edit, repair), plan, sync, report, export."""
from __future__ import annotations

import sys
from datetime import datetime

import click

from strideclip.cli.common import (CUES_OPTION, FORCE_OPTION, HISTORY_OPTION, NO_HISTORY_OPTION, OUT_FILE, OUT_FOLDER,
                                   add_to_history, example, resolve_ble_backend, rows_said, run_ble)
from strideclip.cli.progress import ProgressBar
from strideclip.coaching.cueconfig import load_if_given
from strideclip.errors import HistoryError


@click.group(invoke_without_command=True, epilog=example("strideclip history import runs/ && strideclip history"))
@click.option("--athlete", default=None, help="Only this athlete (default: everyone).")
@click.option("--load-rise-pct", type=click.FloatRange(0, 1000), default=10.0, show_default=True,
              help="Warn when a week's running time rises more than this over the week before, %.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: sessions, weeks, plan per athlete.")
@HISTORY_OPTION
@click.pass_context
def history(ctx: click.Context, athlete: str | None, load_rise_pct: float, as_json: bool, db_path: str | None) -> None:
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
                       f"{r['cues']} cue(s){'  fatigued from ' + _num(r['fatigue_onset_s'] / 60) + ' min' if r['fatigue_onset_s'] else ''}"
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


@history.command("import", epilog=example("strideclip history import runs/ --athlete Ana --surface track"))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--athlete", default=None, help="Who ran (default: the name in each log).")
@click.option("--shoes", default=None, help="The shoes worn (free text).")
@click.option("--surface", default=None, help="e.g. road, track, trail, treadmill.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None,
              help="The session's distance, km, if known.")
@HISTORY_OPTION
@CUES_OPTION
def history_import(paths: tuple[str, ...], athlete: str | None, shoes: str | None, surface: str | None,
                   tags: tuple[str, ...], distance_km: float | None, db_path: str | None, cues_path: str | None) -> None:
    """Add session logs (files or folders of *.sclog) to the history, one row per clip session: known
    sessions are skipped, a longer log of one replaces it, a log still being written waits."""
    from strideclip.store.history import History

    with History(_history_db(db_path)) as h:
        res = h.import_paths(paths, athlete=athlete, shoes=shoes, surface=surface, tags=tags, distance_km=distance_km,
                             cue_settings=load_if_given(cues_path))
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


@history.command("edit", epilog=example("strideclip history edit 12 --distance-km 8.4 --shoes 'Pegasus 40'"))
@click.argument("session_id", type=click.IntRange(1))
@click.option("--athlete", default=None, help="Who ran (fixes the name the log gave).")
@click.option("--shoes", default=None, help="The shoes worn (free text).")
@click.option("--surface", default=None, help="e.g. road, track, trail, treadmill.")
@click.option("--tag", "tags", multiple=True, help="Replace the tags; repeat for several.")
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None, help="The session's distance, km.")
@HISTORY_OPTION
def history_edit(session_id: int, athlete: str | None, shoes: str | None, surface: str | None, tags: tuple[str, ...],
                 distance_km: float | None, db_path: str | None) -> None:
    """Set what a log cannot know: distance, shoes, surface, tags (or fix the athlete)."""
    from strideclip.store.history import History

    with History(_history_db(db_path)) as h:
        h.edit(session_id, distance_km=distance_km, shoes=shoes, surface=surface, tags=tags or None, athlete=athlete)
        click.echo(f"session {session_id} updated")


@history.command("repair", epilog=example("strideclip history repair runs/"))
@click.argument("folders", nargs=-1, type=click.Path(exists=True))
@HISTORY_OPTION
@CUES_OPTION
def history_repair(folders: tuple[str, ...], db_path: str | None, cues_path: str | None) -> None:
    """Rebuild a damaged history from the logs it catalogued (and FOLDERS of logs); the damaged file is kept."""
    from pathlib import Path

    from strideclip.store.history_db import default_path
    from strideclip.store.history_repair import repair

    path = Path(_history_db(db_path) or default_path())
    res = repair(path, folders, cue_settings=load_if_given(cues_path))
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


@click.command(epilog=example("strideclip plan --start-spm 162 --since 2026-01-05", "strideclip plan --athlete Ana"))
@click.option("--start-spm", type=click.FloatRange(100, 240), default=None,
              help="The runner's cadence when the plan started, steps/min.")
@click.option("--since", "since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day the plan started (YYYY-MM-DD).")
@click.option("--athlete", default=None,
              help="Instead of --start-spm/--since: start from this athlete's first running session in the history.")
@click.option("--on", "on_day", type=click.DateTime(formats=["%Y-%m-%d"]), help="The day to plan for (default: today).")
@HISTORY_OPTION
def plan(start_spm: float | None, since: datetime | None, athlete: str | None, on_day: datetime | None,
         db_path: str | None) -> None:
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
            raise HistoryError(f"no running session of {athlete} in the history to plan from: "
                               f"strideclip history import FOLDER first, or give --start-spm and --since")
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


@click.command(epilog=example("strideclip sync --clip clip-51a00007 --out runs --delete"))
@click.option("--port", help="The clip's USB serial port, e.g. /dev/ttyUSB0 (fetched with mpremote).")
@click.option("--clip", "clip_name", help="The clip's BLE name or address (fetched over BLE).")
@click.option("--out", "out_dir", type=OUT_FOLDER, metavar="FOLDER", default=".", show_default=True,
              help="Folder for the fetched session logs (made if missing).")
@click.option("--delete", is_flag=True, help="Remove each log from the clip once its copy reads cleanly.")
@click.option("--ble-backend", hidden=True, help="module:function giving bleak backends (tests).")
@HISTORY_OPTION
@NO_HISTORY_OPTION
def sync(port: str | None, clip_name: str | None, out_dir: str, delete: bool, ble_backend: str | None,
         db_path: str | None, no_history: bool) -> None:
    """Fetch the runs the clip logged to its flash while no host was listening."""
    from strideclip.stream.outputs import check_folder

    if bool(port) == bool(clip_name):
        raise click.UsageError("give the clip's --port (USB) or its --clip name (BLE)")
    check_folder(out_dir, option="--out")
    if port:
        from strideclip.device.flash import sync as run_sync

        got = run_sync(port, out_dir, delete=delete, echo=click.echo)
    else:
        got = run_ble(_sync_ble_main(clip_name, out_dir, delete, ble_backend))
    click.echo(f"{len(got)} log(s) in {out_dir}")
    if not no_history:
        add_to_history(got, db_path)


async def _sync_ble_main(clip_name, out_dir, delete, backend_spec):
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan
    from strideclip.store.logsync import sync_ble

    backend = await resolve_ble_backend(backend_spec)
    (clip,) = pick(await ble_scan(3.0, backend=backend and backend.scanner_backend), [clip_name])
    click.echo(f"fetching the logs of {clip.name} ({clip.address})")
    return await sync_ble(clip.address, out_dir, delete=delete, backend=backend and backend.client_backend,
                          echo=click.echo)


@click.command(epilog=example("strideclip report run.sclog -o run.html --png run.png"))
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=OUT_FILE, metavar="FILE", required=True, help="The HTML file to write.")
@click.option("--png", type=OUT_FILE, metavar="FILE", default=None, help="Also write the main figure as a PNG image.")
@FORCE_OPTION
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None,
              help="The session's distance, km, for per-km splits (default: from the history, if known there).")
@click.option("--no-history", is_flag=True, help="Do not compare with the athlete's earlier sessions.")
@HISTORY_OPTION
@CUES_OPTION
def report(log: str, output: str, png: str | None, force: bool, distance_km: float | None, no_history: bool,
           db_path: str | None, cues_path: str | None) -> None:
    """One session as a self-contained HTML report (opens with no network)."""
    from pathlib import Path

    from strideclip.stream.outputs import OutputFile

    html = OutputFile(output, option="-o", force=force, source=log)  # checked before the log is read
    image = OutputFile(png, option="--png", force=force, source=log) if png else None
    from strideclip.views.report import write_report

    with ProgressBar(f"reading {Path(log).name}") as bar:
        data = write_report(log, html, png=image, distance_km=distance_km, history_db=False if no_history else db_path,
                            cue_settings=load_if_given(cues_path), progress=bar, warn=lambda m: click.echo(m, err=True))
    summary, previous = data["summary"], data["previous"]
    click.echo(f"wrote {output}" + (f" and {png}" if png else "") + f": {summary['steps']} steps, "
               f"{len(summary['cues'])} cue(s), {len(previous)} earlier session(s) compared")


@click.command(epilog=example("strideclip export run.sclog --format fit -o run.fit --distance-km 10"))
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "fit"]), required=True,
              help="csv, parquet: one row per step (docs/metrics.md); fit: an activity, one record per second.")
@click.option("-o", "--output", type=OUT_FILE, metavar="FILE", required=True, help="The file to write.")
@FORCE_OPTION
@click.option("--distance-km", type=click.FloatRange(0.01, 500), default=None,
              help="fit: the session's distance, km (a sacral clip cannot measure it).")
@CUES_OPTION
def export(log: str, fmt: str, output: str, force: bool, distance_km: float | None, cues_path: str | None) -> None:
    """A session's steps as CSV, Parquet, or a FIT activity with running dynamics."""
    from pathlib import Path

    from strideclip.stream.outputs import OutputFile

    out = OutputFile(output, option="-o", force=force, source=log)  # checked before the log is read
    from strideclip.views.export import export_session

    with ProgressBar(f"reading {Path(log).name}") as bar:
        summary, rows = export_session(log, out, fmt, distance_km=distance_km, cue_settings=load_if_given(cues_path),
                                       progress=bar)
    written = (f"{rows} records, one per second ({summary['steps']} steps)" if fmt == "fit"
               else rows_said(rows, summary["steps"]))
    click.echo(f"wrote {output} ({fmt}): {written} over {summary['duration_s'] / 60:.1f} min")
