"""One session as a self-contained HTML report (and its main figure as a PNG).

The log goes through the same host pipeline as ``strideclip replay`` (decoder -> steps ->
metrics -> fatigue -> cues); ``report_data`` (strideclip.views.report_data) turns the step table
and the summary into what the report shows, and the two renderers here draw it:

- HTML: Bokeh figures (interactive: zoom, pan, hover) with Bokeh's JavaScript inlined, so the
  file opens with no network; tables are plain HTML. Every figure's data sits in named Bokeh
  data sources, which is how the browser test reads the numbers back.
- PNG: the main figure again, with matplotlib (Bokeh's own PNG export needs a web driver).

Splits per km need the distance, which a sacral IMU cannot measure: it is given (or taken from
the history), and spread over the running time in proportion (even pace) - said in the report.
"""
from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from strideclip.errors import needs_extra
from strideclip.session.replay import analyse
from strideclip.stream.outputs import OutputFile, as_output, writing
from strideclip.views.report_data import (COLOURS, FATIGUE_MARKS, SERIES, SPLIT_COLUMNS, SPLIT_MIN, TREND_STEPS,
                                          report_data)

if TYPE_CHECKING:  # matplotlib loads only when a PNG is drawn
    import matplotlib.figure

# --- HTML ----------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.2em 0.7em; text-align: right; }
th { background: #f2f2f2; } tr:nth-child(even) td { background: #fafafa; }
.note { color: #666; font-size: 0.9em; } .kpi { display: inline-block; margin: 0 1.5em 0.5em 0; }
.kpi b { display: block; font-size: 1.6em; }
"""

_TEMPLATE = """{% extends base %}
{% block preamble %}<style>{{ css }}</style>{% endblock %}
{% block contents %}
{{ head }}
<h2>Over time</h2>
<p class="note">Dots: each running step; line: the median of the last {{ trend_steps }} steps.
{{ marks_note }}</p>
{{ embed(roots.timeline) }}
<h2>Left and right</h2>
{{ sides }}
{{ embed(roots.sides) }}
<h2>Splits</h2>
{{ splits }}
<h2>What the cues achieved</h2>
{{ cues }}
<h2>Against earlier sessions</h2>
{{ previous }}
<script type="application/json" id="report-data">{{ data_json }}</script>
{% endblock %}
"""


def render_html(data: dict) -> str:
    from bokeh.embed import file_html
    from bokeh.resources import INLINE
    from jinja2 import Template

    timeline, sides = _bokeh_timeline(data), _bokeh_sides(data)
    return file_html([timeline, sides], INLINE, f"StrideClip report: {data['athlete'] or data['log']}",
                     template=Template(_TEMPLATE), template_variables={
                         "css": _CSS, "head": _head_html(data), "trend_steps": TREND_STEPS,
                         "marks_note": _marks_note(),
                         "sides": _sides_html(data), "splits": _splits_html(data), "cues": _cues_html(data),
                         "previous": _previous_html(data),
                         # the numbers behind the page, for anyone who wants them (and the tests)
                         "data_json": script_json(data),
                     })


def script_json(value: object) -> str:
    """JSON to embed in a <script> element: no <, > or & in it (\\u escapes, the same JSON), so no
    name in it can end the element or open a comment that swallows the page's other scripts."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _fmt(v, nd: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def _table(headers: list[str], rows: list[list], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _head_html(data: dict) -> str:
    m = data["medians"]
    when = _when(data)
    kpis = [("cadence", m["cadence_spm"], 1, "steps/min", "cadence_spm"),
            ("peak vertical", m["peak_vertical_g"], 2, "g", "peak_vertical_g"),
            ("peak vGRF", m["peak_vgrf_bw"], 2, "BW", "peak_vgrf_bw"),
            ("pelvic rotation", m["pelvic_rotation_deg"], 1, "deg", "pelvic_rotation_deg"),
            ("pelvic drop", m["pelvic_drop_deg"], 1, "deg", "pelvic_drop_deg"),
            ("pelvic tilt", m["pelvic_tilt_deg"], 1, "deg", "pelvic_tilt_deg"),
            ("left share", m["balance_left_pct"], 1, "%", "balance_left_pct")]
    kpi_html = "".join(f'<span class="kpi" data-metric="{key}" data-value="{v if v is not None else ""}">'
                       f'{html.escape(name)}<b>{_fmt(v, nd)}</b>{unit}</span>' for name, v, nd, unit, key in kpis)
    return (f"<h1>{html.escape(str(data['athlete'] or 'Session'))}: {html.escape(str(when))}</h1>"
            f'<p class="note">{html.escape(data["log"])} · clip {html.escape(str(data["clip"] or "?"))} · '
            f"{data['duration_s'] / 60:.1f} min, {data['running_min']:.1f} min running, {data['steps']} steps "
            f"({data['running_steps']} running) at {data['rate_hz']} Hz · link loss {data['loss_pct']:.2f} % · "
            f"log {html.escape(data['log_damage'])}</p>{_imported_html(data.get('imported'))}"
            f"<p>Medians over running steps:</p><div>{kpi_html}</div>"
            f'<p id="fatigue">Fatigue: {html.escape(_fatigue_words(data["fatigue"]))} · {len(data["cues"])} cue(s)</p>')


def _imported_html(imp: dict | None) -> str:
    """Where an imported recording came from and what it cannot measure (docs/import.md)."""
    if not imp:
        return ""
    from strideclip.imports.recording import provenance_said

    source, blank = provenance_said(imp)
    missing = "".join(f" · not measured: {html.escape(b)}" for b in blank)
    return f'<p class="note" id="imported">Imported, not a clip\'s recording: {html.escape(source)}{missing}</p>'


_MARK_DASH = {"watch": "dashed", "fatigued": "solid"}  # the fatigue marks' lines, in both drawings


def _fatigue_words(marks: dict) -> str:
    """The fatigue marks in words, each state named: "first sign (watch) at 22.6 min, fatigued at 25.0 min"."""
    said = [f"{label} at {marks[f'{state}_s'] / 60:.1f} min" for state, label in FATIGUE_MARKS
            if marks[f"{state}_s"] is not None]
    return ", ".join(said) if said else "no sign of fatigue found"


def _marks_note() -> str:
    """What the lines and marks on the charts are (the legend of the marks, in their colours)."""
    lines = [f'<span style="color:{COLOURS[state]}">{_MARK_DASH[state]} line</span>: {label}'
             for state, label in FATIGUE_MARKS]
    return "Fatigue state: " + "; ".join(lines) + f'. <span style="color:{COLOURS["cue"]}">Triangles</span>: cues.'


def _when(data: dict) -> str:
    return (data["started_at"][:16].replace("T", " ") + " UTC") if data["started_at"] else "date unknown (the clip's own log)"


def _sides_html(data: dict) -> str:
    rows = []
    for side in ("left", "right"):
        s = data["sides"][side]
        rows.append([side, s["steps"], _fmt(_median(s["step_time_s"]) * 1000 if s["step_time_s"] else None, 0),
                     _fmt(_median(s["peak_vertical_g"]), 2), _fmt(_median(s["contact_ms"]), 0)])
    return (_table(["side", "steps", "step time (ms)", "peak vertical (g)", "contact (ms)"], rows, "sides-table")
            + f'<p class="note">Left steps\' share of stride time (median): {_fmt(data["medians"]["balance_left_pct"])} %'
            " (50 % is even).</p>")


def _median(v: list) -> float | None:
    return float(np.median(v)) if v else None


def _splits_html(data: dict) -> str:
    cols = ["cadence (spm)", "peak vertical (g)", "vGRF (BW)", "contact (ms)", "rotation (deg)", "drop (deg)", "tilt (deg)"]
    rows = [[f"{s['from_min']:.0f}–{s['to_min']:.0f}", s["running_steps"], f"{s['running_min']:.1f}", s["cues"],
             *(_fmt(s[c], 2 if c in ("peak_vertical_g", "peak_vgrf_bw") else 1) for c in SPLIT_COLUMNS)]
            for s in data["splits_5min"]]
    out = f"<h3>Every {SPLIT_MIN:.0f} minutes</h3>" + _table(["minutes", "running steps", "running min", "cues", *cols],
                                                             rows, "splits-5min")
    if data["splits_km"]:
        rows = [[s["km"], f"{s['length_km']:.2f}", f"{s['time_min']:.1f}",
                 _fmt(s["time_min"] / s["length_km"], 2) if s["length_km"] else "–",
                 *(_fmt(s[c], 2 if c in ("peak_vertical_g", "peak_vgrf_bw") else 1) for c in SPLIT_COLUMNS)]
                for s in data["splits_km"]]
        out += ("<h3>Per km</h3>" + _table(["km", "length (km)", "time (min)", "min/km", *cols], rows, "splits-km")
                + f'<p class="note">{data["distance_km"]:g} km given for the session, spread over its running time '
                "(even pace: the clip cannot measure distance).</p>")
    else:
        out += '<p class="note">Per-km splits need the distance: give it with --distance-km or in the history.</p>'
    return out


def _cues_html(data: dict) -> str:
    if not data["cues"]:
        return "<p>No cues in this session.</p>"
    rows = [[_fmt(None if c["t_s"] is None else c["t_s"] / 60, 1), c["reason"], c["played"], c["tempo_spm"] or "–",
             c["source"], c["outcome"], _fmt(c["in_zone_pct"], 0)] for c in data["cues"]]
    return (_table(["minute", "why", "played", "tempo (spm)", "from", "recovery", "steps in zone (%)"],
                   rows, "cues-table")
            + '<p class="note">Recovered: back within 2 % of the tempo (cadence) or under the warm-up level + 15 % '
            "(rotation) for 10 s. In zone: steps within 3 % of the tempo in the cue and the 2 minutes after.</p>")


def _previous_html(data: dict) -> str:
    prev = data["previous"]
    if not prev:
        return '<p class="note">No earlier sessions of this athlete in the history (strideclip history import).</p>'
    m = data["medians"]
    rows = [[p["started_at"][:10], _fmt(p["duration_s"] / 60, 0), _fmt(p["cadence_spm"]), _fmt(p["peak_vertical_g"], 2),
             _fmt(p["pelvic_rotation_deg"]), _fmt(p["pelvic_drop_deg"]), _fmt(p["pelvic_tilt_deg"]), p["cues"]]
            for p in prev]
    rows.append(["this session", _fmt(data["duration_s"] / 60, 0), _fmt(m["cadence_spm"]), _fmt(m["peak_vertical_g"], 2),
                 _fmt(m["pelvic_rotation_deg"]), _fmt(m["pelvic_drop_deg"]), _fmt(m["pelvic_tilt_deg"]), len(data["cues"])])
    return _table(["date", "min", "cadence (spm)", "peak vertical (g)", "rotation (deg)", "drop (deg)", "tilt (deg)",
                   "cues"], rows, "previous-table")


def _bokeh_timeline(data: dict):
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, HoverTool, Label, Legend, Span
    from bokeh.plotting import figure

    panels, x_range = {}, None
    for col, label, panel in SERIES:
        if panel not in panels:
            fig = figure(height=230, sizing_mode="stretch_width", x_axis_label="minutes",
                         tools="xpan,xwheel_zoom,box_zoom,reset,save", name=f"panel_{panel}",
                         **({"x_range": x_range} if x_range else {}))  # the panels pan and zoom together
            x_range = x_range or fig.x_range
            fig.add_layout(Legend(), "right")
            panels[panel] = fig
        fig = panels[panel]
        s = data["series"][col]
        src = ColumnDataSource({"t_min": s["t_min"], "value": s["value"], "trend": s["trend"]}, name=f"series_{col}")
        dots = fig.scatter("t_min", "value", source=src, size=2, alpha=0.25, color=COLOURS[col],
                           legend_label=s["label"], name=f"dots_{col}")
        fig.line("t_min", "trend", source=src, color=COLOURS[col], line_width=2, legend_label=s["label"],
                 name=f"trend_{col}")
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("min", "@t_min{0.0}"), (s["label"], "@value{0.00}")]))
    cue_t = [c["t_s"] / 60 for c in data["cues"] if c["t_s"] is not None]
    for panel, fig in panels.items():
        for state, label in FATIGUE_MARKS:  # each state its own line, named on the chart
            t_s = data["fatigue"][f"{state}_s"]
            if t_s is not None:
                fig.add_layout(Span(location=t_s / 60, dimension="height", line_color=COLOURS[state], line_width=2,
                                    line_dash=_MARK_DASH[state], name=f"fatigue_{state}_{panel}"))
                fig.add_layout(Label(x=t_s / 60, y=4, y_units="screen", x_offset=3, text=label, text_font_size="9pt",
                                     text_color=COLOURS[state], name=f"fatigue_{state}_label_{panel}"))
        # cue marks sit on the panel's lower edge
        src = ColumnDataSource({"t_min": cue_t, "y": [_panel_floor(data, panel)] * len(cue_t)}, name=f"cues_{panel}")
        fig.scatter("t_min", "y", source=src, marker="inverted_triangle", size=10, color=COLOURS["cue"],
                    name=f"cue_marks_{panel}")
        fig.legend.click_policy = "hide"
    return column(*panels.values(), sizing_mode="stretch_width", name="timeline")


