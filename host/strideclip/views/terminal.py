"""The terminal view of live sessions: `strideclip live` (a row per clip) and the demo (one
simulated clip, with the run's progress above its row). Each row: cadence, impact, rotation, the
fatigue state (strideclip.analysis.fatigue) and its index, the latest cue, and the link
(connected, and through which gateway over a broker; loss, round trip, RSSI, battery, gaps). On a
terminal it redraws in place (rich), with the columns that fit its width (80 columns hold the
essential ones); otherwise it prints a line per clip now and then (every ``PRINT_S`` by default).
It redraws at most once a second and only when what it shows changed: drawing, not the analysis,
was most of a live clip's CPU."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # (rich is imported when drawn)
    from rich.console import Console, Group

    from strideclip.session.live import LiveClip

PRINT_S = 10.0  # off a terminal: a line per clip this often
TABLE_LINES = 5  # a live table's lines besides its rows: the title, the header and its rule, a heading
REDRAW_S = 1.0  # on a terminal: at most one redraw this often, and only when a value shown changed


def _fmt(x, pattern: str) -> str:
    return "-" if x is None else pattern.format(x)


def _link(v: dict) -> str:
    if v.get("error"):
        return "failed"
    if v.get("connected", True):
        return f"ok via {v['gateway']}" if v.get("gateway") else "ok"  # the gateway holding it, over a broker
    return "lost" if v.get("reconnects") or v["steps"] else "connecting"


def _fatigue(v: dict) -> str:
    return v["fatigue"] + (f" {v['fatigue_index']:.2f}" if v["fatigue_index"] is not None else "")


def _cue(v: dict) -> str:
    cue = v["cues"][-1] if v["cues"] else None
    return f"{cue['reason']} ({cue['played']})" if cue else "-"


# (header on a terminal, name in a printed line, what it shows, whether an 80-column terminal keeps it)
COLUMNS: list[tuple[str, str, Callable[[dict], str], bool]] = [
    ("clip", "clip", lambda v: v["name"], True),
    ("link", "link", _link, True),
    ("cadence\nspm", "cadence_spm", lambda v: _fmt(v["cadence_spm"], "{:.0f}"), True),
    ("impact\ng", "impact_g", lambda v: _fmt(v["impact_g"], "{:.2f}"), True),
    ("rot\ndeg", "rotation_deg", lambda v: _fmt(v["rotation_deg"], "{:.1f}"), True),
    ("fatigue", "fatigue", _fatigue, True),
    ("last cue", "last_cue", _cue, False),
    ("loss\n%", "loss_pct", lambda v: f"{v['loss_pct']:.2f}", True),
    ("rtt\nms", "rtt_ms", lambda v: _fmt(v.get("rtt_ms"), "{:.0f}"), False),
    ("RSSI\ndBm", "rssi_dbm", lambda v: _fmt(v.get("rssi_dbm"), "{:d}"), False),
    ("battery\n%", "battery_pct", lambda v: _fmt(v.get("battery_pct"), "{:d}"), False),
    ("gaps\nfilled", "gaps_filled", lambda v: f"{v['gaps'] - v['open_gaps']}/{v['gaps']}", True),
    ("re-\nconnects", "reconnects", lambda v: str(v.get("reconnects", 0)), False),
]
CLIP_NAME_CHARS = 14  # on a narrow terminal longer names end in an ellipsis
WIDE_COLUMNS = 120  # a terminal at least this wide shows every column


def columns_for(width: int) -> list[tuple[str, str, Callable[[dict], str], bool]]:
    return COLUMNS if width >= WIDE_COLUMNS else [c for c in COLUMNS if c[3]]


def row(v: dict, width: int = WIDE_COLUMNS) -> list[str]:
    """One clip's row: ``v`` is what ``Session.live_values`` gives, with the link's figures."""
    return [show(v) for _h, _n, show, _k in columns_for(width)]


class TerminalView:
    """A table of clips, with heading lines (the demo's time, route and cues) and a progress bar
    above it when given. ``update`` redraws at most once in ``REDRAW_S`` on a terminal; off one
    it prints when ``print_now`` says so, else every ``PRINT_S``."""

    def __init__(self, *, title: str, live: bool, console: Console | None = None):
        self.title, self.live = title, live
        self.console = console  # where rich draws (None: the terminal)
        self._rich = None
        self._next_draw = 0.0
        self._next_print = 0.0
        self._shown: tuple | None = None  # what the terminal shows now, as text

    def __enter__(self) -> TerminalView:
        if self.live:
            from rich.live import Live

            self._rich = Live(self.render([], width=80), auto_refresh=False, transient=False,  # drawn by update() only
                              console=self.console)
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich:
            self._rich.__exit__(*exc)

    def render(self, rows: list[dict], *, heading: list[str] = (), progress: tuple[float, float] | None = None,
               width: int | None = None) -> Group:
        from rich import box
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        if width is None:
            from rich.console import Console

            width = Console().width
        cols = columns_for(width)
        table = Table(title=self.title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
        for header, _name, _show, _keep in cols:
            table.add_column(header, no_wrap=True, max_width=CLIP_NAME_CHARS if header == "clip" and cols != COLUMNS else None,
                             overflow="ellipsis")
        for v in rows:  # as plain text: a clip names itself, and "[/x]" is rich markup
            table.add_row(*(Text(show(v)) for _h, _n, show, _k in cols))
        parts = [Text(line) for line in heading]
        if progress is not None:
            parts.append(ProgressBar(total=progress[1], completed=progress[0], width=min(40, width)))
        return Group(*parts, table)

    def update(self, rows: list[dict], *, heading: list[str] = (), progress: tuple[float, float] | None = None,
               print_now: bool | None = None, final: bool = False) -> None:
        now = time.monotonic()
        if self._rich:
            if not (final or self.due()):
                return
            self._next_draw = now + REDRAW_S
            width = self._rich.console.width
            shown = (tuple(heading), progress and round(100 * progress[0] / max(progress[1], 1)),
                     tuple(tuple(row(v, width)) for v in rows))
            if shown != self._shown or final:  # the cost is the drawing: skip it when nothing shown changed
                self._shown = shown
                self._rich.update(self.render(rows, heading=heading, progress=progress, width=width), refresh=True)
            return
        if print_now is None:
            print_now = final or now >= self._next_print
        if not print_now:
            return
        self._next_print = now + PRINT_S
        for line in heading:
            click.echo(line)
        for v in rows:
            click.echo("  ".join(f"{name}={x}" for (_h, name, _s, _k), x in zip(COLUMNS, row(v))))

    def due(self) -> bool:
        """Whether an update now would draw (on a terminal) or print (off one, by time)."""
        return time.monotonic() >= (self._next_draw if self._rich else self._next_print)

    def show_clips(self, clips: Iterable[LiveClip]) -> None:
        """``update`` for live clips (session.live.LiveClip): a row each, read only when due. On a
        terminal, the rows that fit its height: clips whose link is in trouble first, then the rest
        in order, and a line for those left out (drawing 100 rows took 150-290 ms, a stall for
        every clip's packets, for rows no terminal shows)."""
        if not self.due():
            return
        clips = list(clips)
        room = max(1, self._rich.console.height - TABLE_LINES) if self._rich else len(clips)
        heading = []
        if len(clips) > room:
            clips = sorted(clips, key=lambda c: not (c.link.error or not c.link.connected))
            heading = [f"{room - 1} of {len(clips)} clips shown, those with link trouble first "
                       "(the dashboard shows every athlete)"]
            clips = clips[:room - 1]
        self.update([c.values() for c in clips], heading=heading)
