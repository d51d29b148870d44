"""The live terminal view of ``strideclip live``: a row per clip with cadence, impact, rotation,
the fatigue state (strideclip.analysis.fatigue) and its index, the latest cue, and the link (connected, loss, round trip, RSSI, battery, gaps). On a terminal
it redraws in place (rich); otherwise it prints a line per clip every ``PRINT_S``."""
from __future__ import annotations

import time

import click

PRINT_S = 10.0


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
