"""The terminal views. ``LiveTable``, the live view of ``strideclip live``: a row per clip with
cadence, impact, rotation, the fatigue state (strideclip.analysis.fatigue) and its index, the
latest cue, and the link (connected, loss, round trip, RSSI, battery, gaps). ``LiveView``, the
demo's: one simulated run's progress, metrics, link and cues. On a terminal both redraw in place
(rich); otherwise they print a line now and then (per clip every ``PRINT_S``; per simulated
minute)."""
from __future__ import annotations

import time

import click

from strideclip.session.pipeline import Session

PRINT_S = 10.0
VIEW_HZ = 8  # times a second the demo's view redraws


def _fmt(x, pattern: str) -> str:
    return "-" if x is None else pattern.format(x)


def row(v: dict) -> list[str]:
    cue = v["cues"][-1] if v["cues"] else None
    link = "ok" if v["connected"] else ("lost" if v["reconnects"] or v["steps"] else "connecting")
    if v["error"]:
        link = "failed"
    return [
        v["name"], link, _fmt(v["cadence_spm"], "{:.0f}"), _fmt(v["impact_g"], "{:.2f}"),
        _fmt(v["rotation_deg"], "{:.1f}"), v["fatigue"] + (f" ({v['fatigue_index']:.2f})" if v["fatigue_index"] is not None else ""),
        f"{cue['reason']} ({cue['played']})" if cue else "-",
        f"{v['loss_pct']:.2f}", _fmt(v["rtt_ms"], "{:.0f}"), _fmt(v["rssi_dbm"], "{:d}"),
        _fmt(v["battery_pct"], "{:d}"), f"{v['gaps'] - v['open_gaps']}/{v['gaps']}", str(v["reconnects"]),
    ]


HEADERS = ["clip", "link", "cadence spm", "impact g", "rotation deg", "fatigue", "last cue", "loss %", "rtt ms", "RSSI dBm",
           "battery %", "gaps filled", "reconnects"]


class LiveTable:
    def __init__(self, *, live: bool):
        self.live = live
        self._rich = None
        self._next_print = 0.0

    def __enter__(self) -> LiveTable:
        if self.live:
            from rich.live import Live

            self._rich = Live(self._render([]), refresh_per_second=4, transient=False)
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich:
            self._rich.__exit__(*exc)

    def _render(self, clips):
        from rich.table import Table
        from rich.text import Text

        table = Table(title="StrideClip live")
        for h in HEADERS:
            table.add_column(h)
        for c in clips:  # as plain text: a clip names itself, and "[/x]" is rich markup
            table.add_row(*map(Text, row(c.values())))
        return table

    def update(self, clips) -> None:
        if self._rich:
            self._rich.update(self._render(clips))
            return
        now = time.monotonic()
        if now < self._next_print:
            return
        self._next_print = now + PRINT_S
        for c in clips:
            click.echo("  ".join(f"{h}={x}" for h, x in zip(HEADERS, row(c.values()))))


class LiveView:
    """Progress, cadence, impact, rotation, link and cues, refreshed a few times a second.
    On a terminal it redraws in place (rich); otherwise it prints a line per simulated minute."""

    def __init__(self, run, session: Session, *, live: bool):
        self.run, self.session, self.live = run, session, live
        self.total_ms = run.link.packets[-1][0] if run.link.packets else 1
        self.segments = run.segments()
        self._next_wall = 0.0
        self._next_minute = 1
        self._rich = None

    def __enter__(self) -> LiveView:
        if self.live:
            from rich.live import Live

            self._rich = Live(self._render(0), refresh_per_second=VIEW_HZ, transient=False)
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich:
            self._rich.__exit__(*exc)

    def _values(self, t_ms: int) -> dict:
        v = self.session.live_values()
        seg = next((g["label"] for g in self.segments if g["start_s"] <= t_ms / 1000 < g["end_s"]), "")
        return {"t_min": t_ms / 60000, "segment": seg, "steps": v["steps"], "cadence": v["cadence_spm"],
                "impact": v["impact_g"], "vgrf": v["vgrf_bw"], "rotation": v["rotation_deg"], "drop": v["drop_deg"],
                "contact": v["contact_ms"], "loss": v["loss_pct"], "gaps": v["gaps"], "cues": v["cues"],
                "fatigue": v["fatigue"] + (f" ({v['fatigue_index']:.2f})" if v["fatigue_index"] is not None else "")}

    def _render(self, t_ms: int):
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        v = self._values(t_ms)
        table = Table.grid(padding=(0, 2))
        table.add_row("time", f"{v['t_min']:5.1f} / {self.total_ms / 60000:.0f} min", "route", v["segment"])
        table.add_row("cadence", _fmt(v["cadence"], "{:.0f} steps/min"), "steps", str(v["steps"]))
        table.add_row("impact", f"{_fmt(v['impact'], '{:.2f} g')}, vGRF {_fmt(v['vgrf'], '{:.2f} BW')}",
                      "pelvic rotation / drop", f"{_fmt(v['rotation'], '{:.1f}')} / {_fmt(v['drop'], '{:.1f} deg')}")
        table.add_row("contact", _fmt(v["contact"], "{:.0f} ms"), "fatigue", v["fatigue"])
        table.add_row("link", f"{v['loss']:.2f} % lost, {v['gaps']} gap(s)", "cues",
                      ", ".join(f"{c['t_s'] / 60:.1f} min {c['played']} ({c['reason']})" for c in v["cues"]) or "none")
        table.add_row(ProgressBar(total=self.total_ms, completed=t_ms, width=40), "")
        return Panel(table, title="StrideClip demo: simulated clip, live pipeline")

    def update(self, t_ms: int, *, final: bool = False) -> None:
        if self._rich:
            now = time.monotonic()
            if final or now >= self._next_wall:
                self._rich.update(self._render(t_ms))
                self._next_wall = now + 1 / VIEW_HZ
        elif final or t_ms >= self._next_minute * 60000:
            v = self._values(t_ms)
            click.echo(f"{v['t_min']:5.1f} min  {v['segment']:<16} cadence {_fmt(v['cadence'], '{:.0f}'):>4} spm  "
                       f"impact {_fmt(v['impact'], '{:.2f}'):>5} g  rotation {_fmt(v['rotation'], '{:.1f}'):>5} deg  "
                       f"steps {v['steps']}  fatigue {v['fatigue']}  lost {v['loss']:.2f} %")
            self._next_minute = int(t_ms // 60000) + 1