def _panel_floor(data: dict, panel: str) -> float:
    vals = [v for col, _, p in SERIES if p == panel for v in data["series"][col]["value"]]
    return float(np.percentile(vals, 1)) if vals else 0.0


def _bokeh_sides(data: dict):
    from bokeh.layouts import row
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    figs = []
    for col, label, scale in (("step_time_s", "step time (ms)", 1000), ("peak_vertical_g", "peak vertical (g)", 1),
                              ("contact_ms", "contact (ms)", 1)):
        allv = np.array(data["sides"]["left"][col] + data["sides"]["right"][col]) * scale
        fig = figure(height=220, width=340, x_axis_label=label, y_axis_label="steps", tools="save", name=f"hist_{col}")
        if len(allv):
            edges = np.histogram_bin_edges(allv, bins=30)
            for side in ("left", "right"):
                counts, _ = np.histogram(np.array(data["sides"][side][col]) * scale, bins=edges)
                src = ColumnDataSource({"left": edges[:-1], "right": edges[1:], "count": counts},
                                       name=f"hist_{col}_{side}")
                fig.quad(left="left", right="right", bottom=0, top="count", source=src, alpha=0.45,
                         color=COLOURS[side], legend_label=side, name=f"bars_{col}_{side}")
        else:  # a session too short for any running step: say so rather than draw an empty frame
            fig.text(x=[0], y=[0], text=["no running steps"], text_align="center", text_baseline="middle")
        figs.append(fig)
    return row(*figs, name="sides")


