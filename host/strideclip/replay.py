"""Replay a session log through the host pipeline, as fast as possible or at a chosen pace."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from clipcore import logrecord as L
from strideclip.pipeline import Session
from strideclip.sclog import ReadReport, iter_records


def replay(path: str | Path, *, speed: float | None = None, session: Session | None = None,
           on_packet: Callable[[Session, list], None] | None = None) -> dict:
    """Stream every record of the log through a Session; return the summary.

    ``speed`` None runs flat out; 1.0 is real time (pacing by the receive times in the log).
    ``on_packet`` is called after each clip packet with the session and the decoder's outputs.
    """
    report = ReadReport()
    session = session or Session()
    header: dict = {}
    host_events: list = []
    started = time.monotonic()
    for rec in iter_records(path, report=report):
        if speed:
            wait_s = started + rec.t_ms / 1000 / speed - time.monotonic()
            if wait_s > 0:
                time.sleep(wait_s)
        if rec.kind == L.REC_CLIP:
            outputs = session.feed(rec.body, rec.t_ms)
            if on_packet:
                on_packet(session, outputs)
        elif rec.kind == L.REC_HEADER:
            try:
                header = json.loads(rec.body)
            except ValueError:
                report.bad_records += 1
        elif rec.kind == L.REC_HOST:
            try:
                host_events.append({"t_ms": rec.t_ms, **json.loads(rec.body)})
            except ValueError:
                report.bad_records += 1
    summary = {
        "log": str(path),
        "athlete": header.get("athlete"),
        "source": header.get("source"),
        "frames": report.frames,
        **session.summary(),
        "host_events": host_events,
        "log_damage": {
            "clean": report.clean,
            "summary": report.summary(),
            "dropped_bytes": report.dropped_bytes,
            "bad_frames": report.bad_frames,
            "bad_records": report.bad_records,
            "incomplete_tail_bytes": report.incomplete_tail_bytes,
            "damaged_regions": [list(d) for d in report.damaged],
        },
    }
    return summary
