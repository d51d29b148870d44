"""The dashboard's page: the Bokeh app, one document per browser page (tiles, cue buttons, the
laptop's metronome click, charts of the last minutes, the session view), refreshed from the state
(strideclip.views.dashboard.state). Its style and its click are files beside it: dashboard.css,
click.js."""
from __future__ import annotations

import asyncio
import html
import logging
import time
from importlib import resources
from typing import TYPE_CHECKING

from strideclip.views.dashboard.markup import header_html, session_html, tile_html, tiles_html
from strideclip.views.dashboard.state import Dashboard, axis_span, beat_data

if TYPE_CHECKING:
    from bokeh.application import Application

log = logging.getLogger(__name__)

TILE_MS = 100  # tiles refresh: a packet reaches the screen within ~0.3 s (bench/bench_dashboard.py)
TILE_RESEND_S = 10.0  # a tiles update the page has not said it drew (a lost answer): send the next one anyway after this
# The page's side of the tiles: the header and each tile are a part of one list (a data source the
# server patches); the page rewrites only the parts that changed, in the Div Bokeh drew once. Setting
# the Div's text instead makes Bokeh rebuild it and lay out the whole page (charts included) on every
# update: 14 ms a time at 16 athletes, ten times a second. Then, a frame after drawing, the page says
# which version it drew (the header's data-tiles-version; Bokeh sends the change back).
TILES_JS = """
let el = src._tiles_el;  // <div class=header>, <div class=tiles>: a tile each (found once: a search walks every view)
if (el == null || !el.isConnected) {
  const view = Bokeh.index.find_one(tiles);
  el = src._tiles_el = view == null ? null : view.markup_el;
}
if (el == null || el.children.length < 2) return;  // not drawn yet: document_ready comes after
const html = src.data.html;
const shown = el._shown || (el._shown = html.map(() => null));  // a new element shows none of them yet
for (let i = 0; i < html.length; i++) {
  if (shown[i] === html[i]) continue;
  const part = i == 0 ? el.children[0] : el.children[1].children[i - 1];
  if (part) { part.outerHTML = html[i]; shown[i] = html[i]; }
}
const m = /data-tiles-version="(\\d+)"/.exec(html[0]);
if (m) requestAnimationFrame(() => { drawn.data = {version: [Number(m[1])]}; });
"""
CHART_MS = 1000  # charts and the session view
KEY_PER_ROW = 8  # athletes per row of the charts' key
KEY_JS = "for (const name of names) { const r = cb_obj.document.get_model_by_name(name); if (r) r.visible = cb_obj.visible; }"
CHART_TITLES = {"cadence_spm": "cadence (steps/min), target band shaded", "impact_g": "peak vertical (g)",
                "rotation_deg": "pelvic rotation (deg)"}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
DASHES = ("solid", "dashed", "dotted")  # after every len(COLOURS) athletes
CSS = resources.files(__package__).joinpath("dashboard.css").read_text(encoding="utf-8")
CLICK_JS = resources.files(__package__).joinpath("click.js").read_text(encoding="utf-8")