# --- PNG -----------------------------------------------------------------------------------------

def render_png(data: dict, path: str | os.PathLike) -> None:
    """The main figure (the timeline) as an image."""
    fig = png_figure(data)
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # whatever the file's name (or its temporary one) ends in
    plt.close(fig)


def png_figure(data: dict) -> matplotlib.figure.Figure:
    """The timeline as a matplotlib figure: the HTML's series, marks and colours (``COLOURS``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(p for _, _, p in SERIES))
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.6 * len(panels)), sharex=True)
    # (a cue the clip sent before it said its rate has no time)
    cue_t = [c["t_s"] / 60 for c in data["cues"] if c["t_s"] is not None]
    for ax, panel in zip(axes, panels):
        for col, label, _ in (c for c in SERIES if c[2] == panel):
            s = data["series"][col]
            ax.plot(s["t_min"], s["value"], ".", ms=1.5, alpha=0.25, color=COLOURS[col])
            ax.plot(s["t_min"], s["trend"], "-", lw=1.5, color=COLOURS[col], label=label)
        for state, label in FATIGUE_MARKS:
            t_s = data["fatigue"][f"{state}_s"]
            if t_s is not None:
                ax.axvline(t_s / 60, color=COLOURS[state], lw=1.5, ls=_MARK_DASH[state], label=label)
        if cue_t:
            ax.plot(cue_t, [_panel_floor(data, panel)] * len(cue_t), "v", ms=7, color=COLOURS["cue"], label="cues")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes")
    axes[0].set_title(f"{data['athlete'] or 'Session'}: {_when(data)}", parse_math=False)  # a name is not TeX
    return fig


def write_report(log_path: str | os.PathLike, out_html: str | os.PathLike | OutputFile, *,
                 png: str | os.PathLike | OutputFile | None = None, distance_km: float | None = None,
                 history_db: str | os.PathLike | None | bool = None, cue_settings: dict | None = None,
                 progress: Callable[[int, int], None] | None = None, warn: Callable[[str], None] = print,
                 force: bool = False) -> dict:
    """Analyse the log and write the report (and the PNG). ``history_db``: the history to compare
    with and to take the distance from (a path, None for the default one, False for none).
    ``out_html`` and ``png`` (paths or OutputFiles) are checked before the log is read, and
    appear only when whole (strideclip.stream.outputs); ``force`` replaces what is there."""
    outputs = [as_output(out_html, force=force)] + ([as_output(png, option="--png", force=force)] if png else [])
    needs_extra("bokeh", "reports")  # before the log is read, as the outputs
    if png:
        needs_extra("matplotlib", "reports")
    summary, table = analyse(log_path, cue_settings=cue_settings, progress=progress)
    previous = []
    if history_db is not False:
        previous, known_km = _from_history(history_db, log_path, summary, warn)
        distance_km = distance_km or known_km
    data = report_data(summary, table, distance_km=distance_km, previous=previous)
    with writing(*outputs) as parts:
        parts[0].write_text(render_html(data), encoding="utf-8")
        if png:
            render_png(data, parts[1])
    data["summary"] = summary
    return data


def report_path(log_path: str | os.PathLike) -> Path:
    """Where a live session's report goes: beside its log, the same name with ``.html``."""
    return Path(log_path).with_suffix(".html")


