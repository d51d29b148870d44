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

from strideclip.views.dashboard.markup import header_html, session_html, tiles_html
from strideclip.views.dashboard.state import Dashboard, axis_span, beat_data

if TYPE_CHECKING:
    from bokeh.application import Application

log = logging.getLogger(__name__)

TILE_MS = 100  # tiles refresh: a packet reaches the screen within ~0.3 s (bench/bench_dashboard.py)
TILE_RESEND_S = 10.0  # a tiles update the page has not said it drew (a lost answer): send the next one anyway after this
# the page's answer, a frame after it drew a tiles update: that update's version (Bokeh sends the change back)
TILES_DRAWN_JS = """
const m = /data-tiles-version="(\\d+)"/.exec(tiles.text);
if (m) requestAnimationFrame(() => { drawn.data = {version: [Number(m[1])]}; });
"""
CHART_MS = 1000  # charts and the session view
CHART_TITLES = {"cadence_spm": "cadence (steps/min), target band shaded", "impact_g": "peak vertical (g)",
                "rotation_deg": "pelvic rotation (deg)"}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
CSS = resources.files(__package__).joinpath("dashboard.css").read_text(encoding="utf-8")
CLICK_JS = resources.files(__package__).joinpath("click.js").read_text(encoding="utf-8")


def make_app(dash: Dashboard) -> Application:
    """The Bokeh application: one document per browser page."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler

    def build(doc) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import Button, ColumnDataSource, CustomJS, Div, Range1d, Select, TabPanel, Tabs
        from bokeh.plotting import figure

        n = len(dash.clips)
        # One Div for the header and every tile: one page update per refresh (a Div per athlete costs
        # the browser a layout pass each, which at 10 athletes it cannot keep up with).
        tiles = Div(text=_tiles_text(dash, [dash.athlete(i) for i in range(n)]), stylesheets=[CSS],
                    sizing_mode="stretch_width", name="tiles")
        # Flow control: the page says when it has drawn a tiles update (the frame after it), and the
        # server sends the next only then. Without it a page that draws slower than TILE_MS (a busy
        # laptop, many athletes) falls ever further behind on updates queued in its socket.
        drawn = ColumnDataSource({"version": [0]}, name="tiles_drawn")
        said_drawn = CustomJS(args={"drawn": drawn, "tiles": tiles}, code=TILES_DRAWN_JS)
        tiles.js_on_change("text", said_drawn)
        doc.js_on_event("document_ready", said_drawn)  # (the page's first tiles came with the document)
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
        figs, sources, seen = {}, [], []
        for key, label in CHART_TITLES.items():
            shared = {"x_range": figs["cadence_spm"].x_range} if figs else {}  # one time axis: they pan together
            figs[key] = figure(height=220, sizing_mode="stretch_width", title=label, x_axis_label="session minutes",
                               y_range=Range1d(*axis_span(key, dash.history)), tools="xpan,xwheel_zoom,reset,save",
                               name=f"chart_{key}", **shared)
        for i in range(n):
            data, added = dash.history[i].since(0)
            src = ColumnDataSource(data, name=f"live_{i}")
            sources.append(src)
            seen.append(added)
            colour, name = COLOURS[i % len(COLOURS)], dash.clips[i].name
            figs["cadence_spm"].varea("t_min", "band_lo_spm", "band_hi_spm", source=src, fill_color=colour,
                                      fill_alpha=0.12, legend_label=name)
            for key, fig in figs.items():
                fig.line("t_min", key, source=src, color=colour, line_width=2, legend_label=name)
        for fig in figs.values():
            fig.legend.location = "top_left"
            fig.legend.click_policy = "hide"
        session = Div(text=session_html(dash.session_view()), stylesheets=[CSS], name="session_view")
        live = column(tiles, controls, *figs.values(), sizing_mode="stretch_width")
        tabs = Tabs(tabs=[TabPanel(child=live, title="Live"), TabPanel(child=session, title="Session")],
                    sizing_mode="stretch_width", name="tabs")
        doc.add_root(tabs)
        doc.title = "StrideClip dashboard"
        shown_end = {"done": False}

        playing = {"now": _metronomes(beat.data)}

        # the newest tiles update sent to this page; the tiles version sent just before the newest charts update
        flow = {"version": 0, "sent_at_s": 0.0, "text": "", "chart_version": -1, "chart_at_s": 0.0}

        def caught_up() -> bool:
            """The page drew the newest tiles update (and so took in everything sent before it),
            or has not said so for TILE_RESEND_S."""
            return drawn.data["version"][0] >= flow["version"] or time.monotonic() - flow["sent_at_s"] > TILE_RESEND_S

        def update_tiles() -> None:
            if caught_up():
                text = _tiles_text(dash, [dash.athlete(i) for i in range(n)])
                if text != flow["text"]:
                    flow.update(version=flow["version"] + 1, sent_at_s=time.monotonic(), text=text)
                    tiles.text = f'<div hidden data-tiles-version="{flow["version"]}"></div>{text}'
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
            for key, fig in figs.items():
                lo, hi = axis_span(key, dash.history)
                if (fig.y_range.start, fig.y_range.end) != (lo, hi):
                    fig.y_range.update(start=lo, end=hi)
            session.text = session_html(dash.session_view())
            if dash.ended and not shown_end["done"]:
                shown_end["done"] = True
                tabs.active = 1

        doc.add_periodic_callback(update_tiles, TILE_MS)
        doc.add_periodic_callback(update, CHART_MS)

    return Application(FunctionHandler(build))


def _tiles_text(dash: Dashboard, athletes: list[dict]) -> str:
    """The header, whose clock is the tiles' session time, and the tiles, of the same values."""
    return f'<div class="header">{header_html(athletes, dash.ended)}</div>' + tiles_html(dash, athletes)


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
