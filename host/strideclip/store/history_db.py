"""The history's database file: its schema (one row per clip session), the migration from schema 1
(one row per file), transactions that take the write lock at once, and SQLite's errors said as
HistoryError / HistoryDamaged naming the file. strideclip.store.history builds on it."""
from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from strideclip.errors import HistoryDamaged, HistoryError, HistoryNotWritable
from strideclip.store.history_logs import METRIC_COLUMNS, key_of_v1_row
from strideclip.stream.outputs import folder_problem, what_to_do

SCHEMA_VERSION = 2  # 1: one row per file (SHA-256); 2: one row per clip session (session_key)
BUSY_TIMEOUT_S = 60.0  # a writer holds the database for one row at a time: far less than this

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
            # even when the page holding a row is lost (strideclip.store.history_repair)
            "CREATE INDEX sessions_by_log ON sessions (log_path)")


def default_path() -> Path:
    """$STRIDECLIP_HISTORY, else history.sqlite in the user's data directory."""
    if os.environ.get("STRIDECLIP_HISTORY"):
        return Path(os.environ["STRIDECLIP_HISTORY"])
    import platformdirs

    return Path(platformdirs.user_data_dir("strideclip", appauthor=False)) / "history.sqlite"


class HistoryDatabase:
    """An open history database, checked and brought to SCHEMA_VERSION on open."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_path()
        if path and not self.path.parent.is_dir():  # a --db given: its folder is the user's to make (docs/cli.md)
            raise HistoryNotWritable(f"{self.path}: the folder {self.path.parent} does not exist: create it or "
                                     f"choose another --db", path=str(self.path))
        try:  # the default place is the history's own: made on first use
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._not_writable() or HistoryError(f"{self.path}: its folder cannot be made ({e})") from None
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
            raise HistoryDamaged(self.path, " ".join(problems[0].replace("*** in database main ***", "").split()),
                                 default_path=default_path())
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
            row = {**row, **key_of_v1_row(row)}
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
        if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) and (refused := self._not_writable()):
            return refused
        if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return HistoryDamaged(self.path, str(e), first_page=code.startswith("SQLITE_NOTADB"),
                                  default_path=default_path())
        return HistoryError(f"{self.path}: the history cannot be used ({e})")

    def _not_writable(self) -> HistoryNotWritable | None:
        """The history's folder (or the file) refuses writing, said as such with the way out;
        None when it does not."""
        problem = folder_problem(self.path.parent)
        if problem is None and self.path.exists() and not os.access(self.path, os.W_OK):
            problem = f"{self.path} is read-only"
        if problem is None:
            return None
        return HistoryNotWritable(f"{self.path}: {problem}: {what_to_do(problem, '--db')}", path=str(self.path))
