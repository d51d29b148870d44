"""What a session report shows, as plain numbers (JSON-able): ``report_data`` turns a session's
summary and step table into the series over time, the left/right figures, the splits every 5
minutes and per km, the fatigue marks, and the cues with their outcomes. strideclip.views.report
draws it, in the colours of ``COLOURS``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from strideclip.analysis.fatigue import fatigue_marks
from strideclip.coaching.cue_outcomes import outcome_text

SPLIT_MIN = 5.0
TREND_STEPS = 15  # the trend line is the rolling median over this many running steps
SERIES = (  # (step-table column, label with unit, panel)
    ("cadence_spm", "cadence (steps/min)", "cadence"),
    ("peak_vertical_g", "peak vertical acceleration (g)", "impact"),
    ("peak_vgrf_bw", "peak vGRF estimate (body weights)", "impact"),
    ("pelvic_rotation_deg", "pelvic rotation (deg)", "pelvis"),
    ("pelvic_drop_deg", "pelvic drop (deg)", "pelvis"),
    ("pelvic_tilt_deg", "pelvic tilt (deg)", "pelvis"),
)
# One colour per series and mark, for every drawing of a report (Bokeh's HTML, matplotlib's PNG);
# the fatigue states in the dashboard's colours.
COLOURS = {
    "cadence_spm": "#1f77b4", "peak_vertical_g": "#2ca02c", "peak_vgrf_bw": "#9467bd",
    "pelvic_rotation_deg": "#8c564b", "pelvic_drop_deg": "#e377c2", "pelvic_tilt_deg": "#17becf",
    "watch": "#b9770e", "fatigued": "#c0392b", "cue": "#ff7f0e", "left": "#1f77b4", "right": "#d62728",
}
# The fatigue states a report marks (strideclip.analysis.fatigue), with what each is called there
FATIGUE_MARKS = (("watch", "first sign (watch)"), ("fatigued", "fatigued"))
SPLIT_COLUMNS = ("cadence_spm", "peak_vertical_g", "peak_vgrf_bw", "contact_ms", "pelvic_rotation_deg",
                 "pelvic_drop_deg", "pelvic_tilt_deg")


def report_data(summary: dict, table: np.ndarray, *, distance_km: float | None = None,
                previous: list[dict] | None = None) -> dict:
    """Everything the report shows, as plain numbers (JSON-able)."""
    run = table[table["running"] == 1]
    t_min = run["t_s"] / 60
    series = {}
    for col, label, panel in SERIES:
        ok = np.isfinite(run[col])
        series[col] = {"label": label, "panel": panel, "t_min": _r(t_min[ok], 4), "value": _r(run[col][ok], 4),
                       "trend": _r(_rolling_median(run[col][ok], TREND_STEPS), 4)}
    data = {
        "athlete": summary.get("athlete"), "clip": summary.get("clip"), "started_at": summary.get("started_at"),
        "log": Path(summary["log"]).name, "duration_s": summary["duration_s"], "rate_hz": summary["rate_hz"],
        "steps": summary["steps"], "running_steps": summary["running_steps"],
        "running_min": round(float(np.nansum(run["step_time_s"])) / 60, 2),
        "loss_pct": summary["loss_pct"], "log_damage": summary["log_damage"]["summary"],
        "imported": summary.get("imported"),  # another sensor's recording (docs/import.md), else None
        "medians": {k: summary.get(f"{k}_median") for k in (*SPLIT_COLUMNS, "balance_left_pct", "vertical_oscillation_cm")},
        "series": series,
        "fatigue": fatigue_marks(summary["fatigue"]),
        "fatigue_changes": summary["fatigue"],
        "cues": [{**c, **{k: o.get(k) for k in ("recovered_after_s", "watched_s", "in_zone_pct")},
                  "outcome": outcome_text(o)} for c, o in zip(summary["cues"], summary["cue_outcomes"])],
        "sides": _sides(run),
        "splits_5min": _splits_by_time(run, summary["cues"]),
        "distance_km": distance_km,
        "splits_km": _splits_by_km(run, distance_km) if distance_km else [],
        "previous": previous or [],
    }
    return data


def _r(a: np.ndarray, nd: int) -> list:
    return [round(float(v), nd) for v in a]


def _rolling_median(v: np.ndarray, n: int) -> np.ndarray:
    if len(v) < n:
        return np.full(len(v), np.median(v)) if len(v) else v
    windows = np.lib.stride_tricks.sliding_window_view(v, n)
    med = np.median(windows, axis=1)
    return np.concatenate([np.full(n - 1, med[0]), med])  # the first steps take the first full window


def _medians(rows: np.ndarray) -> dict:
    out = {}
    for col in SPLIT_COLUMNS:
        v = rows[col][np.isfinite(rows[col])]
        out[col] = round(float(np.median(v)), 2) if len(v) else None
    return out


def _splits_by_time(run: np.ndarray, cues: list[dict]) -> list[dict]:
    if not len(run):
        return []
    out = []
    edges_s = np.arange(0, run["t_s"][-1] + SPLIT_MIN * 60, SPLIT_MIN * 60)
    for a, b in zip(edges_s[:-1], edges_s[1:]):
        rows = run[(run["t_s"] >= a) & (run["t_s"] < b)]
        if not len(rows):
            continue
        out.append({"from_min": float(a / 60), "to_min": float(b / 60), "running_steps": int(len(rows)),
                    "running_min": round(float(np.nansum(rows["step_time_s"])) / 60, 2),
                    "cues": sum(1 for c in cues if c["t_s"] is not None and a <= c["t_s"] < b), **_medians(rows)})
    return out


def _splits_by_km(run: np.ndarray, distance_km: float) -> list[dict]:
    """Per km, the distance spread over running time (even pace: the clip cannot tell pace)."""
    step_s = np.nan_to_num(run["step_time_s"])
    km_at_step = np.cumsum(step_s) / step_s.sum() * distance_km if step_s.sum() else np.zeros(len(run))
    out = []
    for k in range(int(np.ceil(distance_km - 1e-9))):
        rows_k = (km_at_step > k) & (km_at_step <= k + 1)
        rows = run[rows_k]
        if not len(rows):
            continue
        km = min(1.0, distance_km - k)
        out.append({"km": k + 1, "length_km": round(km, 3), "time_min": round(float(step_s[rows_k].sum()) / 60, 2),
                    **_medians(rows)})
    return out


def _sides(run: np.ndarray) -> dict:
    out = {}
    for name, side in (("left", 0), ("right", 1)):
        rows = run[run["side"] == side]
        out[name] = {"steps": int(len(rows)),
                     **{col: _r(rows[col][np.isfinite(rows[col])], 3)
                        for col in ("step_time_s", "peak_vertical_g", "contact_ms")}}
    return out
