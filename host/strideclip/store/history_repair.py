"""`strideclip history repair`: rebuild a damaged history database from the logs it catalogued.

Nothing is deleted: the damaged file (with its journal, if any) is renamed
``<name>.damaged-<UTC time>`` and a new database takes its place, built from

- the rows SQLite can still read, scanned from both ends so that a damaged page in the middle
  costs only its own rows: their logs, ids and what was given or edited (athlete, distance,
  shoes, surface, tags);
- every log path found in the file's bytes, so the logs are found even when the first page (the
  schema) or a table page is lost: each path is stored twice, in its row and in an index;
- the folders the user names.

Each log is analysed again (``History.import_log``). A row read intact whose log is gone is kept
as it was read. The new database is built beside the old one and moved into place at the end, so
an interrupted repair leaves the damaged file where it was.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from strideclip.errors import HistoryDamaged, HistoryError
from strideclip.store.history import USER_COLUMNS, History
from strideclip.store.history_logs import log_files

SQLITE_MAGIC = b"SQLite format 3\x00"
# an absolute log path as SQLite stores text (UTF-8), or as the summary's JSON holds it
_LOG_PATH = re.compile(rb'/[^\x00-\x1f"\\]{1,4096}?\.sclog')


@dataclass
class RepairResult:
    problem: str  # what the integrity check or SQLite said
    damaged_copy: Path  # where the damaged file is kept
    rows_read: int  # rows SQLite could still read from it
    restored: list = field(default_factory=list)  # (log path, session id): analysed again from its log
    kept: list = field(default_factory=list)  # (session id, log path): read intact, its log is gone
    lost: list = field(default_factory=list)  # (session id, log path): its log is gone, its row unreadable
    bad: list = field(default_factory=list)  # (log path, why)


def repair(path: str | os.PathLike, folders: Iterable[str | Path] = (), *,
           cue_settings: dict | None = None) -> RepairResult | None:
    """Rebuild the damaged history at ``path`` (see the module); None when it is not damaged."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"{path}: no history database there")
    try:
        History(path).close()
        return None
    except HistoryDamaged as e:
        problem = e.problem
    data = path.read_bytes()
    rows, found = _readable_rows(path), _paths_in(data)
    if not (rows or found or data.startswith(SQLITE_MAGIC)):
        raise HistoryError(f"{path}: neither an SQLite file nor one naming any session log, so not a StrideClip "
                           "history; left as it is")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result = RepairResult(problem, path.with_name(f"{path.name}.damaged-{stamp}"), len(rows))
    new = path.with_name(path.name + ".rebuilding")
    for left in (new, Path(f"{new}-journal")):  # by a repair that was interrupted
        left.unlink(missing_ok=True)
    with History(new) as h:
        done, gone = set(), []
        for row in sorted(rows, key=lambda r: r["id"]):
            log = Path(row["log_path"]).resolve()
            done.add(log)
            if not log.is_file():
                gone.append(row)
                continue
            given = {c: row[c] for c in USER_COLUMNS if row.get(c) is not None}
            _note(result, log, h.import_log(log, given=given, cue_settings=cue_settings, session_id=row["id"]))
        whole = [r for r in gone if "started_at" in r]  # not only (id, log path) read from the index
        result.kept = [(sid, r["log_path"]) for sid, r in zip(h.keep_rows(whole), whole) if sid is not None]
        result.lost = [(r["id"], r["log_path"]) for r in gone if "started_at" not in r]
        for log in [*found, *log_files(folders)]:
            if log.resolve() not in done:
                done.add(log.resolve())
                _note(result, log, h.import_log(log, cue_settings=cue_settings))
    for suffix in ("", "-journal", "-wal", "-shm"):  # a journal left beside it belongs to the damaged file
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{result.damaged_copy}{suffix}")
    os.replace(new, path)
    return result


def _note(result: RepairResult, log: Path, outcome: tuple) -> None:
    (result.bad if outcome[0] == "bad" else result.restored).append((log, outcome[1]))


def _readable_rows(path: Path) -> list[dict]:
    """The session rows SQLite can still read, as they are (read-only: the file is kept as found);
    where only the index of log paths is readable, just the rows' ids and log paths."""
    rows: dict = {}
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    db.row_factory = sqlite3.Row
    scans = ("SELECT * FROM sessions ORDER BY id", "SELECT id, log_path FROM sessions INDEXED BY sessions_by_log "
             "ORDER BY log_path")
    try:
        for sql in scans:
            for order in ("", " DESC"):  # from both ends: a scan stops at the first damaged page
                try:
                    for r in db.execute(sql + order):
                        rows.setdefault(r["id"], dict(r))
                except sqlite3.Error:
                    pass
    finally:
        db.close()
    return [r for r in rows.values() if isinstance(r["id"], int) and isinstance(r.get("log_path"), str)]


def _paths_in(data: bytes) -> list[Path]:
    """The existing log files named anywhere in the damaged file's bytes, once each, in order."""
    found: dict = {}
    for m in _LOG_PATH.finditer(data):
        raw = m.group()
        # the match may start early, in the bytes before the path: try from each '/' in turn
        for at in (i for i in range(len(raw)) if raw[i] == ord("/")):
            try:
                log = Path(raw[at:].decode())
            except UnicodeDecodeError:
                continue
            if log.is_file():
                found.setdefault(log, None)
                break
    return sorted(found)  # new ids in the order of their names, as a folder import gives them
