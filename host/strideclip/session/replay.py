"""Replay a session log through the host pipeline, as fast as possible or at a chosen pace."""
from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip.analysis.metrics import WHOLE_LOG_BATCH_STEPS
from strideclip.errors import NothingToAnalyse
from strideclip.session.pipeline import Session
from strideclip.stream import schema
from strideclip.stream.sclog import ReadReport, iter_records


def replay(path: str | Path, *, speed: float | None = None, session: Session | None = None,
           on_packet: Callable[[Session, list], None] | None = None,
           progress: Callable[[int, int], None] | None = None) -> dict:
    """Stream every record of the log through a Session; return the summary.

    ``speed`` None runs flat out; 1.0 is real time (pacing by the receive times in the log).
    ``on_packet`` is called after each clip packet with the session and the decoder's outputs.
    ``progress`` is called now and then with (bytes read, file size in bytes).
    """
    report = ReadReport()
    session = session or Session()
    header: dict = {}
    host_events: list = []
    started = time.monotonic()
    size_bytes = Path(path).stat().st_size
    for n_rec, rec in enumerate(iter_records(path, report=report)):
        if progress and n_rec % 1024 == 0:
            progress(report.bytes_read, size_bytes)
        if speed:
            wait_s = started + rec.t_ms / 1000 / speed - time.monotonic()
            if wait_s > 0:
                time.sleep(wait_s)
        if rec.kind == L.REC_CLIP:
            outputs = session.feed(rec.body, rec.t_ms)
            if on_packet:
                on_packet(session, outputs)
        elif rec.kind == L.REC_HEADER:
            header = rec.value  # checked by the reader (strideclip.stream.schema)
        elif rec.kind == L.REC_HOST:
            host_events.append({"t_ms": rec.t_ms, **rec.value})
    session.finish(rec.t_ms if report.records else 0)  # the log has ended: every held sample analysed
    if progress:
        progress(size_bytes, size_bytes)
    summary = {
        "log": str(path),
        "athlete": header.get("athlete"),
        "source": header.get("source"),
        "started_at": header.get("started_at"),  # None for a clip's own flash log: the clip has no calendar
        "clip": clip_name(header, session.decoder.hello),
        "imported": header.get("imported"),  # another sensor's recording: where from, what it lacks (docs/import.md)
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
            "rejected": [list(r) for r in report.rejected],
        },
    }
    return summary


def analyse(log_path: str | Path, *, cue_settings: dict | None = None, fatigue_prior: dict | None = None,
            speed: float | None = None, progress: Callable[[int, int], None] | None = None) -> tuple[dict, np.ndarray]:
    """The session summary and step table of a log: the live engine run over it flat out, every
    backfilled sample in order. Every command that analyses a log comes here. Raises
    NothingToAnalyse for a log with no samples, or none that can be read (no intact HELLO)."""
    # Nothing reads a row before the end: the engine measures steps in batches (the same rows,
    # tests/test_metrics.py), much faster than one by one.
    session = Session(cue_settings=cue_settings or {}, fatigue_prior=fatigue_prior,
                      metrics_batch_steps=WHOLE_LOG_BATCH_STEPS)
    summary = replay(log_path, session=session, speed=speed, progress=progress)
    if not summary["samples"]:
        raise NothingToAnalyse(f"{log_path}: no samples in this log ({summary['log_damage']['summary']})")
    if session.unread_samples and not session.step_count:
        raise NothingToAnalyse(f"{log_path}: {session.unread_samples} samples but no intact HELLO to read them by "
                               f"(the clip's rate and scales; {summary['log_damage']['summary']})")
    return summary, session.step_table()


def session_start(summary: dict) -> tuple[_dt.datetime, str]:
    """When the session started (UTC) and how that is known: "log" (the host's header) or
    "file time" (a clip's flash log: the clip has no calendar, so the file's time stands in)."""
    started = schema.start_time(summary.get("started_at"))  # None: not given, or not a time (checked)
    if started is not None:
        return started, "log"
    mtime = Path(summary["log"]).stat().st_mtime
    return _dt.datetime.fromtimestamp(int(mtime), _dt.timezone.utc), "file time"


def clip_name(header: dict, hello: P.Hello | None = None) -> str | None:
    """Which clip recorded the log: its BLE name for host logs, its id for its own flash logs."""
    if header.get("clip_name"):
        return header["clip_name"]
    clip_id = header.get("clip_id", hello.clip_id if hello else None)
    return "clip-%08x" % clip_id if clip_id is not None else None
