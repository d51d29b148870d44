"""The dashboard's HTML: an athlete's tile and the session view, from the state's plain values
(strideclip.views.dashboard.state). Every name is escaped; values carry data-* attributes (the
numbers behind the text), which is how the browser tests read them back."""
from __future__ import annotations

import html

from strideclip.views.dashboard.state import TARGET_BAND_PCT, Dashboard


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
