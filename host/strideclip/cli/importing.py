"""``strideclip import``: another sensor's or a phone's recording as a session log every other
command reads (docs/import.md, #25). The work is in ``strideclip.imports``."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import click

from strideclip.cli.common import FORCE_OPTION, OUT_FILE, example
from strideclip.imports.formats import READERS

if TYPE_CHECKING:
    from strideclip.imports.to_log import Imported

CSV_ONLY = ("columns", "rate_hz")  # options only the generic CSV takes


def parsed_by(module: str, parse: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A click callback refusing a value ``strideclip.imports.<module>.<parse>`` cannot take
    (its ValueError, as a bad option: exit 2), before anything is read. The module is imported
    only when the option is given (numpy stays out of --help)."""
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value:
            try:
                getattr(importlib.import_module(f"strideclip.imports.{module}"), parse)(value)
            except ValueError as e:
                raise click.BadParameter(str(e)) from None
        return value

    return check


CHECK_COLUMNS = parsed_by("generic_csv", "parse_columns")  # --columns, here and in evaluate csv


@click.command("import", epilog=example(
    "strideclip import run.csv --format csv --columns t=time:ms,ax=ax:mps2,ay=ay:mps2,az=az:mps2,"
    "gx=gx:rads,gy=gy:rads,gz=gz:rads -o run.sclog",
    "strideclip import Accelerometer.csv Gyroscope.csv --format phyphox --athlete Ana -o run.sclog"))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))  # (phyphox, metamotion: a folder too)
@click.option("--format", "fmt", type=click.Choice(list(READERS)), required=True,
              help="What wrote the files: csv (any table, with --columns), phyphox, metamotion, movesense, "
                   "xsens-dot (docs/import.md).")
@click.option("-o", "--output", type=OUT_FILE, metavar="FILE", required=True, help="Session log to write.")
@FORCE_OPTION
@click.option("--athlete", default=None, help="Who ran it (stored in the log).")
@click.option("--columns", default=None, metavar="MAP", callback=CHECK_COLUMNS,
              help="csv: which column is what, with its unit: t=NAME[:s|ms|us|ns], ax/ay/az=NAME[:g|mg|mps2], "
                   "gx/gy/gz=NAME[:dps|mdps|rads]; NAME a header or #N, the N-th column (default: t_s, acc_x, "
                   "acc_y, acc_z, gyr_x, gyr_y, gyr_z in s, g, deg/s).")
@click.option("--rate-hz", type=click.FloatRange(1, 100_000), default=None,
              help="csv: rows per second, Hz, for a file without a time column.")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default=None,
              help="The rate the recording is resampled to, Hz (default: the step detector's rate nearest "
                   "the recording's).")
@click.option("--axes", default=None, metavar="MAP", callback=parsed_by("axes", "parse_axes"),
              help="Where the sensor's axes pointed on the body, if known: x=, y=, z= each one of up, down, left, "
                   "right, forward, back (e.g. x=up,y=left,z=back). Default: learnt from the motion.")
@click.option("--mount", nargs=3, default=None, metavar="ROLL PITCH YAW",
              type=(click.FloatRange(-180, 180), click.FloatRange(-90, 90), click.FloatRange(-180, 180)),
              help="The sensor turned from the orientation --axes names (or the clip's recommended one), "
                   "degrees (roll and yaw -180..180, pitch -90..90), as in strideclip simulate --mount.")
@click.option("--started-at", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
              default=None, help="When the recording started, UTC (default: the file's own start, else the "
                                 "file's modification time).")
def import_cmd(files: tuple[str, ...], fmt: str, output: str, force: bool, athlete: str | None,
               columns: str | None, rate_hz: float | None, clip_rate: str | None, axes: str | None,
               mount: tuple[float, float, float] | None, started_at: datetime | None) -> None:
    """Turn another sensor's or a phone's recording into a session log (replay, report, export, history).

    FILES: the recording's files; phyphox also takes its export's folder or zip archive, metamotion
    the folder holding its two CSVs."""
    from pathlib import Path

    from strideclip.stream.outputs import OutputFile, check_file

    given = {"columns": columns, "rate_hz": rate_hz}
    if fmt != "csv" and any(given[k] is not None for k in CSV_ONLY):
        used = ", ".join(f"--{k.replace('_', '-')}" for k in CSV_ONLY if given[k] is not None)
        raise click.UsageError(f"{used}: only for --format csv (the {fmt} reader knows its own columns)")
    for f in files[1:]:  # never a file being read, --force or not; checked before any is read
        check_file(output, option="-o", force=force, source=f)
    log = OutputFile(output, option="-o", force=force, source=files[0])
    from strideclip.errors import ImportFormatError
    from strideclip.imports import formats, to_log

    paths = [Path(f) for f in files]
    read = formats.reader(fmt)
    try:
        rec = read(paths, columns=columns, rate_hz=rate_hz) if fmt == "csv" else read(paths)
        done = to_log.write_log(rec, log, athlete=athlete, clip_rate_hz=int(clip_rate) if clip_rate else None,
                                axes=axes, mount_deg=mount, source_paths=paths,
                                started_at=started_at.strftime("%Y-%m-%dT%H:%M:%S.000+00:00") if started_at else None)
    except (OSError, UnicodeDecodeError) as e:  # a file that cannot be read as text: said in one line
        raise ImportFormatError(f"{getattr(e, 'filename', None) or files[0]}: cannot be read as {fmt} ({e})",
                                path=files[0]) from e
    _say(done, output)


def _say(done: Imported, output: str) -> None:
    """What was written, in a few lines: the log, where it came from, what was left out."""
    clip, imp = done.clip, done.header["imported"]
    source = f"{', '.join(imp['files'])} ({imp['format']}{', ' + imp['sensor'] if imp['sensor'] else ''})"
    click.echo(f"wrote {output}: {clip.n_samples} samples at {clip.rate_hz} Hz ({clip.span_s / 60:.1f} min) from "
               f"{source} at {imp['rate_hz']:.4g} Hz")
    if imp["gaps"]:
        kinds = sorted({g["why"] for g in clip.timeline.gaps})
        click.echo(f"  {imp['gaps']} gap(s) in the recording ({', '.join(kinds)}): "
                   f"{sum(b - a for a, b in clip.gaps_idx)} samples missing in the log, none made up")
    if not clip.has_gyro:
        click.echo("  no gyroscope: pelvic rotation, drop and tilt will be blank")
    click.echo(f"  body frame: {imp['frame']}")
    for note in imp["notes"]:
        click.echo(f"  note: {note}")
