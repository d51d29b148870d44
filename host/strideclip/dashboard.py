"""The coach's live dashboard: every athlete at a glance in the browser, with no internet.

A Bokeh server (its JavaScript served by the package, no CDN) in the same event loop as the live
sessions (strideclip.session.live): the clips - BLE, USB or simulated - go through the usual recorder and
pipeline, and every browser page shows their state within a fraction of a second. Per athlete a tile (cadence
against its target band, impact, pelvic rotation / drop / tilt, fatigue state, time running,
link loss, latency, battery, RSSI, the cue log and buttons to cue), charts of the last minutes,
and a session view with each athlete's summary and report.

Safe by default: it listens on 127.0.0.1 and answers only to this machine's own names. Serving
to the LAN needs ``lan=True``: then every route is under the access token printed in the terminal
(``http://laptop:8050/<token>/``), and a request without it gets 403. In both modes one gate
(strideclip.webgate) refuses foreign Host names and requests other pages make; docs/security.md.
"""
from __future__ import annotations

import asyncio
import html
import json
import logging
import secrets
import socket
import time
from pathlib import Path

import numpy as np

from strideclip.session.live import LiveClip

log = logging.getLogger(__name__)

TILE_MS = 100  # tiles refresh: a packet reaches the screen within ~0.3 s (bench/bench_dashboard.py)
CHART_MS = 1000  # charts and the session view
CHART_MINUTES = 5.0  # the charts show the last minutes
TARGET_BAND_PCT = 3.0  # the cadence zone around the target (the cue outcome's zone, docs/cues.md)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")


class Dashboard:
    """The state every page shows, and the cue a page asks for, for a set of live clips."""

    def __init__(self, clips: list[LiveClip], *, out_dir: Path):
        self.clips = clips
        self.out_dir = Path(out_dir)
        self.started_s = time.monotonic()
        self.ended = False  # every link has ended: the page shows the session view first

    def athlete(self, i: int) -> dict:
        """One athlete's tile, as plain values (None where nothing is known yet)."""
        c = self.clips[i]
        v = c.values()
        s = c.session
        target = self._target_spm(c)
        stats = s.decoder.stats
        return {
            "name": c.name, "clip": c.source.address if c.source.kind != "simulator" else "simulated clip",
            "cadence_spm": v["cadence_spm"], "target_spm": target,
            "in_band": (None if v["cadence_spm"] is None or target is None
                        else abs(v["cadence_spm"] / target - 1) * 100 <= TARGET_BAND_PCT),
            "impact_g": v["impact_g"], "vgrf_bw": v["vgrf_bw"], "rotation_deg": v["rotation_deg"],
            "drop_deg": v["drop_deg"], "tilt_deg": v["tilt_deg"],
            "fatigue": v["fatigue"], "fatigue_index": v["fatigue_index"], "running_s": round(s.duration_s, 1),
            "steps": v["steps"], "connected": v["connected"], "loss_pct": round(stats.loss_pct, 2),
            "latency_ms": _first(v["rtt_ms"], v["delay_ms_p95"] if (v["delay_ms_p95"] or 0) >= 0 else None), "battery_pct": v["battery_pct"],
            "rssi_dbm": v["rssi_dbm"], "error": v["error"], "takes_cues": c.takes_commands,
            "cues": [_cue_line(q) for q in s.cues[-8:]], "last_packet_wall_s": c.last_packet_wall_s,
            "metronome": s.metronome_now(),
        }

    def _target_spm(self, c: LiveClip) -> float | None:
        from clipcore import cues as cue_policy

        target = c.cue_settings.get(cue_policy.K_TARGET_SPM)
        if target:
            return float(target)
        base = c.session.fatigue.baseline
        return round(base["cadence"], 1) if base and np.isfinite(base["cadence"]) else None

    def state(self) -> dict:
        return {"athletes": [self.athlete(i) for i in range(len(self.clips))], "ended": self.ended,
                "session": self.session_view()}

    def session_view(self) -> list[dict]:
        """Per athlete: the session summary so far (the whole session once it ended), its log and
        its report if one was written."""
        out = []
        for c in self.clips:
            s = c.session
            m = s.metric_summary()
            report = self.out_dir / (c.log_path.stem + ".html")
            out.append({"name": c.name, "log": str(c.log_path), "duration_s": round(s.duration_s, 1),
                        "steps": len(s.steps), "running_steps": m.get("running_steps", 0),
                        "cadence_spm": m.get("cadence_spm_median"), "impact_g": m.get("peak_vertical_g_median"),
                        "rotation_deg": m.get("pelvic_rotation_deg_median"), "drop_deg": m.get("pelvic_drop_deg_median"),
                        "tilt_deg": m.get("pelvic_tilt_deg_median"), "cues": len(s.cues),
                        "fatigue_onset_s": next((f["t_s"] for f in s.fatigue_changes if f["state"] == "fatigued"), None),
                        "report": report.name if report.exists() else None})
        return out

    async def cue(self, i: int, kind: str) -> dict:
        return await self.clips[i].coach_cue(kind)

    def files(self) -> dict[str, Path]:
        """What /files/ serves: the session's logs and the reports written for them, nothing else."""
        out = {}
        for c in self.clips:
            for path in (c.log_path, self.out_dir / (c.log_path.stem + ".html")):
                if path.is_file():
                    out[path.name] = path
        return out


