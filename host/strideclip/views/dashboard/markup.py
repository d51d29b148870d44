"""The dashboard's HTML: an athlete's tile and the session view, from the state's plain values
(strideclip.views.dashboard.state). Every name is escaped; values carry data-* attributes (the
numbers behind the text), which is how the browser tests read them back."""
from __future__ import annotations

import html

from strideclip.views.dashboard.state import Dashboard, target_band


SIM_LATENCY = "simulated clip (no radio): from a sample to the host, p95"


def _fmt(v, nd: int = 1, unit: str = "") -> str:
    return "–" if v is None else f"{v:.{nd}f}{unit}"


def _minutes(t_s: float | None) -> str:
    return "–" if t_s is None else f"{t_s / 60:.1f} min"


def tile_html(a: dict) -> str:
    """An athlete's tile. Values carry data-* attributes (the numbers behind the text)."""
    def val(key, v, nd, unit=""):
        return (f'<span class="v {key}" data-key="{key}" data-value="{"" if v is None else v}">'
                f"{_fmt(v, nd)}</span>{unit}")

    def noted(key, v, nd, unit, note, title):  # no value: what the link is, not a dash that looks broken
        if v is None and note:
            return f'<span class="v {key} note" data-key="{key}" data-value="" title="{title}">{note}</span>'
        return val(key, v, nd, unit)

    band = ""
    if a["target_spm"]:
        lo, hi = target_band(a["target_spm"])
        band = f'<span class="band">target {lo:.0f}–{hi:.0f}</span>'
    sim = a["link_kind"] == "simulator"
    latency = noted("latency_ms", a["latency_ms"], 0, " ms", "simulated" if sim else None, SIM_LATENCY) + (
        f' <small title="{SIM_LATENCY}">sim</small>' if sim and a["latency_ms"] is not None else "")
    rssi = noted("rssi_dbm", a["rssi_dbm"], 0, " dBm", a["rssi_note"], "no radio signal to measure")
    colour = {None: "#555", True: "#1e8449", False: "#b9770e"}[a["in_band"]]
    fatigue_colour = {"fatigued": "#c0392b", "watch": "#b9770e"}.get(a["fatigue"], "#1e8449")
    link = "connected" if a["connected"] else ("ended" if not a["error"] else "failed")
    via = (f' via <span class="gateway" data-key="gateway" data-value="{html.escape(a["gateway"])}">'
           f'{html.escape(a["gateway"])}</span>' if a.get("gateway") else "")
    return (
        f'<div class="tile" data-athlete="{html.escape(a["name"])}" data-received="{a["last_packet_wall_s"] or ""}" '
        f'data-newest-idx="{"" if a.get("newest_idx") is None else a["newest_idx"]}">'
        f'<div class="name">{html.escape(a["name"])} <small>{html.escape(a["clip"])}</small></div>'
        f'<div class="cad" style="color:{colour}">{val("cadence_spm", a["cadence_spm"], 0)} <small>spm</small> {band}</div>'
        f'<table><tr><td>impact</td><td>{val("impact_g", a["impact_g"], 2, " g")}</td>'
        f'<td>vGRF</td><td>{val("vgrf_bw", a["vgrf_bw"], 2, " BW")}</td></tr>'
        f'<tr><td>rotation</td><td>{val("rotation_deg", a["rotation_deg"], 1, "°")}</td>'
        f'<td>drop / tilt</td><td>{val("drop_deg", a["drop_deg"], 1, "°")} / {val("tilt_deg", a["tilt_deg"], 1, "°")}</td></tr>'
        f'<tr><td>fatigue</td><td style="color:{fatigue_colour}" class="fatigue">{html.escape(a["fatigue"] or "–")}</td>'
        f'<td>time</td><td class="time">{_clock(a["running_s"])}</td></tr>'
        f'<tr><td>link</td><td>{link}{via}, {val("loss_pct", a["loss_pct"], 1, " % lost")}</td>'
        f'<td>latency</td><td>{latency}</td></tr>'
        f'<tr><td>battery</td><td>{val("battery_pct", a["battery_pct"], 0, " %")}</td>'
        f'<td>RSSI</td><td>{rssi}</td></tr></table>'
        + (f'<div class="error">{html.escape(a["error"])}</div>' if a["error"] else "")
        + (f'<div class="playing" data-tempo="{m["tempo_spm"]}">metronome {m["tempo_spm"]} spm, '
           + ("until stopped" if m["remaining_s"] is None else f'{m["remaining_s"]:.0f} s left') + "</div>"
           if (m := a["metronome"]) else "")
        + '<div class="cuelog"><b>cues</b><br>' + ("<br>".join(html.escape(q) for q in a["cues"]) or "none yet")
        + "</div></div>")


def tiles_html(dash: Dashboard, athletes: list[dict] | None = None) -> str:
    """Every tile, of the athletes' values given (else read now)."""
    athletes = athletes if athletes is not None else [dash.athlete(i) for i in range(len(dash.clips))]
    return '<div class="tiles">' + "".join(tile_html(a) for a in athletes) + "</div>"


def header_html(athletes: list[dict], ended: bool) -> str:
    """The page's header: its one clock is the session time the tiles show (the longest-running
    athlete's), not the wall clock."""
    t_s = max((a["running_s"] for a in athletes), default=0.0)
    return (f'<b>StrideClip</b> · {len(athletes)} athlete(s) · session <span class="clock" data-session-s="{t_s}">'
            f'{_clock(t_s)}</span>' + (" · the run has ended: see Session" if ended else ""))


def _clock(t_s: float) -> str:
    return f"{int(t_s // 60)}:{int(t_s % 60):02d}"


def session_html(rows: list[dict]) -> str:
    head = ("<tr><th>athlete</th><th>min</th><th>steps</th><th>cadence</th><th>impact g</th><th>rotation°</th>"
            "<th>drop°</th><th>tilt°</th><th>cues</th><th>watch from</th><th>fatigued from</th><th>report</th></tr>")
    body = "".join(
        f'<tr data-athlete="{html.escape(r["name"])}"><td>{html.escape(r["name"])}</td><td>{r["duration_s"] / 60:.1f}</td>'
        f'<td>{r["steps"]}</td><td>{_fmt(r["cadence_spm"])}</td><td>{_fmt(r["impact_g"], 2)}</td>'
        f'<td>{_fmt(r["rotation_deg"])}</td><td>{_fmt(r["drop_deg"])}</td><td>{_fmt(r["tilt_deg"])}</td>'
        f'<td>{r["cues"]}</td><td>{_minutes(r["watch_s"])}</td><td>{_minutes(r["fatigued_s"])}</td>'
        f'<td>{_report_link(r)}</td></tr>' for r in rows)
    return (f'<table class="session">{head}{body}</table><p class="note">Logs are in the output folder; '
            "a report is written for each athlete when the run ends (strideclip report LOG makes one any time).</p>")


def _report_link(r: dict) -> str:
    if not r["report"]:
        return "–"
    return f'<a href="files/{html.escape(r["report"])}" target="_blank">{html.escape(r["report"])}</a>'