def write_session_reports(log_paths: Iterable[str | os.PathLike], *, warn: Callable[[str], None] = print) -> list[Path]:
    """A report beside each log (``report_path``) as a live session ends (``live``, ``dashboard``),
    without the history; returns the reports there. One already there is kept; one that fails is
    said (``warn``) and skipped: the log is what counts. Ctrl-C (KeyboardInterrupt) goes through,
    leaving the report being written unmade (strideclip.stream.outputs)."""
    done = []
    for log in map(Path, log_paths):
        out = report_path(log)
        if not out.exists():
            try:
                write_report(log, out, history_db=False)
            except Exception as e:  # noqa: BLE001 - a report is a bonus: never lose the session over it
                warn(f"{log.name}: no report ({e})")
                continue
        done.append(out)
    return done


def _from_history(db, log_path, summary: dict, warn) -> tuple[list, float | None]:
    """The athlete's sessions before this one (the latest 8), and this session's distance if the
    history knows it."""
    from strideclip.errors import HistoryError
    from strideclip.session.replay import session_start
    from strideclip.store.history import History
    from strideclip.store.history_db import default_path

    if db is None and not default_path().exists():
        return [], None  # no history kept yet: do not start one just to read it
    try:
        with History(db) as h:
            known = h.session_for_log(log_path)
            athlete = (known and known["athlete"]) or summary["athlete"] or summary["clip"]
            start, _ = session_start(summary)
            previous = [{k: v for k, v in r.items() if k not in ("summary_json", "log_path")}
                        for r in h.sessions(athlete, before=start.isoformat(timespec="seconds"))[-8:]]
            km = known["distance_m"] / 1000 if known and known["distance_m"] else None
    except HistoryError as e:
        warn(f"history not used: {e}")
        return [], None
    return previous, km