def _first(*values):
    return next((v for v in values if v is not None), None)


def _cue_line(q: dict) -> str:
    t = q.get("t_s")
    when = f"{int(t // 60)}:{int(t % 60):02d}" if t is not None else "-"
    tempo = f" {q['tempo_spm']} spm" if q.get("tempo_spm") else ""
    return f"{when} {q['played']}{tempo} ({q['reason']}, {q['source']})"


def _fmt(v, nd: int = 1, unit: str = "") -> str:
    return "–" if v is None else f"{v:.{nd}f}{unit}"


def tile_html(a: dict) -> str:
    """An athlete's tile. Values carry data-* attributes (the numbers behind the text)."""
    def val(key, v, nd, unit=""):
        return (f'<span class="v {key}" data-key="{key}" data-value="{"" if v is None else v}">'
                f"{_fmt(v, nd)}</span>{unit}")

    band = ""
    if a["target_spm"]:
        lo, hi = a["target_spm"] * (1 - TARGET_BAND_PCT / 100), a["target_spm"] * (1 + TARGET_BAND_PCT / 100)
        band = f'<span class="band">target {lo:.0f}–{hi:.0f}</span>'
    colour = {None: "#555", True: "#1e8449", False: "#b9770e"}[a["in_band"]]
    fatigue_colour = {"fatigued": "#c0392b", "watch": "#b9770e"}.get(a["fatigue"], "#1e8449")
    link = "connected" if a["connected"] else ("ended" if not a["error"] else "failed")
    mins = int(a["running_s"] // 60)
    return (
        f'<div class="tile" data-athlete="{html.escape(a["name"])}" data-received="{a["last_packet_wall_s"] or ""}">'
        f'<div class="name">{html.escape(a["name"])} <small>{html.escape(a["clip"])}</small></div>'
        f'<div class="cad" style="color:{colour}">{val("cadence_spm", a["cadence_spm"], 0)} <small>spm</small> {band}</div>'
        f'<table><tr><td>impact</td><td>{val("impact_g", a["impact_g"], 2, " g")}</td>'
        f'<td>vGRF</td><td>{val("vgrf_bw", a["vgrf_bw"], 2, " BW")}</td></tr>'
        f'<tr><td>rotation</td><td>{val("rotation_deg", a["rotation_deg"], 1, "°")}</td>'
        f'<td>drop / tilt</td><td>{val("drop_deg", a["drop_deg"], 1, "°")} / {val("tilt_deg", a["tilt_deg"], 1, "°")}</td></tr>'
        f'<tr><td>fatigue</td><td style="color:{fatigue_colour}" class="fatigue">{html.escape(a["fatigue"] or "–")}</td>'
        f'<td>time</td><td class="time">{mins}:{int(a["running_s"] % 60):02d}</td></tr>'
        f'<tr><td>link</td><td>{link}, {val("loss_pct", a["loss_pct"], 1, " % lost")}</td>'
        f'<td>latency</td><td>{val("latency_ms", a["latency_ms"], 0, " ms")}</td></tr>'
        f'<tr><td>battery</td><td>{val("battery_pct", a["battery_pct"], 0, " %")}</td>'
        f'<td>RSSI</td><td>{val("rssi_dbm", a["rssi_dbm"], 0, " dBm")}</td></tr></table>'
        + (f'<div class="error">{html.escape(a["error"])}</div>' if a["error"] else "")
        + (f'<div class="playing" data-tempo="{m["tempo_spm"]}">metronome {m["tempo_spm"]} spm, '
           + ("until stopped" if m["remaining_s"] is None else f'{m["remaining_s"]:.0f} s left') + "</div>"
           if (m := a["metronome"]) else "")
        + '<div class="cuelog"><b>cues</b><br>' + ("<br>".join(html.escape(q) for q in a["cues"]) or "none yet")
        + "</div></div>")


def tiles_html(dash: Dashboard) -> str:
    return '<div class="tiles">' + "".join(tile_html(dash.athlete(i)) for i in range(len(dash.clips))) + "</div>"


def session_html(rows: list[dict]) -> str:
    head = ("<tr><th>athlete</th><th>min</th><th>steps</th><th>cadence</th><th>impact g</th><th>rotation°</th>"
            "<th>drop°</th><th>tilt°</th><th>cues</th><th>fatigue at</th><th>report</th></tr>")
    body = "".join(
        f'<tr data-athlete="{html.escape(r["name"])}"><td>{html.escape(r["name"])}</td><td>{r["duration_s"] / 60:.1f}</td>'
        f'<td>{r["steps"]}</td><td>{_fmt(r["cadence_spm"])}</td><td>{_fmt(r["impact_g"], 2)}</td>'
        f'<td>{_fmt(r["rotation_deg"])}</td><td>{_fmt(r["drop_deg"])}</td><td>{_fmt(r["tilt_deg"])}</td>'
        f'<td>{r["cues"]}</td><td>{_fmt(r["fatigue_onset_s"] / 60 if r["fatigue_onset_s"] else None)} min</td>'
        f'<td>{_report_link(r)}</td></tr>' for r in rows)
    return (f'<table class="session">{head}{body}</table><p class="note">Logs are in the output folder; '
            "a report is written for each athlete when the run ends (strideclip report LOG makes one any time).</p>")


def _report_link(r: dict) -> str:
    if not r["report"]:
        return "–"
    return f'<a href="files/{html.escape(r["report"])}" target="_blank">{html.escape(r["report"])}</a>'


CSS = """
:host { width: 100%; } .bk-clearfix { width: 100%; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; width: 100%; }
.tile { font-family: system-ui, sans-serif; border: 1px solid #ccc; border-radius: 8px; padding: 8px 12px; width: 360px; }
.tile .name { font-size: 18px; font-weight: 600; } .tile small { color: #777; font-weight: 400; }
.tile .cad { font-size: 34px; font-weight: 700; } .tile .band { font-size: 13px; color: #555; font-weight: 400; }
.tile table { font-size: 13px; border-collapse: collapse; } .tile td { padding: 1px 6px 1px 0; }
.tile .cuelog { font-size: 12px; color: #333; margin-top: 4px; max-height: 90px; overflow: hidden; }
.tile .playing { font-size: 12px; color: #1a5276; font-weight: 600; margin-top: 4px; }
.tile .error { color: #c0392b; font-size: 12px; }
table.session { font-family: system-ui, sans-serif; border-collapse: collapse; }
table.session td, table.session th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
"""


# The laptop's click: the metronome of the athlete the coach listens to, played by the browser.
# Clicks are scheduled on the audio clock a little ahead (Web Audio; the "two clocks" pattern of
# C. Wilson, "A Tale of Two Clocks", 2013): timers alone jitter by tens of ms. The page is sent a
# metronome only when one starts or stops; the browser counts down its remaining time itself.
CLICK_JS = """
const M = window.strideclipMetronome || (window.strideclipMetronome =
    {ctx: null, who: "off", cue: null, tempo: 0, next: 0, end: 0, timer: null, clicks: []});
const who = listen.value;
if (who !== "off") {
    if (!M.ctx) M.ctx = new AudioContext();  // the choice in the page is the gesture browsers want
    if (M.ctx.state === "suspended") M.ctx.resume();
}
const d = beat.data, k = d.athlete.indexOf(who);
if (!M.ctx || k < 0 || d.tempo_spm[k] <= 0) {
    M.who = who; M.cue = null; M.tempo = 0;
    return;
}
const now = M.ctx.currentTime;
if (M.who !== who || M.cue !== d.cue_t_s[k]) {  // another metronome, or another athlete's: from now
    M.who = who; M.cue = d.cue_t_s[k]; M.next = now + 0.05;
}
M.tempo = d.tempo_spm[k];
M.end = now + d.remaining_s[k];
if (!M.timer) M.timer = setInterval(() => {
    const late = M.ctx.currentTime - M.next;  // a throttled or busy page: skip the beats gone by
    if (M.tempo > 0 && late > 0) M.next += Math.ceil(late * M.tempo / 60) * 60 / M.tempo;
    while (M.tempo > 0 && M.next < M.end && M.next < M.ctx.currentTime + 0.1) {
        const t = M.next, osc = M.ctx.createOscillator(), gain = M.ctx.createGain();
        osc.frequency.value = 1500;
        gain.gain.setValueAtTime(0.6, t);
        gain.gain.exponentialRampToValueAtTime(0.001, t + 0.03);
        osc.connect(gain);
        gain.connect(M.ctx.destination);
        osc.start(t);
        osc.stop(t + 0.04);
        M.clicks.push({who: M.who, tempo: M.tempo, t: t});
        if (M.clicks.length > 500) M.clicks.shift();
        M.next += 60 / M.tempo;
    }
}, 25);
"""


UNTIL_STOPPED_S = 24 * 3600.0  # a metronome without an end plays in the page until its stop comes


def beat_data(dash: Dashboard) -> dict:
    """Every athlete's metronome now, for the page's click (0 where none plays)."""
    out = {"athlete": [], "tempo_spm": [], "remaining_s": [], "cue_t_s": []}
    for c in dash.clips:
        m = c.session.metronome_now() or {"tempo_spm": 0, "remaining_s": 0.0, "cue_t_s": -1.0}
        out["athlete"].append(c.name)
        out["tempo_spm"].append(m["tempo_spm"])
        out["remaining_s"].append(UNTIL_STOPPED_S if m["remaining_s"] is None else m["remaining_s"])
        out["cue_t_s"].append(m["cue_t_s"])
    return out


def make_app(dash: Dashboard):
    """The Bokeh application: one document per browser page."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler

    def build(doc) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import Button, ColumnDataSource, CustomJS, Div, Select, TabPanel, Tabs
        from bokeh.plotting import figure

        n = len(dash.clips)
        header = Div(text="", sizing_mode="stretch_width")
        # One Div for every tile: one page update per refresh (a Div per athlete costs the browser
        # a layout pass each, which at 10 athletes it cannot keep up with).
        tiles = Div(text=tiles_html(dash), stylesheets=[CSS], sizing_mode="stretch_width", name="tiles")
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
        figs, sources = {}, []
        for key, label in (("cadence_spm", "cadence (steps/min)"), ("impact_g", "peak vertical (g)"),
                           ("rotation_deg", "pelvic rotation (deg)")):
            figs[key] = figure(height=220, sizing_mode="stretch_width", title=label, x_axis_label="minutes",
                               tools="xpan,xwheel_zoom,reset,save", name=f"chart_{key}")
        for i in range(n):
            src = ColumnDataSource({"t_min": [], "cadence_spm": [], "impact_g": [], "rotation_deg": []}, name=f"live_{i}")
            sources.append(src)
            for key, fig in figs.items():
                fig.line("t_min", key, source=src, color=COLOURS[i % len(COLOURS)], line_width=2,
                         legend_label=dash.clips[i].name)
        for fig in figs.values():
            fig.legend.location = "top_left"
            fig.legend.click_policy = "hide"
        session = Div(text=session_html(dash.session_view()), stylesheets=[CSS], name="session_view")
        live = column(header, tiles, controls, *figs.values(), sizing_mode="stretch_width")
        tabs = Tabs(tabs=[TabPanel(child=live, title="Live"), TabPanel(child=session, title="Session")],
                    sizing_mode="stretch_width", name="tabs")
        doc.add_root(tabs)
        doc.title = "StrideClip dashboard"
        rollover = int(CHART_MINUTES * 60 * 1000 / CHART_MS)
        shown_end = {"done": False}

        playing = {"now": _metronomes(beat.data)}

        def update_tiles() -> None:
            tiles.text = tiles_html(dash)
            data = beat_data(dash)
            if _metronomes(data) != playing["now"]:  # a metronome started or stopped: tell the page
                playing["now"] = _metronomes(data)
                beat.data = data

        def update() -> None:
            now = time.monotonic() - dash.started_s
            header.text = (f'<b>StrideClip</b> · {n} athlete(s) · {int(now // 60)}:{int(now % 60):02d}'
                           + (" · the run has ended: see Session" if dash.ended else ""))
            for i in range(n):
                a = dash.athlete(i)
                if a["connected"] or not a["steps"]:
                    sources[i].stream({"t_min": [a["running_s"] / 60], "cadence_spm": [_nan(a["cadence_spm"])],
                                       "impact_g": [_nan(a["impact_g"])], "rotation_deg": [_nan(a["rotation_deg"])]},
                                      rollover=rollover)
            session.text = session_html(dash.session_view())
            if dash.ended and not shown_end["done"]:
                shown_end["done"] = True
                tabs.active = 1

        doc.add_periodic_callback(update_tiles, TILE_MS)
        doc.add_periodic_callback(update, CHART_MS)

    return Application(FunctionHandler(build))


def _metronomes(data: dict) -> list:
    return list(zip(data["tempo_spm"], data["cue_t_s"]))


def _nan(v):
    return float("nan") if v is None else v


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


def extra_handlers(dash: Dashboard):
    """/api/state (JSON of every tile and the session view) and /files/NAME (the session's logs
    and reports); the gate in front has checked who asks."""
    from tornado.web import HTTPError, RequestHandler

    class State(RequestHandler):
        def get(self):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(dash.state(), default=_json_default))

    class Files(RequestHandler):
        def get(self, name: str):
            path = dash.files().get(name)
            if path is None:
                raise HTTPError(404)
            self.set_header("Content-Type", "text/html; charset=utf-8" if path.suffix == ".html"
                            else "application/octet-stream")
            self.set_header("X-Content-Type-Options", "nosniff")
            if path.suffix != ".html":
                self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
            with open(path, "rb") as f:
                while chunk := f.read(1 << 16):
                    self.write(chunk)
            self.finish()

    return [(r"/api/state", State), (r"/files/([^/]+)", Files)]


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(type(v))


def new_token() -> str:
    return secrets.token_urlsafe(18)


async def serve(clips: list[LiveClip], *, out_dir: Path, host: str, port: int, lan: bool, seconds: float | None,
                echo=print, reports: bool = True, allow_hosts=()) -> Dashboard:
    """Run the clips and the page until ``seconds`` pass (or Ctrl-C); the page stays up with the
    session view after every link has ended, until the time is up. ``allow_hosts``: names the
    browsers use for this machine beyond those it knows (strideclip.webgate)."""
    from bokeh.server.server import BaseServer
    from bokeh.server.tornado import BokehTornado
    from bokeh.server.util import bind_sockets
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop

    from strideclip.session.live import run_clips
    from strideclip.webgate import LOCAL_NAMES, Gate, gated, lan_names

    dash = Dashboard(clips, out_dir=out_dir)
    sockets, actual_port = bind_sockets(host, port)
    names = lan_names(host, allow_hosts) if lan else [*LOCAL_NAMES, host, *allow_hosts]
    gate = Gate(names=names, port=actual_port, token=new_token() if lan else None)
    # Bokeh's session token carries the request's headers, cookies and arguments to the page:
    # none of them (the page needs none); sessions signed, so no one forges a websocket's.
    app = BokehTornado({"/": make_app(dash)}, prefix=gate.prefix, extra_websocket_origins=gate.origins(),
                       extra_patterns=extra_handlers(dash), secret_key=secrets.token_bytes(32), sign_sessions=True,
                       include_headers=[], include_cookies=[], log_function=gate.log_request,
                       check_unused_sessions_milliseconds=5000, unused_session_lifetime_milliseconds=15000)
    http = HTTPServer(gated(gate, app))
    http.add_sockets(sockets)
    server = BaseServer(IOLoop.current(), app, http)
    server.start()
    shown = host if host not in ("0.0.0.0", "::", "") else next(
        (n for n in names if n not in LOCAL_NAMES and n[0].isdigit()), socket.gethostname())
    echo(f"dashboard: http://{f'[{shown}]' if ':' in shown else shown}:{actual_port}{gate.prefix}/")
    if lan:
        echo("serving to the LAN: anyone with this URL can watch and send cues; keep it to your team "
             f"(it answers to {', '.join(n for n in names if n not in LOCAL_NAMES)})")
    import sys

    sys.stdout.flush()
    stop = asyncio.Event()
    runner = asyncio.ensure_future(run_clips(clips, seconds=seconds, stop=stop))
    try:
        await runner
        dash.ended = True
        if reports:
            _write_reports(dash, echo)
        if seconds is None:
            await asyncio.Event().wait()  # the session view stays up until Ctrl-C
        else:
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - dash.started_s)))
    finally:
        stop.set()
        server.stop()
    return dash


def _write_reports(dash: Dashboard, echo) -> None:
    """A report per athlete, linked from the session view."""
    from strideclip.report import write_report

    for c in dash.clips:
        out = dash.out_dir / (c.log_path.stem + ".html")
        if c.log_path.exists() and not out.exists() and c.session.steps:
            try:
                write_report(c.log_path, out, history_db=False)
            except Exception as e:  # a report is a bonus: never lose the live page over it
                echo(f"{c.name}: no report ({e})")
