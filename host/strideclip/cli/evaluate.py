"""Commands that evaluate a stage against references: evaluate (the step detector), evaluate-cues,
evaluate-metrics."""
from __future__ import annotations

import click

from strideclip.cli.common import FORCE_OPTION, OUT_FILE, example
from strideclip.cli.importing import CHECK_COLUMNS

CLIP_RATE_HELP = "The clip's sample rate the recordings are resampled to, Hz."


@click.command(epilog=example("strideclip evaluate sim",
                              "strideclip evaluate csv --samples s.csv --reference r.csv --rate-hz 100",
                              "strideclip evaluate csv --samples s.csv --reference r.csv "
                              "--columns t=time:ms,ax=ax,ay=ay,az=az"))
@click.argument("dataset", type=click.Choice(["alcantara", "voisard", "adeptdata", "sim", "csv"]))
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding the data sets (default: ../shared/data beside the repository).")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default="208",
              show_default=True, help=CLIP_RATE_HELP)
@click.option("--tolerance-ms", type=click.FloatRange(1, 500), default=None,
              help="Matching tolerance, ms (default 50 ms running, 100 ms walking).")
@click.option("--samples", type=click.Path(exists=True, dir_okay=False),
              help="csv: samples file (columns acc_x, acc_y, acc_z and optionally gyr_x, gyr_y, gyr_z, or as "
                   "--columns says; read as strideclip import --format csv reads it, docs/import.md).")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), help="csv: reference contacts (t_s, seconds).")
@click.option("--rate-hz", "input_rate_hz", type=click.FloatRange(10, 5000),
              help="csv: rows per second in --samples, Hz (for a file without a time column).")
@click.option("--columns", default=None, metavar="MAP", callback=CHECK_COLUMNS,
              help="csv: which column is what, with its unit, as strideclip import --columns takes it "
                   "(e.g. t=time:ms,ax=accX:mps2,ay=accY:mps2,az=accZ:mps2).")
@click.option("--accel-unit", type=click.Choice(["g", "mps2"]), default="g", show_default=True,
              help="csv: the unit of the accelerometer columns (g, or m/s\u00b2) where --columns gives none.")
@click.option("--gyro-unit", type=click.Choice(["dps", "rads"]), default="dps", show_default=True,
              help="csv: the unit of the gyroscope columns (degrees/s, or radians/s) where --columns gives none.")
@click.option("--events-out", type=OUT_FILE, metavar="FILE",
              help="csv: write the detected contacts (t_s, side) to this file.")
@FORCE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(dataset: str, data_dir: str | None, clip_rate: str, tolerance_ms: float | None, samples: str | None,
             reference: str | None, input_rate_hz: float | None, columns: str | None, accel_unit: str, gyro_unit: str,
             events_out: str | None, force: bool, as_json: bool) -> None:
    """Score the step detector against reference footfalls (docs/step-detector.md)."""
    import json
    from contextlib import nullcontext

    from strideclip.stream.outputs import OutputFile, writing

    if dataset == "csv" and not (samples and reference and (input_rate_hz or columns)):
        raise click.UsageError("csv needs --samples, --reference and --rate-hz (or a time column in --columns)")
    events = OutputFile(events_out, option="--events-out", force=force) if events_out else None  # before any work
    from strideclip.evaluation import evaluate as ev

    if dataset == "csv":
        with writing(events) if events else nullcontext((None,)) as (part,):
            out = ev.evaluate_csv(samples, reference, rate_hz=input_rate_hz, clip_rate_hz=int(clip_rate),
                                  tolerance_ms=tolerance_ms or 50.0, accel_unit=accel_unit, gyro_unit=gyro_unit,
                                  columns=columns, events_out=part)
    else:
        out = ev.evaluate(dataset, rate_hz=int(clip_rate), tolerance_ms=tolerance_ms, data_dir=data_dir)
    if as_json:
        click.echo(json.dumps(out))
        return
    _echo_readable({k: v for k, v in out.items() if k != "per_window"})


@click.command("evaluate-cues", epilog=example("strideclip evaluate-cues --seeds 5"))
@click.option("--seeds", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Simulated runs of each kind (fatigue, steady with confounders).")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default="208", show_default=True,
              help="The simulated clip's sample rate, Hz.")
@click.option("--fatigue-state", is_flag=True, help="Also score the host's fatigue state (needs the metrics: slower).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_cues_cmd(seeds: int, clip_rate: str, fatigue_state: bool, as_json: bool) -> None:
    """Score the cue policy on simulated fatigue runs and steady runs with confounders (docs/cues.md)."""
    import json

    from strideclip.cli.progress import ProgressBar
    from strideclip.evaluation.cues_eval import evaluate_cues

    label = f"simulating {seeds} fatigue runs and {seeds} steady runs at {clip_rate} Hz"
    with ProgressBar(label, quiet=as_json, show_after_s=0) as bar:  # (its time left, from the runs so far)
        if not bar.enabled and not as_json:  # piped: no bar, and a run's time is the machine's; say what runs
            click.echo(f"{label} (several seconds each)...", err=True)
        out = evaluate_cues(seeds, int(clip_rate), fatigue_state=fatigue_state, progress=bar)
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


@click.command("evaluate-metrics", epilog=example("strideclip evaluate-metrics sim"))
@click.argument("check", type=click.Choice(["alcantara", "sim", "voisard", "drift", "frames"]))
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding the data sets (default: ../shared/data beside the repository).")
@click.option("--clip-rate-hz", "clip_rate", type=click.Choice(["104", "208", "416"]), default="208", show_default=True,
              help=CLIP_RATE_HELP)
@click.option("--hours", type=click.FloatRange(0.5, 12), default=2.0, show_default=True,
              help="drift: length of the simulated run, hours (its first and last 10 minutes are compared).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_metrics(check: str, data_dir: str | None, clip_rate: str, hours: float, as_json: bool) -> None:
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
    _echo_readable(out)


_ERROR_STATS = ("n", "bias", "mae", "rmse", "p95_abs")  # strideclip.evaluation.metrics_eval._stats
_STAT_LABELS = {"mae": "mean |error|", "rmse": "rms error", "p95_abs": "p95 |error|"}


def _echo_readable(out: dict, indent: str = "") -> None:
    """An evaluation's result as lines a person reads: a value per line, error statistics as one
    line each (n, bias, mean and RMS error, 95th percentile of the absolute error), a nested
    result under its name."""
    width = max((len(k) for k in out), default=0) + 2
    for key, value in out.items():
        if isinstance(value, dict) and "n" in value and set(value) - {"median"} <= set(_ERROR_STATS):
            stats = "  ".join(f"{_STAT_LABELS.get(name, name)} {value[name]}"
                              for name in (*_ERROR_STATS, "median") if name in value)
            click.echo(f"{indent}{key:{width}}{stats if value['n'] else 'n 0 (nothing to compare)'}")
        elif isinstance(value, dict):
            click.echo(f"{indent}{key}:")
            _echo_readable(value, indent + "  ")
        elif isinstance(value, (list, tuple)):
            click.echo(f"{indent}{key:{width}}{', '.join(str(v) for v in value)}")
        else:
            click.echo(f"{indent}{key:{width}}{'-' if value is None else value}")
