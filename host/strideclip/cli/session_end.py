"""How a live command ends (``record``, ``live``, ``dashboard``), whether its time was up, its
clips ended or Ctrl-C stopped it (strideclip.cli.common.CtrlC): each clip's summary, the logs
written, the reports and the history."""
from __future__ import annotations

import click

from typing import TYPE_CHECKING

from strideclip.cli.common import CtrlC, add_to_history

if TYPE_CHECKING:  # (the live session's modules load only when a live command runs)
    from strideclip.session.live import LiveClip


def print_live_summary(clips: list[LiveClip]) -> None:
    """Per clip: its log, what it recorded, the link's figures; what went wrong on stderr."""
    for c in clips:
        s = c.session.summary()
        stats = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.transport.stats().items())
        click.echo(f"{c.name}: {c.log_path}: {s['samples']} samples ({s['duration_s']:.1f} s at {s['rate_hz']} Hz), "
                   f"{s['steps']} steps, {len(s['gaps_filled'])} gap(s) filled by backfill, {len(s['gaps'])} still open; "
                   f"link: {stats}")
        if s["bad_packets"]:  # what the clip sent that the host could not take: in the log, skipped here
            click.echo(f"{c.name}: {s['bad_packets']} bad packet(s) recorded and skipped"
                       + "".join(f"; first {e}" for e in s["bad_packet_errors"][:1]), err=True)
        if c.link.error:
            click.echo(f"strideclip: {c.name}: {c.link.error}", err=True)


def end_live_run(clips: list[LiveClip], ctrl_c: CtrlC, *, history: bool, db_path: str | None) -> int:
    """After ``live`` or ``dashboard``, however the run ended (time up, the clips' end, Ctrl-C):
    each clip's summary, the logs written, a report beside each log with steps, and (``history``)
    the real clips' logs into the history. Returns the exit code: 0, or
    ``CtrlC.INTERRUPTED_EXIT`` when a second Ctrl-C cut the run (or the reports) short."""
    from strideclip.views.report import write_session_reports

    try:
        print_live_summary(clips)
        if clips:
            click.echo("logs written: " + ", ".join(str(c.log_path) for c in clips))
        if ctrl_c.aborted:
            click.echo("strideclip: stopped at once: each log holds what was recorded; no reports written, "
                       "nothing added to the history", err=True)
            return CtrlC.INTERRUPTED_EXIT
        reports = write_session_reports([c.log_path for c in clips if c.session.step_count],
                                        warn=lambda m: click.echo(m, err=True))
        if reports:
            click.echo("reports written: " + ", ".join(map(str, reports)))
        if history:  # real clips only: replays and simulated runners are not sessions of anyone's
            add_to_history([c.log_path for c in clips if c.source.kind not in ("log", "simulator")], db_path)
    except KeyboardInterrupt:  # Ctrl-C once the links have ended: the logs are whole, what is left undone is said
        click.echo("strideclip: interrupted: every log is complete; reports not yet written are not, and the "
                   "history is not updated", err=True)
        return CtrlC.INTERRUPTED_EXIT
    return 0
