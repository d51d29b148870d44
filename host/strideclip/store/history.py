"""The session history: every recorded session catalogued in an embedded SQLite database.

One row per clip session (``session_key``: the clip's id and session number with the host's start
time), not per file: importing a folder twice, the same log under two names, a truncated copy or a
log that grew since keeps one row, made from the longest copy. A row holds
who ran, with which clip, when, for how long, the session's summary metrics (the medians
``strideclip replay --json`` prints), its cues and the fatigue onset. What a log cannot say -
distance, shoes, surface, tags - is given at import or edited later.

Weekly trends and the training-load rule are computed from these rows (``weekly``): a week is
an ISO week (Monday to Sunday, UTC); the load is running time, and a week whose running time
rises more than ``load_rise_pct`` (default 10 %) over the previous week is flagged - the
"10 % rule" of running coaches (see docs/history.md for what is known of it).

The database is checked on open (``PRAGMA quick_check``): a damaged one raises ``HistoryDamaged``,
whose message names the file and ``strideclip history repair`` (strideclip.history_repair). Each
log's row is written in one transaction, taken at once and keyed by the session, so concurrent
imports queue behind the busy timeout instead of failing.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shlex
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from strideclip.coaching.cadence_plan import target_spm
from strideclip.errors import StrideClipError

SCHEMA_VERSION = 2  # 1: one row per file (SHA-256); 2: one row per clip session (session_key)
LOAD_RISE_PCT = 10.0
BASELINE_SESSIONS = 5  # a cross-session baseline is the median of this many latest sessions
BUSY_TIMEOUT_S = 60.0  # a writer holds the database for one row at a time: far less than this
RECENT_S = 10.0  # a log modified this recently may still be being written: it is watched
WATCH_S = 1.0  # for this long; a live writer adds a record every fraction of a second
USER_COLUMNS = ("athlete", "distance_m", "shoes", "surface", "tags")  # given or edited: a re-import keeps them

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

_SESSIONS_TABLE = f"""
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    session_key TEXT NOT NULL UNIQUE, -- the clip's session (session_key()), not the file
    log_path TEXT NOT NULL,
    log_sha256 TEXT NOT NULL,        -- of the log the row was made from
    log_bytes INTEGER,               -- its size; NULL: unknown (a row from schema 1 whose log changed)
    athlete TEXT NOT NULL,
    clip TEXT,
    source TEXT,
    started_at TEXT NOT NULL,        -- ISO 8601, UTC
    started_from TEXT NOT NULL,      -- 'log', 'given' or 'file time' (a clip's flash log has no calendar)
    duration_s REAL NOT NULL,
    running_s REAL NOT NULL,         -- time spent in running steps
    steps INTEGER NOT NULL,
    running_steps INTEGER NOT NULL,
    distance_m REAL,
    shoes TEXT,
    surface TEXT,
    tags TEXT NOT NULL DEFAULT '',   -- comma-separated
    {", ".join(f"{c} REAL" for c in METRIC_COLUMNS)},
    cues INTEGER NOT NULL,
    fatigue_onset_s REAL,
    log_damage TEXT NOT NULL,
    summary_json TEXT NOT NULL,
    imported_at TEXT NOT NULL
)"""
_INDEXES = ("CREATE INDEX sessions_by_athlete ON sessions (athlete, started_at)",
            # a second copy of every log path, on other pages: `history repair` finds the logs
            # even when the page holding a row is lost (strideclip.history_repair)
            "CREATE INDEX sessions_by_log ON sessions (log_path)")


class HistoryError(StrideClipError):
    """The history database cannot be used (wrong file, newer schema, busy, unknown session)."""


class HistoryDamaged(HistoryError):
    """The history database is damaged: the message names the file, the problem, and the way out."""

    def __init__(self, path: Path, problem: str, *, first_page: bool = False):
        self.path, self.problem = path, problem
        what = ("not a StrideClip history database, or a history whose first page is damaged" if first_page
                else "the history database is damaged")
        db = "" if path == default_path() else f" --db {shlex.quote(str(path))}"
        super().__init__(f"{path}: {what} ({problem}). {'If it is your history: ' if first_page else ''}"
                         f"`strideclip history repair{db}` rebuilds it from the logs it catalogued (the logs are not "
                         f"touched, and this file is kept as {path.name}.damaged-<time>).")


def default_path() -> Path:
    """$STRIDECLIP_HISTORY, else history.sqlite in the user's data directory."""
    if os.environ.get("STRIDECLIP_HISTORY"):
        return Path(os.environ["STRIDECLIP_HISTORY"])
    import platformdirs

    return Path(platformdirs.user_data_dir("strideclip", appauthor=False)) / "history.sqlite"


