"""Commands that evaluate a stage against references: evaluate (the step detector), evaluate-cues,
evaluate-metrics."""
from __future__ import annotations

import click


@click.command()
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


@click.command("evaluate-cues")
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


@click.command("evaluate-metrics")
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
