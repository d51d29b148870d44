"""`strideclip reanalyse`: a whole archive of session logs into one Parquet dataset, on a local
process pool or a Dask cluster (strideclip.store.archive; docs/archive.md)."""
from __future__ import annotations

import sys

import click

from strideclip.cli.common import CUES_OPTION, OUT_FOLDER, example
from strideclip.cli.progress import ProgressBar
from strideclip.coaching.cueconfig import load_if_given

INTERRUPTED_EXIT = 130  # docs/cli.md: cut short by Ctrl-C


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and "://" not in value:
        raise click.BadParameter(f"{value!r} is not a Dask scheduler's address: give it as tcp://HOST:PORT")
    return value


@click.command(epilog=example("strideclip reanalyse runs/ -o season.parquet --workers 4",
                              "strideclip reanalyse /shared/runs -o season.parquet --scheduler tcp://10.0.0.5:8786"))
@click.argument("archive_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "out_dir", type=OUT_FOLDER, metavar="FOLDER", required=True,
              help="The dataset folder to write (a row per step, by athlete and month; a row per log in "
                   "_sessions.parquet). Running again into it resumes.")
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="Local worker processes, 1-1024 (default: one per CPU; 1 runs in this process).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, callback=_address,
              help="Run on the Dask cluster with this scheduler instead (needs strideclip[archive]; its workers "
                   "must see ARCHIVE_DIR at the same path).")
@click.option("--force", is_flag=True,
              help="Start over: remove what an earlier reanalyse wrote to -o (without it, a rerun resumes).")
@CUES_OPTION
def reanalyse(archive_dir: str, out_dir: str, workers: int | None, scheduler: str | None, force: bool,
              cues_path: str | None) -> None:
    """Every session log of a folder (subfolders too) through the analysis, into one Parquet dataset."""
    from strideclip.store.archive import SUMMARY_FILE
    from strideclip.store.archive import reanalyse as run_archive
    from strideclip.store.archive_runs import cpu_count

    if workers and scheduler:
        raise click.UsageError("--workers is for the local pool: a Dask cluster has its own workers")
    where = (f"on the Dask cluster at {scheduler}" if scheduler
             else f"on {workers or cpu_count()} local worker(s)")
    try:
        with ProgressBar(f"reanalysing {click.format_filename(archive_dir, shorten=True)}") as bar:
            run = run_archive(archive_dir, out_dir, workers=workers, scheduler=scheduler,
                              cue_settings=load_if_given(cues_path), force=force, progress=bar)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the sessions done are kept in {out_dir}: run the same command again to resume",
                   err=True)
        sys.exit(INTERRUPTED_EXIT)
    if run.restarted:
        click.echo(f"the analysis code changed since {out_dir} was made: every session was analysed again", err=True)
    click.echo(f"reanalysed {archive_dir} into {out_dir} {where}: {run.logs} log(s), {run.analysed} analysed now, "
               f"{run.skipped} done before, {len(run.unreadable)} cannot be analysed"
               + (f", {len(run.failed)} failed" if run.failed else "")
               + (f", {run.dropped} dropped (log changed or gone)" if run.dropped else "")
               + f"; {run.steps} steps, {run.hours:.2f} h of data in {run.wall_s:.1f} s")
    for file, reason in run.unreadable + run.failed:
        click.echo(f"  not analysed: {file}: {reason}", err=True)
    click.echo(f"steps: {out_dir} (by athlete and month); sessions: {out_dir}/{SUMMARY_FILE}")
    if run.failed:
        click.echo(f"{len(run.failed)} log(s) failed for a reason other than their content: run the same command "
                   f"again to retry them", err=True)
        sys.exit(1)