@dataclass
class ImportResult:
    imported: list = field(default_factory=list)  # (path, session id)
    replaced: list = field(default_factory=list)  # (path, session id): a longer log of a known session
    already: list = field(default_factory=list)  # (path, session id): the session is known from as long a log
    bad: list = field(default_factory=list)  # (path, why)
    writing: list = field(default_factory=list)  # (path, why): still being written, not imported


class History:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # transactions are explicit (_write), so the driver opens none of its own
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None
        self.db.row_factory = sqlite3.Row
        try:
            self._check_and_upgrade()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the database itself ------------------------------------------------------------------
    def _check_and_upgrade(self) -> None:
        problems = [r[0] for r in self._read("PRAGMA quick_check(1)")]
        if problems != ["ok"]:
            raise HistoryDamaged(self.path, " ".join(problems[0].replace("*** in database main ***", "").split()))
        if self._schema_version() == SCHEMA_VERSION:
            return
        with self._write():
            version = self._schema_version()  # again, holding the lock: another process may have just done it
            if version is None:
                raise HistoryError(f"{self.path}: not a StrideClip history database (other tables); left as it is")
            if version > SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: history schema {version} is newer than this strideclip "
                                   f"({SCHEMA_VERSION})")
            if version == 0:
                for sql in ("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", _SESSIONS_TABLE, *_INDEXES):
                    self.db.execute(sql)
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif version == 1:
                self._migrate_from_1()

    def _schema_version(self) -> int | None:
        """0 for a new, empty database; None for one that is not a history."""
        tables = {r[0] for r in self._read("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return 0
        row = self._read("SELECT value FROM meta WHERE key='schema'") if {"meta", "sessions"} <= tables else []
        return int(row[0][0]) if row and str(row[0][0]).isdigit() else None

    def _migrate_from_1(self) -> None:
        """Schema 1 kept one row per file, schema 2 one per clip session: a truncated copy and its
        whole log, two rows before, become one (the longest is kept). Inside _write."""
        old = [dict(r) for r in self.db.execute("SELECT * FROM sessions ORDER BY duration_s DESC, id")]
        self.db.execute("DROP TABLE sessions")
        for sql in (_SESSIONS_TABLE, *_INDEXES):
            self.db.execute(sql)
        for row in old:
            self._insert_row(row)
        self.db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))

    def _insert_row(self, row: dict) -> int | None:
        """A row kept as it is (a schema-1 row, or one `history repair` read whose log is gone);
        None when its session is already there. Inside _write."""
        if not row.get("session_key"):
            row = {**row, **_key_of_v1_row(row)}
        cols = [r[1] for r in self.db.execute("PRAGMA table_info(sessions)") if r[1] in row]
        cur = self.db.execute(f"INSERT OR IGNORE INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              [row[c] for c in cols])
        return cur.lastrowid if cur.rowcount else None

    def keep_rows(self, rows: list[dict]) -> list[int | None]:
        """Rows kept as they are, in one transaction (``_insert_row``)."""
        with self._write():
            return [self._insert_row(r) for r in rows]

    @contextmanager
    def _write(self):
        """One transaction that takes the write lock at once (BEGIN IMMEDIATE): a concurrent
        writer waits for it, up to the busy timeout, instead of failing halfway through."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None

    def _read(self, sql: str, args=()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None

    def _error(self, e: sqlite3.DatabaseError) -> HistoryError:
        """An SQLite error as a HistoryError naming the file and what can be done."""
        code = getattr(e, "sqlite_errorname", "")
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return HistoryError(f"{self.path}: another strideclip held the history for over {BUSY_TIMEOUT_S:.0f} s "
                                f"({e}); try again when it is done")
        if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return HistoryDamaged(self.path, str(e), first_page=code.startswith("SQLITE_NOTADB"))
        return HistoryError(f"{self.path}: the history cannot be used ({e})")

    # --- import -------------------------------------------------------------------------------
    def import_paths(self, paths, *, athlete: str | None = None, shoes: str | None = None,
                     surface: str | None = None, tags: tuple = (), distance_km: float | None = None,
                     cue_settings: dict | None = None, watch_s: float = WATCH_S) -> ImportResult:
        """Import session logs (files, or folders searched for *.sclog): see ``import_log``.

        A log modified in the last RECENT_S seconds is watched for ``watch_s`` (0: not watched,
        for a recorder that has just closed its logs); one that changes meanwhile is still being
        written and is not imported (``writing``)."""
        given = {"athlete": athlete, "shoes": shoes, "surface": surface, "tags": ",".join(tags) or None,
                 "distance_m": distance_km * 1000 if distance_km else None}
        given = {k: v for k, v in given.items() if v is not None}
        result = ImportResult()
        files = log_files(paths)
        writing = _being_written(files, watch_s)
        for path in files:
            if path in writing:
                result.writing.append((path, f"{path}: still being written (it grew while watched); "
                                             "import it again once the recording has ended"))
                continue
            outcome, value = self.import_log(path, given=given, cue_settings=cue_settings)
            getattr(result, outcome).append((path, value))
        return result

    def import_log(self, path: Path, *, given: dict | None = None, cue_settings: dict | None = None,
                   session_id: int | None = None) -> tuple[str, int | str]:
        """Import one log: ("imported" | "replaced" | "already", session id) or ("bad", why).

        A session (``session_key``) already known from as long a log is left as it is; a longer
        log of it replaces the row, keeping what was given or edited. ``given``: values of
        USER_COLUMNS; ``session_id``: the id a new row gets (`history repair` keeps the old ones)."""
        given = given or {}
        try:
            size, sha, key = path.stat().st_size, _sha256(path), session_key(path)
        except (StrideClipError, OSError) as e:
            return "bad", _why(path, e)
        known = self._read("SELECT id, log_sha256, log_bytes FROM sessions WHERE session_key=?", (key,))
        if known and (known[0]["log_sha256"] == sha or (known[0]["log_bytes"] is not None
                                                         and known[0]["log_bytes"] >= size)):
            return "already", known[0]["id"]
        try:
            row = session_row(path, cue_settings=cue_settings)  # the slow part: outside the transaction
        except (StrideClipError, OSError) as e:
            return "bad", _why(path, e)
        row.update(given, session_key=key, log_sha256=sha, log_bytes=size)
        if session_id is not None:
            row["id"] = session_id
        kept = [c for c in USER_COLUMNS if c not in given]
        cols = list(row)
        with self._write():  # one statement per log, so a concurrent import of the same session cannot clash
            existed = self.db.execute("SELECT 1 FROM sessions WHERE session_key=?", (key,)).fetchone()
            self.db.execute(
                f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT (session_key) DO UPDATE SET "
                + ", ".join(f"{c}=excluded.{c}" for c in cols if c not in kept and c != "id")
                + " WHERE excluded.log_bytes > COALESCE(sessions.log_bytes, -1)",  # only a longer log replaces
                tuple(row.values()))
            changed = self.db.execute("SELECT changes()").fetchone()[0]
            sid = self.db.execute("SELECT id FROM sessions WHERE session_key=?", (key,)).fetchone()[0]
        if not existed:
            return "imported", sid
        return ("replaced" if changed else "already"), sid

    def edit(self, session_id: int, *, distance_km: float | None = None, shoes: str | None = None,
             surface: str | None = None, tags: tuple | None = None, athlete: str | None = None) -> None:
        changes = {"distance_m": distance_km * 1000 if distance_km is not None else None, "shoes": shoes,
                   "surface": surface, "tags": ",".join(tags) if tags is not None else None, "athlete": athlete}
        changes = {k: v for k, v in changes.items() if v is not None}
        if not self.session(session_id):
            raise HistoryError(f"no session {session_id} in {self.path}")
        if changes:
            with self._write():
                self.db.execute(f"UPDATE sessions SET {', '.join(f'{k}=?' for k in changes)} WHERE id=?",
                                (*changes.values(), session_id))

    # --- queries ------------------------------------------------------------------------------
    def session(self, session_id: int) -> dict | None:
        rows = self._read("SELECT * FROM sessions WHERE id=?", (session_id,))
        return dict(rows[0]) if rows else None

    def session_for_log(self, path) -> dict | None:
        """The row of the log's session (made from this log or another copy of it)."""
        try:
            key = session_key(Path(path))
        except (StrideClipError, OSError):
            return None
        rows = self._read("SELECT * FROM sessions WHERE session_key=?", (key,))
        return dict(rows[0]) if rows else None

    def sessions(self, athlete: str | None = None, *, before: str | None = None) -> list[dict]:
        """Sessions in time order (optionally one athlete's, optionally only those started before)."""
        sql, args = "SELECT * FROM sessions WHERE 1=1", []
        if athlete:
            sql, args = sql + " AND athlete=?", [athlete]
        if before:
            sql, args = sql + " AND started_at<?", [*args, before]
        return [dict(r) for r in self._read(sql + " ORDER BY started_at, id", args)]

    def athletes(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT athlete FROM sessions ORDER BY athlete")]

    def baseline(self, athlete: str, *, before: str | None = None, n: int = BASELINE_SESSIONS) -> dict | None:
        """The athlete's usual form: per metric, the median of their latest ``n`` sessions'
        medians (sessions with running only). None without such a session."""
        rows = [r for r in self.sessions(athlete, before=before) if r["running_steps"]][-n:]
        if not rows:
            return None
        out = {"sessions": len(rows)}
        for col in METRIC_COLUMNS:
            v = [r[col] for r in rows if r[col] is not None]
            out[col] = float(np.median(v)) if v else None
        return out

    def plan_target_spm(self, athlete: str, on: dt.date) -> dict | None:
        """The cadence plan from the athlete's history: it starts at their first running
        session's cadence on that day (strideclip.coaching.cadence_plan)."""
        first = next((r for r in self.sessions(athlete) if r["running_steps"] and r["cadence_spm"]), None)
        if first is None:
            return None
        start = dt.date.fromisoformat(first["started_at"][:10])
        return {"start_spm": first["cadence_spm"], "since": start.isoformat(), "on": on.isoformat(),
                "target_spm": target_spm(first["cadence_spm"], start, on)}

    def weekly(self, athlete: str, *, load_rise_pct: float = LOAD_RISE_PCT) -> list[dict]:
        """One row per ISO week from the athlete's first session to their last: sessions,
        running time, steps, medians, the change in running time and the load warning."""
        rows = self.sessions(athlete)
        if not rows:
            return []
        by_week: dict = {}
        for r in rows:
            by_week.setdefault(_week_start(r["started_at"]), []).append(r)
        weeks, out = sorted(by_week), []
        week, prev_running_min = weeks[0], None
        while week <= weeks[-1]:
            rs = by_week.get(week, [])
            running_min = sum(r["running_s"] for r in rs) / 60
            w = {"week": week.isoformat(), "iso_week": "%d-W%02d" % week.isocalendar()[:2], "sessions": len(rs),
                 "running_min": round(running_min, 1), "steps": sum(r["steps"] for r in rs),
                 "distance_km": round(sum(r["distance_m"] or 0 for r in rs) / 1000, 2)}
            for col in METRIC_COLUMNS:  # weighted by running steps: a long run counts for more
                vals = [(r[col], r["running_steps"]) for r in rs if r[col] is not None and r["running_steps"]]
                w[col] = round(float(np.average([v for v, _ in vals], weights=[k for _, k in vals])), 2) if vals else None
            w["load_change_pct"] = (round(100 * (running_min / prev_running_min - 1), 1)
                                    if prev_running_min else None)
            w["load_warning"] = bool(w["load_change_pct"] is not None and w["load_change_pct"] > load_rise_pct)
            out.append(w)
            prev_running_min = running_min
            week += dt.timedelta(days=7)
        return out


def session_row(path: Path, *, cue_settings: dict | None = None) -> dict:
    """What the history keeps of one log: the whole host pipeline run over it."""
    from strideclip.session.pipeline import Session
    from strideclip.session.replay import replay, session_start

    session = Session(cue_settings=cue_settings or {})
    summary = replay(path, session=session)
    if not summary["samples"]:
        raise HistoryError(f"{path}: no samples in this log ({summary['log_damage']['summary']})")
    table = session.step_table()
    running = table[table["running"] == 1]
    started_at, started_from = session_start(summary)
    onset = next((c["t_s"] for c in summary["fatigue"] if c["state"] == "fatigued"), None)
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


def _key_of_v1_row(row: dict) -> dict:
    """session_key and log_bytes for a row of schema 1 (keyed by the file's SHA-256)."""
    path = Path(row["log_path"])
    try:
        unchanged = _sha256(path) == row["log_sha256"]
        # a log changed (grown) since its import: no size, so its next import replaces the row
        return {"session_key": session_key(path), "log_bytes": path.stat().st_size if unchanged else None}
    except (StrideClipError, OSError):  # the log is gone: the row stays as it was
        return {"session_key": f"sha256 {row['log_sha256']}", "log_bytes": None}


def _being_written(files: list[Path], watch_s: float) -> set[Path]:
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


def _why(path: Path, e: Exception) -> str:
    if isinstance(e, OSError):
        return f"{path}: cannot read: {e.strerror or e}"
    return str(e)


def log_files(paths) -> list[Path]:
    """Files as given; folders searched for *.sclog, subfolders included."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.sclog") if q.is_file())
        else:
            files.append(p)
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _week_start(started_at: str) -> dt.date:
    d = dt.date.fromisoformat(started_at[:10])
    return d - dt.timedelta(days=d.weekday())