def make_app(dash: Dashboard) -> Application:
    """The Bokeh application: one document per browser page."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler

    def build(doc) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import Button, ColumnDataSource, CustomJS, Div, Select, TabPanel, Tabs

        n = len(dash.clips)
        # One Div for the header and every tile, drawn by Bokeh once; the page then rewrites the parts
        # that change (TILES_JS). (A Div per athlete costs the browser a layout pass each.)
        athletes = [dash.athlete(i) for i in range(n)]
        parts = _tile_parts(dash, athletes, version=0)
        tiles = Div(text=parts[0] + tiles_html(dash, athletes), stylesheets=[CSS], sizing_mode="stretch_width",
                    name="tiles")
        shown = ColumnDataSource({"html": list(parts)}, name="tiles_html")
        # Flow control: the page says when it has drawn a tiles update (the frame after it), and the
        # server sends the next only then. Without it a page that draws slower than TILE_MS (a busy
        # laptop, many athletes) falls ever further behind on updates queued in its socket.
        drawn = ColumnDataSource({"version": [0]}, name="tiles_drawn")
        draw = CustomJS(args={"src": shown, "tiles": tiles, "drawn": drawn}, code=TILES_JS)
        shown.js_on_change("patching", draw)
        doc.js_on_event("document_ready", draw)  # (the page's first tiles came with the document)
        who = Select(title="", value=dash.clips[0].name, options=[c.name for c in dash.clips], width=180,
                     name="cue_athlete")
        sent = Div(text="", name="cue_feedback")
        buttons = []
        for kind, label in (("metronome", "Metronome"), ("buzz", "Buzz"), ("stop", "Stop")):
            b = Button(label=label, width=110, name=f"cue_{kind}")
            b.on_click(_cue_callback(doc, dash, who, kind, sent))
            buttons.append(b)
        # the laptop plays the metronome of one athlete (the coach's choice; off by default)
        listen = Select(title="", value="off", options=["off", *(c.name for c in dash.clips)], width=150,
                        name="listen")
        beat = ColumnDataSource(beat_data(dash), name="metronome")
        click = CustomJS(args={"beat": beat, "listen": listen}, code=CLICK_JS)
        beat.js_on_change("data", click)
        listen.js_on_change("value", click)
        listen.on_change("value", lambda _attr, _old, _new: setattr(beat, "data", beat_data(dash)))  # its time left now
        controls = row(Div(text="<b>Cue</b>", width=40), who, *buttons, sent,
                       Div(text="<b>Listen</b>", width=50), listen)
        # the charts start with the server's last minutes (state.ChartHistory), then stream what follows
        figs, key, sources = _charts(dash)
        seen = [dash.history[i].added for i in range(n)]
        session = Div(text=session_html(dash.session_view()), stylesheets=[CSS], name="session_view")
        live = column(tiles, controls, key, *figs.values(), sizing_mode="stretch_width")
        tabs = Tabs(tabs=[TabPanel(child=live, title="Live"), TabPanel(child=session, title="Session")],
                    sizing_mode="stretch_width", name="tabs")
        doc.add_root(tabs)
        doc.add_root(shown)  # (in no layout: a root of its own, or the page would not have it)
        doc.title = "StrideClip dashboard"
        shown_end = {"done": False}

        playing = {"now": _metronomes(beat.data)}

        # the newest tiles update sent to this page; the tiles version sent just before the newest charts update
        flow = {"version": 0, "sent_at_s": 0.0, "parts": parts, "chart_version": -1, "chart_at_s": 0.0}

        def caught_up() -> bool:
            """The page drew the newest tiles update (and so took in everything sent before it),
            or has not said so for TILE_RESEND_S."""
            return drawn.data["version"][0] >= flow["version"] or time.monotonic() - flow["sent_at_s"] > TILE_RESEND_S

        def update_tiles() -> None:
            if caught_up():
                athletes = [dash.athlete(i) for i in range(n)]
                new = _tile_parts(dash, athletes, version=flow["version"])
                changed = [i for i in range(n + 1) if new[i] != flow["parts"][i]]
                if changed:  # only those go to the page, with the header (the version) always among them
                    version = flow["version"] + 1
                    new[0] = _header_part(dash, athletes, version)
                    flow.update(version=version, sent_at_s=time.monotonic(), parts=new)
                    shown.patch({"html": [(i, new[i]) for i in sorted({0, *changed})]})
            data = beat_data(dash)
            if _metronomes(data) != playing["now"]:  # a metronome started or stopped: tell the page
                playing["now"] = _metronomes(data)
                beat.data = data

        def update() -> None:
            # the charts wait until the page drew a tiles update sent after the last charts update (so
            # it took that in: a page's messages are handled in order): a page that cannot draw them
            # all gets them later, in bigger pieces; tiles in flight do not hold them back
            if drawn.data["version"][0] <= flow["chart_version"] and time.monotonic() - flow["chart_at_s"] < TILE_RESEND_S:
                return
            flow.update(chart_version=flow["version"], chart_at_s=time.monotonic())
            for i in range(n):
                new, seen[i] = dash.history[i].since(seen[i])
                if new["t_min"]:  # the page keeps what the server keeps: its last len(points)
                    sources[i].stream(new, rollover=len(dash.history[i].points))
            for name, fig in figs.items():
                lo, hi = axis_span(name, dash.history)
                if (fig.y_range.start, fig.y_range.end) != (lo, hi):
                    fig.y_range.update(start=lo, end=hi)
            if tabs.active == 1:
                show_session()
            if dash.ended and not shown_end["done"]:
                shown_end["done"] = True
                tabs.active = 1

        def show_session() -> None:
            # only while its tab is open (and on opening it): a new text makes Bokeh lay out the whole page
            text = session_html(dash.session_view())
            if text != session.text:
                session.text = text

        tabs.on_change("active", lambda _attr, _old, _new: show_session())
        doc.add_periodic_callback(update_tiles, TILE_MS)
        doc.add_periodic_callback(update, CHART_MS)

    return Application(FunctionHandler(build))


def _charts(dash: Dashboard):
    """The three charts (one time axis: they pan together), a line per athlete, and one key for
    all three, in a figure of its own that no streamed point reaches. A legend redraws every item
    (a canvas each) whenever a model its items reach changes: a legend in each chart was redrawn
    for every athlete's points every second, most of the page's time at 24 athletes. Hiding an
    athlete in the key hides their lines in every chart."""
    from bokeh.models import ColumnDataSource, CustomJS, Range1d
    from bokeh.plotting import figure

    figs, sources = {}, []
    for name, label in CHART_TITLES.items():
        shared = {"x_range": figs["cadence_spm"].x_range} if figs else {}
        figs[name] = figure(height=220, sizing_mode="stretch_width", title=label, x_axis_label="session minutes",
                            y_range=Range1d(*axis_span(name, dash.history)), tools="xpan,xwheel_zoom,reset,save",
                            name=f"chart_{name}", **shared)
    rows = -(-len(dash.clips) // KEY_PER_ROW)
    key = figure(height=24 * rows + 40, sizing_mode="stretch_width", x_range=Range1d(0, 1), y_range=Range1d(0, 1),
                 title="the charts' athletes (click a name to hide or show their lines)", toolbar_location=None,
                 outline_line_color=None, min_border=0, name="chart_key")
    key.axis.visible = key.grid.visible = False
    for i, clip in enumerate(dash.clips):
        data, _added = dash.history[i].since(0)
        src = ColumnDataSource(data, name=f"live_{i}")
        sources.append(src)
        colour, dash_style = COLOURS[i % len(COLOURS)], DASHES[i // len(COLOURS) % len(DASHES)]  # 24 athletes, 24 looks
        names = {part: f"line_{i}_{part}" for part in ("band", *figs)}
        figs["cadence_spm"].varea("t_min", "band_lo_spm", "band_hi_spm", source=src, fill_color=colour,
                                  fill_alpha=0.12, name=names["band"])
        for part, fig in figs.items():
            fig.line("t_min", part, source=src, color=colour, line_dash=dash_style, line_width=2, name=names[part])
        # its key: a line off the key's ranges (a line without points shows no colour in a legend),
        # which hides and shows the chart lines by name, not as models: a legend redraws its items on
        # any change of a model its items reach, and through these it would reach the streamed points
        shown = key.line([-2, -1], [-1, -1], color=colour, line_dash=dash_style, line_width=3, legend_label=clip.name)
        shown.js_on_change("visible", CustomJS(args={"names": list(names.values())}, code=KEY_JS))
    key.legend.update(location="top_left", orientation="horizontal", nrows=rows, click_policy="hide",
                      border_line_color=None, margin=0, padding=4)
    return figs, key, sources


def _tile_parts(dash: Dashboard, athletes: list[dict], *, version: int) -> list[str]:
    """The page's tiles as parts: the header, then a tile per athlete."""
    return [_header_part(dash, athletes, version), *map(tile_html, athletes)]


def _header_part(dash: Dashboard, athletes: list[dict], version: int) -> str:
    """The header, whose clock is the tiles' session time, with the tiles' version."""
    return f'<div class="header" data-tiles-version="{version}">{header_html(athletes, dash.ended)}</div>'


def _metronomes(data: dict) -> list:
    return list(zip(data["tempo_spm"], data["cue_t_s"]))


def _cue_callback(doc, dash: Dashboard, who, kind: str, feedback):
    def clicked() -> None:
        i = [c.name for c in dash.clips].index(who.value)

        async def send():
            try:
                cue = await dash.cue(i, kind)
            except Exception as e:  # the page says so; the server and the other athletes go on
                log.exception("cue %s to %s", kind, dash.clips[i].name)
                cue = {"played": kind, "error": f"internal error: {e}"}
            said = (f"{dash.clips[i].name}: {cue['played']} sent" if "error" not in cue
                    else f"{dash.clips[i].name}: {cue['played']} not delivered ({cue['error']})")
            doc.add_next_tick_callback(lambda: setattr(feedback, "text", html.escape(said)))

        asyncio.get_running_loop().create_task(send())

    return clicked
