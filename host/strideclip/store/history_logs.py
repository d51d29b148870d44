"""What the history takes from a session log: the row of its session (the whole host pipeline
run over it, ``session_row``), which clip session it holds (``session_key``), and the files to
import (folders searched, logs still being written left out). strideclip.store.history keeps the
rows."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from strideclip.analysis.fatigue import fatigue_marks
from strideclip.errors import HistoryError, StrideClipError

RECENT_S = 10.0  # a log modified this recently may still be being written: it is watched
WATCH_S = 1.0  # for this long; a live writer adds a record every fraction of a second

# Session summary keys kept as columns (the rest stays in summary_json).
METRIC_COLUMNS = {
    "cadence_spm": "cadence_spm_median",
    "peak_vertical_g": "peak_vertical_g_median",
    "peak_vgrf_bw": "peak_vgrf_bw_median",
    "contact_ms": "contact_ms_median",
    "pelvic_rotation_deg": "pelvic_rotation_deg_median",
    "pelvic_drop_deg": "pelvic_drop_deg_median",
    "pelvic_tilt_deg": "pelvic_tilt_deg_median",
}


def session_row(path: Path, *, cue_settings: dict | None = None) -> dict:
    """What the history keeps of one log: the whole host pipeline run over it."""
    from strideclip.session.replay import analyse

    summary, table = analyse(path, cue_settings=cue_settings)
    return row_of_analysis(path, summary, table)


def row_of_analysis(path: Path, summary: dict, table: np.ndarray) -> dict:
    """A session's row from its analysis (``session.replay.analyse``): the history's, and the
    archive's summary table (strideclip.store.archive)."""
    from strideclip.session.replay import session_start

    if not summary["samples"]:
        raise HistoryError(f"{path}: no samples in this log ({summary['log_damage']['summary']})")
    running = table[table["running"] == 1]
    started_at, started_from = session_start(summary)
    onset = fatigue_marks(summary["fatigue"])["fatigued_s"]  # the history keeps when it became fatigued
    row = {
        "log_path": str(path.resolve()), "athlete": summary["athlete"] or summary["clip"] or "unknown",
        "clip": summary["clip"], "source": summary["source"], "started_at": started_at.isoformat(timespec="seconds"),
        "started_from": started_from, "duration_s": summary["duration_s"],
        "running_s": round(float(np.nansum(running["step_time_s"])), 1), "steps": summary["steps"],
        "running_steps": summary["running_steps"], "cues": len(summary["cues"]), "fatigue_onset_s": onset,
        "log_damage": summary["log_damage"]["summary"],
        "summary_json": json.dumps({k: v for k, v in summary.items() if k != "host_events"}),
        "imported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for col, key in METRIC_COLUMNS.items():
        row[col] = summary.get(key)
    return row


def session_key(path: Path) -> str:
    """Which session a log holds: a session is a clip's session, not a file. The clip's id and
    session number (its first HELLO, else a clip flash log's header) and the host's start time
    (none in a clip's own flash log) - the same for a truncated copy, a log that grew, and the
    same log synced twice. A log without a clip session: its path and start time."""
    header, hello = _header_and_hello(path)
    started = header.get("started_at") or "-"
    clip_id = hello.clip_id if hello else header.get("clip_id")
    session = hello.session_id if hello else header.get("session_id")
    if isinstance(clip_id, int) and isinstance(session, int):
        return f"clip {clip_id:08x} session {session} started {started}"
    return f"log {path.resolve()} started {started}"


def _header_and_hello(path: Path, max_records: int = 256) -> tuple[dict, object]:
    """The log's checked header ({} if unreadable) and its first HELLO among its first records
    (or None), both through the readers' one boundary (strideclip.stream.schema)."""
    from clipcore import logrecord as L
    from clipcore import protocol as P
    from strideclip.stream.schema import clip_packet
    from strideclip.stream.sclog import iter_records

    header: dict = {}
    records = iter_records(path)
    try:
        for _, rec in zip(range(max_records), records):
            if rec.kind == L.REC_HEADER:
                header = rec.value
            elif rec.kind == L.REC_CLIP:
                try:
                    msg = clip_packet(rec.body)
                except StrideClipError:
                    continue
                if isinstance(msg, P.Hello):
                    return header, msg
    finally:
        records.close()
    return header, None


def key_of_v1_row(row: dict) -> dict:
    """session_key and log_bytes for a row of schema 1 (keyed by the file's SHA-256)."""
    path = Path(row["log_path"])
    try:
        unchanged = file_sha256(path) == row["log_sha256"]
        # a log changed (grown) since its import: no size, so its next import replaces the row
        return {"session_key": session_key(path), "log_bytes": path.stat().st_size if unchanged else None}
    except (StrideClipError, OSError):  # the log is gone: the row stays as it was
        return {"session_key": f"sha256 {row['log_sha256']}", "log_bytes": None}


def being_written(files: list[Path], watch_s: float) -> set[Path]:
    """The logs modified in the last RECENT_S that change while watched for ``watch_s``."""
    def state(p: Path):
        try:
            st = p.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    if watch_s <= 0:
        return set()
    now_ns = time.time_ns()
    recent = {p: st for p, st in ((p, state(p)) for p in files) if st and now_ns - st[1] < RECENT_S * 1e9}
    if not recent:
        return set()
    time.sleep(watch_s)
    return {p for p, before in recent.items() if state(p) != before}


def why_not_read(path: Path, e: Exception) -> str:
    if isinstance(e, OSError):
        return f"{path}: cannot read: {e.strerror or e}"
    return str(e)


def log_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders searched for *.sclog, subfolders included."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.sclog") if q.is_file())
        else:
            files.append(p)
    return files


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
